//! Applications and their state machine.
//!
//! ```text
//! new-individual:  registered → awaiting-operator → [verified] → confirmed → issuing → issued
//! new-employee:    registered → awaiting-head → awaiting-operator → … as above
//! repeat:          (applicant's SIGN signature checked) confirmed → issuing → issued
//! revoke-signed:   (applicant's SIGN signature checked) confirmed → revoking → revoked
//! revoke-counter:  (operator filled it in) awaiting-operator → confirmed → revoking → revoked
//! card:            reserved for the ID-card / SIM flow (PKCS#11)
//! any open state → refused
//! ```

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use super::budget::Budget;
use crate::identity::{Bin, Iin};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;

/// What is applied for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplicationKind {
    /// New AUTH + SIGN key stores on the applicant's computer, for an individual.
    NewIndividual,
    /// The same for a legal entity's employee: confirmed by the first head or HR first.
    NewEmployee,
    /// Repeat issuance, signed by the applicant's currently valid SIGN certificate.
    Repeat,
    /// Revocation on the applicant's own signed request.
    RevokeSigned,
    /// Revocation on a paper application at a counter, confirmed by the operator's EDS.
    RevokeCounter,
    /// Certificates written onto an ID card / SIM (the PKCS#11 flow; not served yet).
    Card,
}

const KINDS: [(ApplicationKind, &str); 6] = [
    (ApplicationKind::NewIndividual, "new-individual"),
    (ApplicationKind::NewEmployee, "new-employee"),
    (ApplicationKind::Repeat, "repeat"),
    (ApplicationKind::RevokeSigned, "revoke-signed"),
    (ApplicationKind::RevokeCounter, "revoke-counter"),
    (ApplicationKind::Card, "card"),
];

impl ApplicationKind {
    pub fn name(self) -> &'static str {
        KINDS.iter().find(|(k, _)| *k == self).map_or("?", |(_, n)| n)
    }

    pub fn is_revocation(self) -> bool {
        matches!(self, Self::RevokeSigned | Self::RevokeCounter)
    }
}

impl fmt::Display for ApplicationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Not an application kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown application kind {0:?}; expected one of: new-individual, new-employee, repeat, revoke-signed, revoke-counter, card")]
pub struct UnknownKind(pub String);

impl FromStr for ApplicationKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KINDS.iter().find(|(_, n)| *n == s.trim()).map(|(k, _)| *k).ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// Where the applicant is served (document 004): the service provider's own counter, a State
/// Corporation («Правительство для граждан», ЦОН) counter (sections 7–8: consent, receipts, its
/// own operators and budgets), or online (the portal, the applicant's signing client).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    #[default]
    ServiceProvider,
    StateCorporation,
    Online,
}

const CHANNELS: [(Channel, &str); 3] = [
    (Channel::ServiceProvider, "service-provider"),
    (Channel::StateCorporation, "state-corporation"),
    (Channel::Online, "online"),
];

impl Channel {
    pub fn name(self) -> &'static str {
        CHANNELS.iter().find(|(c, _)| *c == self).map_or("?", |(_, n)| n)
    }

    pub fn parse(s: &str) -> Option<Self> {
        CHANNELS.iter().find(|(_, n)| *n == s.trim()).map(|(c, _)| *c)
    }

    /// Whether an application of `kind` can come through this channel: the counter kinds (card,
    /// paper revocation) need a counter; a State Corporation counter serves the new
    /// applications, cards and paper revocations (section 8), not the applicant's own signed
    /// requests.
    pub fn serves(self, kind: ApplicationKind) -> bool {
        use ApplicationKind as K;
        match self {
            Self::ServiceProvider => true,
            Self::StateCorporation => !matches!(kind, K::Repeat | K::RevokeSigned),
            Self::Online => !matches!(kind, K::Card | K::RevokeCounter),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| {
            format!("unknown channel {s:?}; expected one of: service-provider, state-corporation, online")
        })
    }
}

