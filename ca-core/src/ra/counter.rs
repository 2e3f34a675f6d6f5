//! Steps at the counter that the regulation times but that change no state: the applicant
//! presenting his form (flow 1: the operator's 20 minutes start here, not at the online
//! registration; without a recorded presentation the operator's step is not timed, see the
//! store), and the card flow's own steps — arrival, identification (1 min), the forms
//! filled through the e-government gateway (5 min) before the registration, then the PIN
//! entered on the token (1 min) and the applicant's signature on the form (1 min). The whole
//! stay at the counter (≤ 20 min) is recorded when the certificates are written
//! ([`Step::CounterTotal`]).

use time::OffsetDateTime;

use super::application::{Application, ApplicationKind, ApplicationNumber, ApplicationState, Step};
use super::service::{operator_event, RegistrationAuthority};
use super::store::{NewEvent, Submitted, Transition, Transitioned};
use super::{RaError, Submission};

/// When the steps before the registration were done at the counter (from the operator's
/// workstation, or its queue system for the arrival).
#[derive(Clone, Debug)]
pub struct CounterSteps {
    pub operator: String,
    /// The applicant came to the counter (called from the queue).
    pub arrived_at: OffsetDateTime,
    /// The operator identified him.
    pub identified_at: Option<OffsetDateTime>,
    /// The operator filled the forms through the e-government gateway (card flow).
    pub form_filled_at: Option<OffsetDateTime>,
}

impl RegistrationAuthority<'_> {
    /// Register an application filled at the counter (a card, or a revocation on paper), with
    /// the steps done before the registration, each timed against its budget.
    pub fn submit_at_counter(&self, s: &Submission, c: &CounterSteps) -> Result<Submitted, RaError> {
        use ApplicationKind as K;
        if !matches!(s.kind, K::Card | K::RevokeCounter) {
            return Err(RaError::Invalid(format!("a {} application is not filled at the counter", s.kind)));
        }
        let earlier = self.counter_events(s, c)?;
        self.submit_after(s, earlier)
    }

    /// The counter's steps before the registration as events, checked to be in order and not
    /// in the future.
    pub(super) fn counter_events(&self, s: &Submission, c: &CounterSteps) -> Result<Vec<NewEvent>, RaError> {
        if s.kind == ApplicationKind::Card && (c.identified_at.is_none() || c.form_filled_at.is_none()) {
            return Err(RaError::Invalid(
                "a card application at the counter records when the applicant was identified and when the forms \
                 were filled"
                    .into(),
            ));
        }
        let now = self.clock.now();
        let steps = [
            (Step::Present, Some(c.arrived_at)),
            (Step::Identify, c.identified_at),
            (Step::FillForm, c.form_filled_at),
        ];
        let mut earlier: Vec<NewEvent> = Vec::new();
        for (step, at) in steps {
            let Some(at) = at else { continue };
            if at > now || earlier.last().is_some_and(|e| e.at > at) {
                return Err(RaError::Invalid(format!(
                    "the counter's steps must be in order and not in the future ({step} at {})",
                    crate::clock::rfc3339(at)
                )));
            }
            earlier.push(operator_event(step, &c.operator, None, at));
        }
        Ok(earlier)
    }

    /// The applicant presents his form at the counter (flow 1): the operator's clock starts.
    pub fn present(&self, number: &ApplicationNumber, operator: &str) -> Result<Application, RaError> {
        let a = self.store.application(number)?.ok_or_else(|| RaError::NotFound(number.clone()))?;
        if !matches!(a.kind, ApplicationKind::NewIndividual | ApplicationKind::NewEmployee) {
            return Err(RaError::Invalid(format!("a {} application is not presented at the counter", a.kind)));
        }
        self.record(&a, operator_event(Step::Present, operator, None, self.clock.now()))
    }

    /// A step of the card flow after the registration: the PIN entered on the token, then the
    /// applicant's signature on the form.
    pub fn counter_step(&self, number: &ApplicationNumber, step: Step, operator: &str) -> Result<Application, RaError> {
        let a = self.store.application(number)?.ok_or_else(|| RaError::NotFound(number.clone()))?;
        if a.kind != ApplicationKind::Card {
            return Err(RaError::Invalid(format!("{step} is a step of the card flow, not of a {}", a.kind)));
        }
        let last = self.store.application_events(Some(number))?.pop().map(|e| e.step);
        let in_order = match step {
            Step::EnterPin => last == Some(Step::Register),
            Step::ApplicantSign => last == Some(Step::EnterPin),
            _ => {
                return Err(RaError::Invalid(format!(
                    "{step} is not recorded on its own; use enter-pin or applicant-sign"
                )))
            }
        };
        if !in_order {
            return Err(RaError::Invalid(format!(
                "{step} follows {} in the card flow (last step: {})",
                if step == Step::EnterPin { "the registration" } else { "the PIN entry" },
                last.map_or("none", Step::name)
            )));
        }
        self.record(&a, operator_event(step, operator, None, self.clock.now()))
    }

    /// A step that leaves the application awaiting the operator.
    fn record(&self, a: &Application, event: NewEvent) -> Result<Application, RaError> {
        let waiting = ApplicationState::AwaitingOperator;
        let transition = Transition {
            from: vec![waiting],
            to: waiting,
            event,
            serials: None,
            refusal: None,
            notice: None,
            token: None,
        };
        match self.store.transition(&a.number, &transition)? {
            Transitioned::Applied(a) => Ok(a),
            Transitioned::NotApplicable(a) => Err(RaError::WrongState {
                number: a.number,
                state: a.state,
                what: "only an application awaiting the operator has this step".into(),
            }),
        }
    }
}
