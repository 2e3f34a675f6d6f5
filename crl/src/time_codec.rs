//! Times as RFC 5280 wants them: whole seconds in UTC; UTCTime through 2049 and GeneralizedTime
//! from 2050 for thisUpdate, nextUpdate and revocationDate; always GeneralizedTime for the
//! invalidity date (section 5.3.2).

use der::asn1::GeneralizedTime;
use time::OffsetDateTime;
use x509_cert::time::Time;

fn unix_duration(t: OffsetDateTime) -> Option<std::time::Duration> {
    u64::try_from(t.unix_timestamp()).ok().map(std::time::Duration::from_secs)
}

/// thisUpdate, nextUpdate, revocationDate. `None` for times DER cannot carry.
pub(crate) fn to_time(t: OffsetDateTime) -> Option<Time> {
    ca_core::issuer::to_x509_time(t).ok()
}

/// The invalidity date.
pub(crate) fn to_generalized(t: OffsetDateTime) -> Option<GeneralizedTime> {
    GeneralizedTime::from_unix_duration(unix_duration(t)?).ok()
}

pub(crate) fn from_time(t: &Time) -> Option<OffsetDateTime> {
    from_unix(t.to_unix_duration())
}

pub(crate) fn from_generalized(t: &GeneralizedTime) -> Option<OffsetDateTime> {
    from_unix(t.to_unix_duration())
}

fn from_unix(d: std::time::Duration) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(i64::try_from(d.as_secs()).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn utc_time_before_2050_generalized_after() {
        assert!(matches!(to_time(datetime!(2049-12-31 23:59:59 UTC)), Some(Time::UtcTime(_))));
        assert!(matches!(to_time(datetime!(2050-01-01 0:00 UTC)), Some(Time::GeneralTime(_))));
        assert!(to_time(datetime!(1969-12-31 23:59:59 UTC)).is_none());
        let t = datetime!(2031-05-06 7:08:09 UTC);
        assert_eq!(from_time(&to_time(t).unwrap()), Some(t));
        assert_eq!(from_generalized(&to_generalized(t).unwrap()), Some(t));
    }
}
