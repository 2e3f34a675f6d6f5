//! The regulation's clock: the budget of every step and the working-day calendar, from
//! `[regulation]` in ca.toml. Document 004 is a repealed edition (13.10.2020 № 383/НК), so its
//! budgets ([`Step::budget`]) are only the defaults: a deployment replaces any of them, and
//! keeps its holiday calendar, without a new release.
//!
//! ```toml
//! [regulation]
//! holidays = ["2026-05-27"]          # dated days off (Kurban ait, days moved by decree)
//! working_weekends = ["2026-01-03"]  # Saturdays/Sundays declared working
//!
//! [regulation.budgets]               # [channel.][kind.]step
//! "issue" = "1 working day"
//! "card.identify" = "2 min"
//! "state-corporation.issue" = "1 working day"
//! "state-corporation.card.applicant-sign" = "3 min"
//! ```
//!
//! [`overdue`] tells which open applications already missed the deadline of the step they
//! wait for (`ca report sla --open`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use time::{Date, OffsetDateTime};

use super::application::{Application, ApplicationEvent, ApplicationKind, ApplicationState, Channel, Step};
use super::budget::{Budget, Calendar};

/// Kazakhstan's public holidays on fixed dates that are days off (Labour Code art. 84, Law on
/// holidays): New Year 1–2 Jan, 8 Mar, Nauryz 21–23 Mar, 1 May, 7 May, 9 May, 6 Jul, 30 Aug,
/// 25 Oct, 16 Dec. Moving holidays (Kurban ait) and the days the government moves each year
/// go in `holidays` / `working_weekends`.
pub const KAZAKHSTAN_HOLIDAYS: [&str; 13] = [
    "01-01", "01-02", "03-08", "03-21", "03-22", "03-23", "05-01", "05-07", "05-09", "07-06", "08-30", "10-25", "12-16",
];

/// `[regulation]` in ca.toml, as written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Regulation {
    /// Budgets that replace the document's, by step (`"issue"`), kind and step
    /// (`"card.identify"`), channel and step (`"state-corporation.issue"`) or channel, kind and
    /// step (`"state-corporation.card.applicant-sign"`): `"5 min"`, `"7 h"`, `"1 working day"`.
    pub budgets: BTreeMap<String, String>,
    /// Days off every year, `MM-DD`.
    pub annual_holidays: Vec<String>,
    /// Dated days off, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
    /// Saturdays and Sundays that are working days, `YYYY-MM-DD`.
    pub working_weekends: Vec<String>,
}

impl Default for Regulation {
    fn default() -> Self {
        Self {
            budgets: BTreeMap::new(),
            annual_holidays: KAZAKHSTAN_HOLIDAYS.iter().map(|d| (*d).to_owned()).collect(),
            holidays: Vec::new(),
            working_weekends: Vec::new(),
        }
    }
}

