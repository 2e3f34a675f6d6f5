//! Time is injected, so tests can issue "in the past" and check expiry without sleeping.

use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock, truncated to whole seconds (certificates carry seconds).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap_or(now)
    }
}

/// A time as RFC 3339 (`2026-11-30T00:20:43Z`), the one form shown to people and scripts;
/// `OffsetDateTime`'s own Display (`2026-11-30 0:20:43.0 +00:00:00`) never reaches a user.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A clock that always says the same time.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_is_what_people_see() {
        let t = time::macros::datetime!(2026-11-30 0:20:43 UTC);
        assert_eq!(super::rfc3339(t), "2026-11-30T00:20:43Z");
    }
}
