//! Time budgets of the regulation's steps. Working days are Monday to Friday in Kazakhstan's
//! time (UTC+5), less the public holidays of a [`Calendar`] (configured in ca.toml, see
//! [`super::regulation`]), plus the weekend days the government declares working.

use std::collections::BTreeSet;

use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};

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
    /// The moment a step started at `start` must be done by (weekends only, no holidays).
    pub fn deadline(self, start: OffsetDateTime) -> OffsetDateTime {
        self.deadline_in(start, &Calendar::default())
    }

    /// The moment a step started at `start` must be done by, in `calendar`'s working days.
    pub fn deadline_in(self, start: OffsetDateTime, calendar: &Calendar) -> OffsetDateTime {
        match self {
            Self::Minutes(m) => start + Duration::minutes(i64::from(m)),
            Self::Hours(h) => start + Duration::hours(i64::from(h)),
            Self::WorkingDays(d) => calendar.add_working_days(start, d),
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

/// Budget text as ca.toml writes it: `5 min`, `7 h`, `1 working day`, `2 working days`.
impl std::str::FromStr for Budget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a budget (write `5 min`, `7 h` or `1 working day`)");
        let (number, unit) = s.trim().split_once(' ').ok_or_else(bad)?;
        let n: u32 = number.parse().map_err(|_| bad())?;
        match unit.trim() {
            "min" => Ok(Self::Minutes(n)),
            "h" => Ok(Self::Hours(n)),
            "working day" | "working days" => Ok(Self::WorkingDays(n)),
            _ => Err(bad()),
        }
    }
}

/// Which days are working days: Monday to Friday, less `annual` and `holidays`, plus
/// `working_weekends`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Holidays on the same date every year: (month, day).
    pub annual: BTreeSet<(u8, u8)>,
    pub holidays: BTreeSet<Date>,
    /// Saturdays and Sundays declared working days (when a holiday is moved).
    pub working_weekends: BTreeSet<Date>,
}

impl Calendar {
    pub fn is_working_day(&self, day: Date) -> bool {
        let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
        if weekend {
            self.working_weekends.contains(&day)
        } else {
            !self.holidays.contains(&day) && !self.annual.contains(&(u8::from(day.month()), day.day()))
        }
    }

    /// `start` plus `days` working days: a step started on Friday afternoon with one working
    /// day is due on Monday afternoon; one started on Saturday (or a holiday) is due at the end
    /// of the next working day.
    pub fn add_working_days(&self, start: OffsetDateTime, days: u32) -> OffsetDateTime {
        let mut t = start.to_offset(KAZAKHSTAN);
        if !self.is_working_day(t.date()) {
            // The clock starts at the beginning of the next working day.
            while !self.is_working_day(t.date()) {
                t += Duration::days(1);
            }
            t = t.replace_time(time::Time::MIDNIGHT);
        }
        let mut left = days;
        while left > 0 {
            t += Duration::days(1);
            if self.is_working_day(t.date()) {
                left -= 1;
            }
        }
        t.to_offset(start.offset())
    }
}

/// `start` plus `days` working days of the weekends-only calendar.
pub fn add_working_days(start: OffsetDateTime, days: u32) -> OffsetDateTime {
    Calendar::default().add_working_days(start, days)
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

    #[test]
    fn holidays_are_not_working_days_and_moved_weekends_are() {
        use time::macros::date;
        let calendar = Calendar {
            annual: [(1, 1)].into(),
            holidays: [date!(2026 - 03 - 23)].into(),
            working_weekends: [date!(2026 - 03 - 28)].into(),
        };
        // Friday 2026-03-20 → Monday 23 is a holiday → Tuesday 24.
        let fri = datetime!(2026-03-20 10:00 UTC);
        assert_eq!(calendar.add_working_days(fri, 1), datetime!(2026-03-24 10:00 UTC));
        // Started on the holiday: due at the end of the next working day.
        assert_eq!(calendar.add_working_days(datetime!(2026-03-23 05:00 UTC), 1), datetime!(2026-03-24 19:00 UTC));
        // Wednesday 2025-12-31 → Thursday 1 January is a holiday every year → Friday 2.
        assert_eq!(calendar.add_working_days(datetime!(2025-12-31 10:00 UTC), 1), datetime!(2026-01-02 10:00 UTC));
        // Friday 27 → the working Saturday 28.
        assert_eq!(calendar.add_working_days(datetime!(2026-03-27 10:00 UTC), 1), datetime!(2026-03-28 10:00 UTC));
        for (text, budget) in [
            ("5 min", Budget::Minutes(5)),
            ("7 h", Budget::Hours(7)),
            ("1 working day", Budget::WorkingDays(1)),
            ("3 working days", Budget::WorkingDays(3)),
        ] {
            assert_eq!(text.parse::<Budget>(), Ok(budget));
            assert_eq!(budget.describe(), text);
        }
        assert!("5 minutes".parse::<Budget>().is_err());
        assert!("min 5".parse::<Budget>().is_err());
    }
}