impl Regulation {
    /// The budgets and calendar in force, or what is wrong with the section.
    pub fn timing(&self) -> Result<Timing, String> {
        let mut budgets = HashMap::new();
        for (key, value) in &self.budgets {
            let parts: Vec<&str> = key.split('.').collect();
            let kind = |k: &str| ApplicationKind::from_str(k).map_err(|e| format!("[regulation] budgets: {e}"));
            let channel = |c: &str| Channel::from_str(c).map_err(|e| format!("[regulation] budgets: {e}"));
            let (channel, kind, step) = match parts.as_slice() {
                [step] => (None, None, *step),
                // A kind or a channel: their names do not overlap.
                [first, step] => match Channel::parse(first) {
                    Some(c) => (Some(c), None, *step),
                    None => (None, Some(kind(first)?), *step),
                },
                [c, k, step] => (Some(channel(c)?), Some(kind(k)?), *step),
                _ => return Err(format!("[regulation] budgets: {key:?} is not [channel.][kind.]step")),
            };
            let step = Step::parse(step)
                .ok_or_else(|| format!("[regulation] budgets: {step:?} is not a step of the regulation"))?;
            let budget = value.parse::<Budget>().map_err(|e| format!("[regulation] budgets.{key}: {e}"))?;
            budgets.insert((channel, kind, step), budget);
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let dates = |what: &str, list: &[String]| -> Result<BTreeSet<Date>, String> {
            list.iter()
                .map(|d| {
                    Date::parse(d, format).map_err(|_| format!("[regulation] {what}: {d:?} is not a date (YYYY-MM-DD)"))
                })
                .collect()
        };
        let mut annual = BTreeSet::new();
        for d in &self.annual_holidays {
            let bad = || format!("[regulation] annual_holidays: {d:?} is not a day of the year (MM-DD)");
            let (m, day) = d.split_once('-').ok_or_else(bad)?;
            let (m, day): (u8, u8) = (m.parse().map_err(|_| bad())?, day.parse().map_err(|_| bad())?);
            let month = time::Month::try_from(m).map_err(|_| bad())?;
            // 29 February is a day of the year too: check against a leap year.
            Date::from_calendar_date(2024, month, day).map_err(|_| bad())?;
            annual.insert((m, day));
        }
        let calendar = Calendar {
            annual,
            holidays: dates("holidays", &self.holidays)?,
            working_weekends: dates("working_weekends", &self.working_weekends)?,
        };
        Ok(Timing { budgets, calendar })
    }
}

/// The budgets and calendar in force (parsed [`Regulation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Replacements of the document's budgets; `None` channel or kind: every one.
    budgets: HashMap<(Option<Channel>, Option<ApplicationKind>, Step), Budget>,
    pub calendar: Calendar,
}

impl Default for Timing {
    /// The document's budgets with Kazakhstan's fixed-date holidays.
    fn default() -> Self {
        Regulation::default().timing().unwrap_or(Self { budgets: HashMap::new(), calendar: Calendar::default() })
    }
}

impl Timing {
    /// The budget of `step` of an application of `kind` that came through `channel`: the most
    /// specific configured one (channel and kind, channel, kind, any), else the document's.
    pub fn budget(&self, step: Step, kind: ApplicationKind, channel: Channel) -> Option<Budget> {
        [(Some(channel), Some(kind)), (Some(channel), None), (None, Some(kind)), (None, None)]
            .into_iter()
            .find_map(|(c, k)| self.budgets.get(&(c, k, step)))
            .copied()
            .or_else(|| step.budget_on(kind, channel))
    }

    /// When a step with `budget` started at `start` is due.
    pub fn deadline(&self, budget: Budget, start: OffsetDateTime) -> OffsetDateTime {
        budget.deadline_in(start, &self.calendar)
    }
}

/// An open application past the deadline of the step it waits for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Overdue {
    pub number: super::ApplicationNumber,
    pub kind: ApplicationKind,
    pub channel: Channel,
    pub state: ApplicationState,
    /// The step it waits for.
    pub waiting_for: Step,
    pub budget: Budget,
    /// When that step's clock started.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
}

/// The step an open application waits for, and when its clock started; `None` when no clock
/// runs (waiting for the head, or for the applicant to come to the counter).
pub fn waiting_for(a: &Application, events: &[ApplicationEvent]) -> Option<(Step, OffsetDateTime)> {
    use ApplicationKind as K;
    use ApplicationState as S;
    // Claims are bookkeeping: the step is timed from the last real step, as the store does.
    let last = events.iter().rev().find(|e| !matches!(e.step, Step::Claim | Step::Release | Step::CounterTotal))?;
    let step = match (a.state, a.kind) {
        (S::AwaitingOperator, K::NewIndividual | K::NewEmployee) if last.step == Step::Present => Step::OperatorVerify,
        // Registered online: the operator's clock starts when the form is presented.
        (S::AwaitingOperator, K::NewIndividual | K::NewEmployee) => return None,
        (S::AwaitingOperator, K::Card) => match last.step {
            Step::EnterPin => Step::ApplicantSign,
            Step::ApplicantSign => Step::OperatorVerifyConfirm,
            _ => Step::EnterPin,
        },
        (S::AwaitingOperator, _) => Step::OperatorVerifyConfirm,
        (S::Verified, _) => Step::OperatorConfirm,
        (S::Confirmed | S::Issuing | S::Revoking, kind) if kind.is_revocation() => Step::Revoke,
        (S::Confirmed | S::Issuing | S::Revoking, _) => Step::Issue,
        (S::AwaitingHead | S::Issued | S::Revoked | S::Refused, _) => return None,
    };
    Some((step, last.at))
}