/// Where an application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplicationState {
    AwaitingHead,
    AwaitingOperator,
    /// The operator checked the applicant's identity and the form.
    Verified,
    /// Confirmed with the EDS that the flow needs; ready to be carried out.
    Confirmed,
    /// Claimed by one worker, which is issuing the certificates.
    Issuing,
    /// Claimed by one worker, which is revoking the certificates.
    Revoking,
    Issued,
    Revoked,
    Refused,
}

const STATES: [(ApplicationState, &str); 9] = [
    (ApplicationState::AwaitingHead, "awaiting-head"),
    (ApplicationState::AwaitingOperator, "awaiting-operator"),
    (ApplicationState::Verified, "verified"),
    (ApplicationState::Confirmed, "confirmed"),
    (ApplicationState::Issuing, "issuing"),
    (ApplicationState::Revoking, "revoking"),
    (ApplicationState::Issued, "issued"),
    (ApplicationState::Revoked, "revoked"),
    (ApplicationState::Refused, "refused"),
];

impl ApplicationState {
    pub fn name(self) -> &'static str {
        STATES.iter().find(|(s, _)| *s == self).map_or("?", |(_, n)| n)
    }

    pub fn parse(s: &str) -> Option<Self> {
        STATES.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }

    /// No transition leaves this state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Issued | Self::Revoked | Self::Refused)
    }

    /// The names of the final states, for SQL.
    pub const FINAL: [&'static str; 3] = ["issued", "revoked", "refused"];
}

impl fmt::Display for ApplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who made a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorRole {
    /// The information system itself.
    System,
    Applicant,
    Operator,
    /// The legal entity's first head or HR.
    Head,
}

impl ActorRole {
    pub fn name(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Applicant => "applicant",
            Self::Operator => "operator",
            Self::Head => "head",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::System, Self::Applicant, Self::Operator, Self::Head].into_iter().find(|r| r.name() == s)
    }
}

/// The steps of the regulation (004), each with its time budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Registry check and registration of the electronic application (5 min).
    Register,
    /// Confirmation by the first head / HR (no budget in the regulation).
    HeadConfirm,
    /// Operator receives the form and identifies the applicant (20 min; 5 min at a counter
    /// for a revocation).
    OperatorVerify,
    /// Operator confirms with his EDS (15 min after verification).
    OperatorConfirm,
    /// Verification and confirmation in one go (20 + 15 min).
    OperatorVerifyConfirm,
    /// A worker claims the application to carry it out (no budget of its own).
    Claim,
    /// Certificates issued and the notice queued (7 h; repeat issuance 1 working day).
    Issue,
    /// Certificates revoked and the notice queued (1 working day).
    Revoke,
    /// Refusal, by the system or an operator.
    Refuse,
    /// A claim given back after a failure, so the application can be carried out again.
    Release,
    /// The applicant presents the form at the counter (flow 1) or comes to it (card flow): the
    /// operator's clock starts here, not at the online registration.
    Present,
    /// Card flow: the operator identifies the applicant (1 min).
    Identify,
    /// Card flow: the operator fills the forms through the e-government gateway (5 min).
    FillForm,
    /// Card flow: the applicant enters the PIN on the token (1 min).
    EnterPin,
    /// Card flow: the applicant signs the paper or electronic form (1 min).
    ApplicantSign,
    /// Card flow: the whole stay at the counter, from [`Step::Present`] to the certificates
    /// written to the card (20 min); recorded with the writing step.
    CounterTotal,
}

