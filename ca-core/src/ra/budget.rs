//! Time budgets of the regulation's steps. Working days are Monday to Friday in Kazakhstan's
//! time (UTC+5); public holidays are not modelled (a deployment's calendar would go here).

use time::{Duration, OffsetDateTime, UtcOffset, Weekday};

/// How long a step may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "unit", content = "value")]
pub enum Budget {
    Minutes(u32),
    Hours(u32),
    WorkingDays(u32),
}

/// Kazakhstan's single time zone since 2024.
const KAZAKHSTAN: UtcOffset = match UtcOffset::from_hms(5, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

impl Budget {
    /// The moment a step started at `start` must be done by.
    pub fn deadline(self, start: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Minutes(m) => start + Duration::minutes(i64::from(m)),
            Self::Hours(h) => start + Duration::hours(i64::from(h)),
            Self::WorkingDays(d) => add_working_days(start, d),
        }
    }

    /// For display: `5 min`, `7 h`, `1 working day`.
    pub fn describe(self) -> String {
        match self {
            Self::Minutes(m) => format!("{m} min"),
            Self::Hours(h) => format!("{h} h"),
            Self::WorkingDays(1) => "1 working day".into(),
            Self::WorkingDays(d) => format!("{d} working days"),
        }
    }
}

/// `start` plus `days` working days: a step started on Friday afternoon with one working day
/// is due on Monday afternoon; one started on Saturday is due at the end of Monday.
pub fn add_working_days(start: OffsetDateTime, days: u32) -> OffsetDateTime {
    let local = start.to_offset(KAZAKHSTAN);
    let weekend = |t: OffsetDateTime| matches!(t.weekday(), Weekday::Saturday | Weekday::Sunday);
    let mut t = local;
    if weekend(t) {
        // The clock starts at the beginning of the next working day.
        while weekend(t) {
            t += Duration::days(1);
        }
        t = t.replace_time(time::Time::MIDNIGHT);
    }
    let mut left = days;
    while left > 0 {
        t += Duration::days(1);
        if !weekend(t) {
            left -= 1;
        }
    }
    t.to_offset(start.offset())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn working_days_skip_weekends() {
        // Friday 2026-01-09 15:00 +05 → Monday 15:00.
        let fri = datetime!(2026-01-09 10:00 UTC);
        assert_eq!(add_working_days(fri, 1), datetime!(2026-01-12 10:00 UTC));
        // Wednesday → Thursday.
        assert_eq!(add_working_days(datetime!(2026-01-07 10:00 UTC), 1), datetime!(2026-01-08 10:00 UTC));
        // Saturday → end of Monday (Tuesday 00:00 +05).
        assert_eq!(add_working_days(datetime!(2026-01-10 10:00 UTC), 1), datetime!(2026-01-12 19:00 UTC));
        assert_eq!(Budget::Hours(7).deadline(fri), datetime!(2026-01-09 17:00 UTC));
    }
}
