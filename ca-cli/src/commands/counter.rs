//! The counter's steps of `ca application`: the applicant presents his form (flow 1), the card
//! flow's PIN entry and signature, and applications registered at the counter with the times of
//! the steps before the registration (see [`ca_core::ra::counter`]).

use ca_core::ra::application::{ApplicationNumber, Step};
use ca_core::ra::counter::CounterSteps;
use ca_core::ra::{RegistrationAuthority, Submission, Submitted};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::context::Context;
use crate::failure::Failure;

/// An RFC 3339 time given for `what`.
pub fn time_arg(what: &str, value: &str) -> Result<OffsetDateTime, Failure> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|e| {
        Failure::Input(format!("{what} {value:?} is not an RFC 3339 time (2026-03-16T10:00:00+05:00): {e}"))
    })
}

/// The steps before the registration, when the arrival at the counter is given.
pub struct CounterTimes<'a> {
    pub arrived_at: Option<&'a str>,
    pub identified_at: Option<&'a str>,
    pub form_filled_at: Option<&'a str>,
}

/// The counter's steps before the registration, when the arrival is given.
pub fn steps(ctx: &Context, times: &CounterTimes<'_>) -> Result<Option<CounterSteps>, Failure> {
    let Some(arrived) = times.arrived_at else {
        if times.identified_at.is_some() || times.form_filled_at.is_some() {
            return Err(Failure::Input("give --arrived-at with the times of the counter's steps".into()));
        }
        return Ok(None);
    };
    Ok(Some(CounterSteps {
        operator: ctx.actor.clone(),
        arrived_at: time_arg("--arrived-at", arrived)?,
        identified_at: times.identified_at.map(|t| time_arg("--identified-at", t)).transpose()?,
        form_filled_at: times.form_filled_at.map(|t| time_arg("--form-filled-at", t)).transpose()?,
    }))
}

/// Register `s`, with the counter's earlier steps when they are given.
pub fn submit(
    ctx: &Context,
    ra: &RegistrationAuthority<'_>,
    s: &Submission,
    times: &CounterTimes<'_>,
) -> Result<Submitted, Failure> {
    match steps(ctx, times)? {
        Some(steps) => Ok(ra.submit_at_counter(s, &steps)?),
        None => Ok(ra.submit(s)?),
    }
}

/// `present`, `enter-pin` or `applicant-sign` on application `n`.
pub fn step(
    ctx: &Context,
    ra: &RegistrationAuthority<'_>,
    n: &ApplicationNumber,
    step: &str,
) -> Result<ca_core::ra::Application, Failure> {
    match Step::parse(step) {
        Some(Step::Present) => Ok(ra.present(n, &ctx.actor)?),
        Some(s @ (Step::EnterPin | Step::ApplicantSign)) => Ok(ra.counter_step(n, s, &ctx.actor)?),
        _ => Err(Failure::Input(format!("unknown counter step {step:?}; use present, enter-pin or applicant-sign"))),
    }
}