const STEPS: [(Step, &str); 16] = [
    (Step::Register, "register"),
    (Step::HeadConfirm, "head-confirm"),
    (Step::OperatorVerify, "operator-verify"),
    (Step::OperatorConfirm, "operator-confirm"),
    (Step::OperatorVerifyConfirm, "operator-verify-confirm"),
    (Step::Claim, "claim"),
    (Step::Issue, "issue"),
    (Step::Revoke, "revoke"),
    (Step::Refuse, "refuse"),
    (Step::Release, "release"),
    (Step::Present, "present"),
    (Step::Identify, "identify"),
    (Step::FillForm, "fill-form"),
    (Step::EnterPin, "enter-pin"),
    (Step::ApplicantSign, "applicant-sign"),
    (Step::CounterTotal, "counter-total"),
];

impl Step {
    pub fn name(self) -> &'static str {
        STEPS.iter().find(|(s, _)| *s == self).map_or("?", |(_, n)| n)
    }

    pub fn parse(s: &str) -> Option<Self> {
        STEPS.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }

    /// The document's budget for this step of this kind of application (ca.toml may replace
    /// it: [`super::regulation::Timing`]).
    pub fn budget(self, kind: ApplicationKind) -> Option<Budget> {
        use ApplicationKind as K;
        match (self, kind) {
            (Self::Register, K::RevokeCounter) => Some(Budget::Minutes(5)),
            (Self::Register, K::Card) => Some(Budget::Minutes(2)),
            (Self::Register, _) => Some(Budget::Minutes(5)),
            (Self::OperatorVerify, K::RevokeCounter) => Some(Budget::Minutes(5)),
            (Self::OperatorVerify, _) => Some(Budget::Minutes(20)),
            (Self::OperatorConfirm | Self::OperatorVerifyConfirm, K::Card) => Some(Budget::Minutes(4)),
            (Self::OperatorConfirm, _) => Some(Budget::Minutes(15)),
            (Self::OperatorVerifyConfirm, K::RevokeCounter) => Some(Budget::Minutes(20)),
            (Self::OperatorVerifyConfirm, _) => Some(Budget::Minutes(35)),
            (Self::Issue, K::NewIndividual | K::NewEmployee) => Some(Budget::Hours(7)),
            (Self::Issue, K::Card) => Some(Budget::Minutes(4)),
            (Self::Issue, _) | (Self::Revoke, _) => Some(Budget::WorkingDays(1)),
            (Self::Identify, K::Card) => Some(Budget::Minutes(1)),
            (Self::Identify, _) => Some(Budget::Minutes(5)),
            (Self::FillForm, _) => Some(Budget::Minutes(5)),
            (Self::EnterPin | Self::ApplicantSign, _) => Some(Budget::Minutes(1)),
            (Self::CounterTotal, _) => Some(Budget::Minutes(20)),
            (Self::HeadConfirm | Self::Claim | Self::Refuse | Self::Release | Self::Present, _) => None,
        }
    }
}