/// Whether `a` (with its `events`, oldest first) is past the deadline of the step it waits for.
pub fn overdue(timing: &Timing, a: &Application, events: &[ApplicationEvent], now: OffsetDateTime) -> Option<Overdue> {
    let (step, since) = waiting_for(a, events)?;
    let budget = timing.budget(step, a.kind, a.channel)?;
    let deadline = timing.deadline(budget, since);
    (now > deadline).then(|| Overdue {
        number: a.number.clone(),
        kind: a.kind,
        channel: a.channel,
        state: a.state,
        waiting_for: step,
        budget,
        since,
        deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_and_holidays_come_from_the_section_and_bad_ones_are_named() {
        let default = Timing::default();
        let sp = Channel::ServiceProvider;
        assert_eq!(default.budget(Step::Identify, ApplicationKind::Card, sp), Some(Budget::Minutes(1)));
        assert_eq!(default.budget(Step::Issue, ApplicationKind::NewIndividual, sp), Some(Budget::Hours(7)));
        assert!(!default.calendar.is_working_day(time::macros::date!(2026 - 03 - 23)), "Nauryz");
        let section: Regulation = toml::from_str(
            r#"budgets = { "issue" = "2 working days", "card.identify" = "2 min" }
               holidays = ["2026-05-27"]"#,
        )
        .unwrap();
        let timing = section.timing().unwrap();
        assert_eq!(timing.budget(Step::Identify, ApplicationKind::Card, sp), Some(Budget::Minutes(2)));
        assert_eq!(timing.budget(Step::Identify, ApplicationKind::RevokeCounter, sp), Some(Budget::Minutes(5)));
        assert_eq!(timing.budget(Step::Issue, ApplicationKind::Repeat, sp), Some(Budget::WorkingDays(2)));
        assert!(!timing.calendar.is_working_day(time::macros::date!(2026 - 05 - 27)));
        assert!(!timing.calendar.is_working_day(time::macros::date!(2026 - 01 - 01)), "the default annual days stay");
        // The State Corporation's own budgets, and its channel's replacements.
        let sc = Channel::StateCorporation;
        assert_eq!(default.budget(Step::Issue, ApplicationKind::NewIndividual, sc), Some(Budget::WorkingDays(1)));
        assert_eq!(default.budget(Step::ApplicantSign, ApplicationKind::Card, sc), Some(Budget::Minutes(3)));
        assert_eq!(default.budget(Step::ApplicantSign, ApplicationKind::Card, sp), Some(Budget::Minutes(1)));
        let section: Regulation = toml::from_str(
            r#"[budgets]
               "issue" = "9 h"
               "state-corporation.issue" = "2 working days"
               "state-corporation.card.applicant-sign" = "4 min""#,
        )
        .unwrap();
        let timing = section.timing().unwrap();
        assert_eq!(timing.budget(Step::Issue, ApplicationKind::NewIndividual, sc), Some(Budget::WorkingDays(2)));
        assert_eq!(timing.budget(Step::Issue, ApplicationKind::NewIndividual, sp), Some(Budget::Hours(9)));
        assert_eq!(timing.budget(Step::ApplicantSign, ApplicationKind::Card, sc), Some(Budget::Minutes(4)));
        for (bad, expect) in [
            (r#"budgets = { "card.lunch" = "5 min" }"#, "not a step"),
            (r#"budgets = { "bank.issue" = "5 min" }"#, "unknown application kind"),
            (r#"budgets = { "bank.card.issue" = "5 min" }"#, "unknown channel"),
            (r#"budgets = { "a.b.c.d" = "5 min" }"#, "not [channel.][kind.]step"),
            (r#"budgets = { "issue" = "soon" }"#, "not a budget"),
            (r#"holidays = ["27.05.2026"]"#, "not a date"),
            (r#"annual_holidays = ["02-30"]"#, "not a day of the year"),
        ] {
            let section: Regulation = toml::from_str(bad).unwrap();
            let err = section.timing().unwrap_err();
            assert!(err.contains(expect), "{bad}: {err}");
        }
    }
}