impl Step {
    /// The document's budget for this step of this kind on `channel`. At a State Corporation
    /// counter (section 8): issuance within 1 working day of its operator's confirmation (not
    /// the service provider's 7 hours); his confirmation 1 min to log in + 15 min; in the card
    /// flow the application registered, printed and signed by the applicant in 3 minutes after
    /// the PIN (where the service provider's flow has the 1-minute signature).
    pub fn budget_on(self, kind: ApplicationKind, channel: Channel) -> Option<Budget> {
        use ApplicationKind as K;
        match (channel, self, kind) {
            (Channel::StateCorporation, Self::Issue, K::NewIndividual | K::NewEmployee) => Some(Budget::WorkingDays(1)),
            (
                Channel::StateCorporation,
                Self::OperatorVerifyConfirm,
                K::NewIndividual | K::NewEmployee | K::RevokeCounter,
            ) => Some(Budget::Minutes(16)),
            (Channel::StateCorporation, Self::ApplicantSign, K::Card) => Some(Budget::Minutes(3)),
            _ => self.budget(kind),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `A-2026-000123`: the year of registration and a sequence within the year.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ApplicationNumber(String);

impl ApplicationNumber {
    pub fn new(year: i32, sequence: u64) -> Self {
        Self(format!("A-{year:04}-{sequence:06}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApplicationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Read back from stored JSON (a receipt names its application): checked like any other.
impl<'de> serde::Deserialize<'de> for ApplicationNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Not an application number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an application number (expected A-YYYY-NNNNNN)")]
pub struct BadNumber(pub String);

impl FromStr for ApplicationNumber {
    type Err = BadNumber;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || BadNumber(s.chars().take(40).collect());
        let rest = s.strip_prefix("A-").ok_or_else(bad)?;
        let (year, seq) = rest.split_once('-').ok_or_else(bad)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if year.len() != 4 || seq.len() < 6 || seq.len() > 12 || !digits(year) || !digits(seq) {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }
}

/// The refusal stored on an application.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoredRefusal {
    pub code: String,
    pub message: String,
}

/// One application as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Application {
    pub number: ApplicationNumber,
    pub kind: ApplicationKind,
    pub channel: Channel,
    pub state: ApplicationState,
    pub iin: Iin,
    pub bin: Option<Bin>,
    /// Where notices go (from the registry, or given on the application).
    pub email: Option<String>,
    /// Revocation: the certificates to revoke. Issuance: the certificates issued.
    pub serials: Vec<SerialNumber>,
    pub revocation_reason: Option<RevocationReason>,
    /// An employee's application: the legal-entity roles asked for (first head, signing right,
    /// financial signing, HR), each confirmed by the entity's first head.
    pub roles: Vec<crate::profile::Role>,
    pub refusal: Option<StoredRefusal>,
    /// At a State Corporation counter: the consent, the representative, the documents checked
    /// and the receipt of acceptance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paperwork: Option<super::state_corporation::Paperwork>,
    /// Two submissions with the same key while the first is open are one application.
    pub dedup_key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One stored transition.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApplicationEvent {
    pub seq: i64,
    pub number: ApplicationNumber,
    pub kind: ApplicationKind,
    pub step: Step,
    pub from: Option<ApplicationState>,
    pub to: ApplicationState,
    pub actor_role: ActorRole,
    /// Operator login, head's IIN, applicant's IIN, `system`.
    pub actor: String,
    /// The certificate that signed this step, if one did.
    pub signer_serial: Option<SerialNumber>,
    /// When the step's clock started (the previous transition).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub budget: Option<Budget>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deadline: Option<OffsetDateTime>,
    pub breached: bool,
    pub details: serde_json::Value,
}

/// The dedup key of a submission: kind, IIN, BIN and the serials to revoke, so a second
/// identical submission while the first is open returns the first.
pub fn dedup_key(kind: ApplicationKind, iin: &Iin, bin: Option<&Bin>, serials: &[SerialNumber]) -> String {
    let mut serials: Vec<String> = serials.iter().map(SerialNumber::to_hex).collect();
    serials.sort();
    serials.dedup();
    format!("{}|{}|{}|{}", kind.name(), iin.as_string(), bin.map(Bin::as_string).unwrap_or_default(), serials.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (k, n) in KINDS {
            assert_eq!(n.parse::<ApplicationKind>().unwrap(), k);
        }
        for (s, n) in STATES {
            assert_eq!(ApplicationState::parse(n), Some(s));
        }
        for (s, n) in STEPS {
            assert_eq!(Step::parse(n), Some(s));
        }
        for (c, n) in CHANNELS {
            assert_eq!(n.parse::<Channel>().unwrap(), c);
        }
        assert!("bank".parse::<Channel>().unwrap_err().contains("state-corporation"));
        let n = ApplicationNumber::new(2026, 123);
        assert_eq!(n.as_str(), "A-2026-000123");
        assert_eq!(n.as_str().parse::<ApplicationNumber>().unwrap(), n);
        assert!("A-26-1".parse::<ApplicationNumber>().is_err());
        assert!("B-2026-000001".parse::<ApplicationNumber>().is_err());
    }
}
