//! Submitting, confirming and refusing applications.

use super::application::{
    dedup_key, ActorRole, Application, ApplicationKind, ApplicationNumber, ApplicationState, Channel, Step,
};
use super::csr_keys::ApplicantCsrs;
use super::receipt::{Receipt, ReceiptDetails};
use super::refusal::{check_person, Refusal};
use super::registry::PersonRegistry;
use super::signature::{
    mismatch, Expectation, SignatureCheck, SignatureProblem, SignedPayload, SignerFacts, Statement,
};
use super::state_corporation::Paperwork;
use super::store::{
    ApplicantKey, NewApplication, NewEvent, RaStore, Submitted, TokenPurpose, Transition, Transitioned,
};
use super::{RaError, StoredRefusal};
use crate::clock::Clock;
use crate::identity::{Bin, Iin, KeyType};
use crate::profile::Role;
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::store::{AuditEvent, CertificateStatus, Store};

/// The registration authority over one store.
pub struct RegistrationAuthority<'a> {
    pub store: &'a dyn RaStore,
    /// The certificate store: signers' certificates are looked up here, revocations go here.
    pub certificates: &'a dyn Store,
    pub registry: &'a dyn PersonRegistry,
    pub signatures: &'a dyn SignatureCheck,
    pub clock: &'a dyn Clock,
    /// The public base URL of `ca-server` (`[server] public_base_url` in ca.toml): the issuance
    /// notice links to `<base>/install/<number>?t=<token>`, the registration notice to the
    /// applicant's status look-up. Empty: the notices carry no link.
    pub install_url: &'a str,
    /// How long the install link stays valid.
    pub install_ttl: time::Duration,
}

/// An application as it is handed in.
#[derive(Clone, Debug)]
pub struct Submission {
    pub kind: ApplicationKind,
    /// Where the applicant is served. A State Corporation counter registers through
    /// [`RegistrationAuthority::submit_at_state_corporation`] (consent, documents, receipt).
    pub channel: Channel,
    pub iin: Iin,
    /// The legal entity (new-employee; an employee's repeat issuance or revocation).
    pub bin: Option<Bin>,
    /// Certificates to revoke (revocations); empty means all valid certificates of the IIN (and BIN).
    pub serials: Vec<SerialNumber>,
    pub revocation_reason: Option<RevocationReason>,
    /// The applicant's CMS over [`Statement::canonical`] (repeat, revoke-signed).
    pub signature: Option<Vec<u8>>,
    /// The operator who filled in the application (revoke-counter).
    pub operator: Option<String>,
    /// Where notices go; `None`: the address in the person registry.
    pub email: Option<String>,
    /// The applicant's own AUTH and SIGN requests (new-individual, new-employee, repeat).
    pub csrs: Option<ApplicantCsrs>,
    /// new-employee: the legal-entity roles asked for (first-head, signing-right,
    /// financial-signing, hr); none: an employee's certificate.
    pub roles: Vec<Role>,
}

/// A registration, with the status token handed to the applicant (a new application only).
#[derive(Clone, Debug)]
pub struct Registered {
    pub submitted: Submitted,
    /// The secret of the applicant's status token (see [`super::install`]).
    pub status_token: Option<String>,
}

/// What the registration checks found: a refusal, the notice address, the signer.
type Checked = (Option<Refusal>, Option<String>, Option<SignerFacts>);

/// The result of a confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    Now(Application),
    /// It was confirmed before; nothing changed.
    Already(Application),
}

impl Confirmed {
    pub fn application(&self) -> &Application {
        match self {
            Self::Now(a) | Self::Already(a) => a,
        }
    }
}

impl RegistrationAuthority<'_> {
    /// Register an application. A registry or signature refusal is stored as a refused
    /// application and returned as such (`state == Refused`, `refusal` set).
    pub fn submit(&self, s: &Submission) -> Result<Submitted, RaError> {
        Ok(self.register(s)?.submitted)
    }

    /// [`Self::submit`], recording `earlier` steps (done at the counter) before the registration.
    pub(super) fn submit_after(&self, s: &Submission, earlier: Vec<NewEvent>) -> Result<Submitted, RaError> {
        Ok(self.register_after(s, earlier, None)?.submitted)
    }

    /// Register an application taken at a State Corporation counter with its paperwork and
    /// the receipt of acceptance, which the store numbers in the same transaction.
    pub(super) fn register_paperwork(
        &self,
        s: &Submission,
        earlier: Vec<NewEvent>,
        paperwork: Paperwork,
        receipt: ReceiptDetails,
    ) -> Result<(Registered, Option<Receipt>), RaError> {
        let registered = self.register_after(s, earlier, Some((paperwork, receipt)))?;
        let receipt = match &registered.submitted {
            Submitted::New(a) => match a.paperwork.as_ref().and_then(|p| p.receipt.as_ref()) {
                Some(number) => self.store.receipt(number)?,
                None => None,
            },
            Submitted::Existing(_) => None,
        };
        Ok((registered, receipt))
    }

    /// [`Self::submit`], also giving the applicant's status token of a new application. The
    /// applicant is sent the application form with its number ("process 6"), or the refusal
    /// with its exact text ("process 3", "process 5").
    pub fn register(&self, s: &Submission) -> Result<Registered, RaError> {
        self.register_after(s, Vec::new(), None)
    }

    fn register_after(
        &self,
        s: &Submission,
        earlier: Vec<NewEvent>,
        paperwork: Option<(Paperwork, ReceiptDetails)>,
    ) -> Result<Registered, RaError> {
        use ApplicationKind as K;
        if !s.channel.serves(s.kind) {
            return Err(RaError::Invalid(format!(
                "a {} application does not come through the {} channel",
                s.kind, s.channel
            )));
        }
        if (s.channel == Channel::StateCorporation) != paperwork.is_some() {
            return Err(RaError::Invalid(
                "a State Corporation counter registers an application with the applicant's written consent and \
                 the package checked (and only it does)"
                    .into(),
            ));
        }
        match (s.kind, &s.bin) {
            (K::Card, Some(_)) => {
                return Err(RaError::Invalid(
                    "card/SIM applications are for individuals (an employee's certificates come as new-employee)"
                        .into(),
                ))
            }
            (K::NewEmployee, None) => return Err(RaError::Invalid("a new-employee application needs the BIN".into())),
            (K::NewIndividual, Some(_)) => {
                return Err(RaError::Invalid("a new-individual application has no BIN (use new-employee)".into()))
            }
            _ => {}
        }
        super::roles::check_asked(s)?;
        if !s.kind.is_revocation() && (!s.serials.is_empty() || s.revocation_reason.is_some()) {
            return Err(RaError::Invalid("serials and a revocation reason belong to revocation applications".into()));
        }
        if let Some(r) = s.revocation_reason {
            if !r.is_revocation() || r == RevocationReason::CertificateHold {
                return Err(RaError::Invalid(format!("{r} is not a reason an application can give")));
            }
        }
        let signed_by_applicant = matches!(s.kind, K::Repeat | K::RevokeSigned);
        if signed_by_applicant != s.signature.is_some() {
            return Err(RaError::Invalid(if signed_by_applicant {
                format!("a {} application must be signed by the applicant's SIGN key", s.kind)
            } else {
                format!("a {} application is not signed by the applicant", s.kind)
            }));
        }
        let (actor_role, actor) = match (s.kind, &s.operator) {
            (K::RevokeCounter, Some(op)) => (ActorRole::Operator, op.clone()),
            (K::RevokeCounter, None) => {
                return Err(RaError::Invalid("a counter revocation is filled in by an operator: name him".into()))
            }
            _ => (ActorRole::Applicant, s.iin.as_string()),
        };
        for serial in &s.serials {
            match self.certificates.certificate(serial)? {
                Some(c) if c.iin == Some(s.iin) && (s.bin.is_none() || c.bin == s.bin) => {}
                _ => {
                    return Err(RaError::Invalid(format!("certificate {serial} is not a certificate of IIN {}", s.iin)))
                }
            }
        }
        if s.csrs.is_some() && !matches!(s.kind, K::NewIndividual | K::NewEmployee | K::Repeat) {
            return Err(RaError::Invalid(format!("a {} application takes no certificate requests", s.kind)));
        }
        if let Some(email) = &s.email {
            if !super::notices::valid_email(email) {
                return Err(RaError::Invalid("the email address is not one valid address".into()));
            }
        }
        let keys = match &s.csrs {
            Some(csrs) => self.check_csrs(csrs, None)?,
            None => Vec::new(),
        };
        let now = self.clock.now();
        let (refusal, email, signer) = self.registration_checks(s, &keys)?;
        // The first head's own application goes to the operator (nobody above him confirms it);
        // the registry says who the first head is.
        let own_head = match (&refusal, s.kind) {
            (None, K::NewEmployee) => self.is_registered_head(s)?,
            _ => false,
        };
        let state = match (&refusal, s.kind) {
            (Some(_), _) => ApplicationState::Refused,
            (None, K::NewEmployee) if own_head => ApplicationState::AwaitingOperator,
            (None, K::NewEmployee) => ApplicationState::AwaitingHead,
            (None, K::NewIndividual | K::RevokeCounter | K::Card) => ApplicationState::AwaitingOperator,
            (None, K::Repeat | K::RevokeSigned) => ApplicationState::Confirmed,
        };
        let (paperwork, receipt) = paperwork.unzip();
        let counter = paperwork.as_ref().map(|p| {
            serde_json::json!({ "consent": p.consent, "representative": p.representative, "documents": p.documents })
        });
        let application = NewApplication {
            kind: s.kind,
            channel: s.channel,
            paperwork,
            receipt,
            iin: s.iin,
            bin: s.bin,
            email,
            serials: s.serials.clone(),
            revocation_reason: s.revocation_reason,
            roles: s.roles.clone(),
            dedup_key: dedup_key(s.kind, &s.iin, s.bin.as_ref(), &s.serials),
            state,
            refusal: refusal.as_ref().map(stored),
            keys,
            tokens: Vec::new(),
            notice: None,
            earlier,
        };
        let token = super::install::new_token(TokenPurpose::Status, now, super::install::STATUS_TOKEN_TTL);
        let application = NewApplication {
            notice: application.email.as_deref().map(|to| match &refusal {
                Some(r) => super::notices::refusal(to, "{number}", &r.to_string()),
                None => {
                    let link = (!self.install_url.is_empty())
                        .then(|| super::install::status_link(self.install_url, "{number}", &token.secret));
                    super::notices::registration(to, s.kind, &s.iin, s.bin.as_ref(), link.as_deref())
                }
            }),
            tokens: vec![token.stored.clone()],
            ..application
        };
        let event = NewEvent {
            step: Step::Register,
            actor_role,
            actor,
            signer_serial: signer.as_ref().map(|f| f.serial.clone()),
            at: now,
            details: serde_json::json!({
                "refusal": refusal.as_ref().map(Refusal::code),
                "signer": signer,
                "registered_first_head": own_head.then_some(true),
                "channel": s.channel,
                "state_corporation": counter,
            }),
        };
        let submitted = self.store.submit(&application, &event)?;
        let status_token = matches!(submitted, Submitted::New(_)).then_some(token.secret);
        Ok(Registered { submitted, status_token })
    }

    /// Registry and signature checks of a submission: a refusal, the notice address (given on
    /// the application, else the registry's) and the signer.
    fn registration_checks(&self, s: &Submission, keys: &[ApplicantKey]) -> Result<Checked, RaError> {
        let person = self.registry.person(&s.iin)?;
        let email = s.email.clone().or_else(|| person.as_ref().and_then(|p| p.email.clone()));
        if !s.kind.is_revocation() {
            // A revocation is served whatever the registry says: a dead person's keys must be
            // revocable too.
            let Some(person) = person else {
                return Ok((Some(Refusal::PersonNotInRegistry(s.iin.as_string())), email, None));
            };
            if let Err(r) = check_person(&person, s.bin.is_some()) {
                return Ok((Some(r), email, None));
            }
            if let Some(bin) = &s.bin {
                if self.registry.legal_entity(bin)?.is_none() {
                    return Ok((Some(Refusal::EntityNotInRegistry(bin.as_string())), email, None));
                }
            }
        }
        let Some(cms) = &s.signature else { return Ok((None, email, None)) };
        let statement = Statement {
            action: "submit",
            number: None,
            kind: s.kind,
            iin: s.iin,
            bin: s.bin,
            serials: s.serials.clone(),
            keys: Self::key_digests(keys),
        };
        let expectation = Expectation {
            iin: Some(s.iin),
            bin: s.bin,
            any_role: Vec::new(),
            key_type: KeyType::Sign,
            at: self.clock.now(),
        };
        match self.verify(cms, &statement, &expectation, None) {
            Ok(facts) => Ok((None, email, Some(facts))),
            Err(RaError::Refused(r)) => Ok((Some(r), email, None)),
            Err(e) => Err(e),
        }
    }

    /// Verify a signature for a step and match the signer against the expectation; also make
    /// sure a signer certificate of this CA is issued and not revoked in our own store.
    fn verify(
        &self,
        cms: &[u8],
        statement: &Statement,
        expected: &Expectation,
        not_iin: Option<&Iin>,
    ) -> Result<SignerFacts, RaError> {
        self.verify_step(cms, statement, expected, not_iin).map_err(|(e, _)| e)
    }

    /// [`Self::verify`], also telling whether a refusal is the signer's own ("process 10" when
    /// he is the operator): a signature over this application's statement by someone holding
    /// the role the step needs that fails the check (expired or revoked certificate, his own
    /// application, the wrong key). A replay, a revocation status that cannot be had, a
    /// signature over anything else (another application's statement) and a signature by
    /// someone without the role are not: they refuse the request, not the application.
    fn verify_step(
        &self,
        cms: &[u8],
        statement: &Statement,
        expected: &Expectation,
        not_iin: Option<&Iin>,
    ) -> Result<SignerFacts, (RaError, bool)> {
        let payload = SignedPayload { cms: cms.to_vec(), content: statement.canonical() };
        let refuse = |why: String, signers_own: bool| {
            let _ = self.certificates.append_audit(
                &AuditEvent::new("ra", "signature.refused")
                    .target(statement.number.as_ref().map_or_else(|| statement.iin.as_string(), |n| n.to_string()))
                    .details(serde_json::json!({ "action": statement.action, "reason": why })),
            );
            (RaError::Refused(Refusal::Signature(why)), signers_own)
        };
        let facts = self.signatures.check(&payload, expected).map_err(|p| {
            let own = matches!(p, SignatureProblem::Expired(_) | SignatureProblem::Revoked(_));
            refuse(p.to_string(), own)
        })?;
        let has_role = expected.any_role.is_empty() || facts.roles.iter().any(|r| expected.any_role.contains(r));
        if let Some(why) = mismatch(&facts, expected) {
            return Err(refuse(why, has_role));
        }
        if let (Some(forbidden), Some(iin)) = (not_iin, &facts.iin) {
            if forbidden == iin {
                return Err(refuse("an operator cannot confirm his own application".into(), true));
            }
        }
        let record = self.certificates.certificate(&facts.serial).map_err(|e| (e.into(), false))?;
        if let Some(record) = record {
            if record.status != CertificateStatus::Issued {
                let why = format!("the signer's certificate {} is {}", facts.serial, record.status.as_str());
                return Err(refuse(why, true));
            }
            if expected.at < record.not_before || expected.at > record.not_after {
                return Err(refuse(format!("the signer's certificate {} is not valid now", facts.serial), true));
            }
        }
        Ok(facts)
    }

    fn load(&self, number: &ApplicationNumber) -> Result<Application, RaError> {
        self.store.application(number)?.ok_or_else(|| RaError::NotFound(number.clone()))
    }

    /// What a signer of `action` on application `a` signs (its canonical bytes are signed).
    pub fn statement(&self, action: &'static str, a: &Application) -> Statement {
        Statement {
            action,
            number: Some(a.number.clone()),
            kind: a.kind,
            iin: a.iin,
            bin: a.bin,
            serials: a.serials.clone(),
            keys: Vec::new(),
        }
    }

    /// The legal entity's first head (role …4.1.2.1) or HR (…4.1.2.4) confirms an employee's
    /// application with his SIGN key.
    pub fn head_confirm(&self, number: &ApplicationNumber, cms: &[u8]) -> Result<Confirmed, RaError> {
        let a = self.load(number)?;
        if a.kind != ApplicationKind::NewEmployee {
            return Err(RaError::WrongState {
                number: a.number,
                state: a.state,
                what: "only a new-employee application is confirmed by the head".into(),
            });
        }
        // Past this step, a confirmation still has to be one of *this* application: a signature
        // over another one is a refusal, never a quiet "already done".
        let already = match a.state {
            ApplicationState::AwaitingHead => false,
            ApplicationState::Refused => return Err(refused_already(a)),
            _ => true,
        };
        let expected = Expectation {
            iin: None,
            bin: a.bin,
            // Roles to act for the entity are given by the first head (or whoever acts for him);
            // HR confirms an employee's certificate only.
            any_role: if a.roles.is_empty() { vec![Role::FirstHead, Role::Hr] } else { vec![Role::FirstHead] },
            key_type: KeyType::Sign,
            at: self.clock.now(),
        };
        let facts = self.verify(cms, &self.statement("head-confirm", &a), &expected, Some(&a.iin))?;
        if already {
            return Ok(Confirmed::Already(a));
        }
        let entity = match &a.bin {
            Some(bin) => self.registry.legal_entity(bin)?,
            None => None,
        };
        let registered_head = entity.as_ref().map(|e| Some(e.head_iin) == facts.iin);
        // A first head's certificate held by someone else than the registry's first head: he
        // acts for him (a deputy, an acting head), and is recorded as such.
        let acting = registered_head == Some(false) && facts.roles.contains(&Role::FirstHead);
        let acting_for = entity.filter(|_| acting).map(|e| e.head_iin.as_string());
        let event = NewEvent {
            step: Step::HeadConfirm,
            actor_role: ActorRole::Head,
            actor: facts.iin.map_or_else(|| facts.serial.to_hex(), |i| i.as_string()),
            signer_serial: Some(facts.serial.clone()),
            at: self.clock.now(),
            details: serde_json::json!({
                "roles": facts.roles,
                "registered_first_head": registered_head,
                "acting_for": acting_for,
                "roles_confirmed": a.roles,
            }),
        };
        self.move_on(&a, ApplicationState::AwaitingOperator, event)
    }

    /// The applicant reads his application with a signed request: his SIGN key's CMS over the
    /// application's `status` statement (a certificate of the application's IIN, valid now).
    pub fn applicant_view(&self, number: &ApplicationNumber, cms: &[u8]) -> Result<Application, RaError> {
        let a = self.load(number)?;
        let expected = Expectation {
            iin: Some(a.iin),
            bin: None,
            any_role: Vec::new(),
            key_type: KeyType::Sign,
            at: self.clock.now(),
        };
        self.verify(cms, &self.statement("status", &a), &expected, None)?;
        Ok(a)
    }

    /// The operator checked the applicant's identity and the form (no signature: the EDS comes
    /// with the confirmation).
    pub fn verify_identity(&self, number: &ApplicationNumber, operator: &str) -> Result<Confirmed, RaError> {
        let a = self.load(number)?;
        match a.state {
            ApplicationState::AwaitingOperator => {}
            ApplicationState::AwaitingHead => return Err(needs_head(a)),
            ApplicationState::Refused => return Err(refused_already(a)),
            _ => return Ok(Confirmed::Already(a)),
        }
        let event = operator_event(Step::OperatorVerify, operator, None, self.clock.now());
        self.move_on(&a, ApplicationState::Verified, event)
    }

    /// The operator confirms with his own EDS: the service provider's operator (CA-operator
    /// role) the applications of his counter and online ones, a State Corporation operator
    /// (its role) those taken at a State Corporation counter — each only his own channel's
    /// (document 004: sections 2 and 8 give each his own flows).
    pub fn confirm(&self, number: &ApplicationNumber, operator: &str, cms: &[u8]) -> Result<Confirmed, RaError> {
        let a = self.load(number)?;
        // Once confirmed, a confirmation still has to be one of *this* application: a signature
        // over another one is a refusal, never a quiet "already done".
        let step = match a.state {
            ApplicationState::AwaitingOperator => Some(Step::OperatorVerifyConfirm),
            ApplicationState::Verified => Some(Step::OperatorConfirm),
            ApplicationState::AwaitingHead => return Err(needs_head(a)),
            ApplicationState::Refused => return Err(refused_already(a)),
            _ => None,
        };
        let expected = Expectation {
            iin: None,
            bin: None,
            any_role: vec![confirmer_role(a.channel)],
            key_type: KeyType::Sign,
            at: self.clock.now(),
        };
        let facts = match self.verify_step(cms, &self.statement("operator-confirm", &a), &expected, Some(&a.iin)) {
            Ok(facts) => facts,
            // "Process 10": the operator's own signature fails the check; the service is
            // refused, the refusal stored and sent to the applicant.
            Err((RaError::Refused(refusal), true)) if step.is_some() => {
                self.refuse_with(&a, operator, refusal.clone())?;
                return Err(RaError::Refused(refusal));
            }
            Err((e, _)) => return Err(e),
        };
        let Some(step) = step else {
            return Ok(Confirmed::Already(a));
        };
        let event = operator_event(step, operator, Some(facts.serial), self.clock.now());
        self.move_on(&a, ApplicationState::Confirmed, event)
    }

    /// The operator refuses ("process 8"): the person or the form does not match. The applicant
    /// is sent the refusal with its text.
    pub fn refuse(&self, number: &ApplicationNumber, operator: &str, reason: &str) -> Result<Application, RaError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().any(char::is_control) {
            return Err(RaError::Invalid("give the reason of the refusal in one line".into()));
        }
        let a = self.load(number)?;
        self.refuse_with(&a, operator, Refusal::OperatorRefused(reason.to_owned()))
    }

    /// Refuse an open application with `refusal`, queueing its notice in the same transaction.
    fn refuse_with(&self, a: &Application, operator: &str, refusal: Refusal) -> Result<Application, RaError> {
        let reason = match &refusal {
            Refusal::OperatorRefused(r) | Refusal::Signature(r) => r.clone(),
            other => other.to_string(),
        };
        let transition = Transition {
            from: vec![
                ApplicationState::AwaitingHead,
                ApplicationState::AwaitingOperator,
                ApplicationState::Verified,
                ApplicationState::Confirmed,
            ],
            to: ApplicationState::Refused,
            event: NewEvent {
                details: serde_json::json!({ "reason": reason, "refusal": refusal.code() }),
                ..operator_event(Step::Refuse, operator, None, self.clock.now())
            },
            serials: None,
            refusal: Some(stored(&refusal)),
            notice: super::notices::refusal_of(a, &refusal.to_string()),
            token: None,
        };
        match self.store.transition(&a.number, &transition)? {
            Transitioned::Applied(a) => Ok(a),
            Transitioned::NotApplicable(a) => Err(RaError::WrongState {
                number: a.number.clone(),
                state: a.state,
                what: "it can no longer be refused".into(),
            }),
        }
    }

    fn move_on(&self, a: &Application, to: ApplicationState, event: NewEvent) -> Result<Confirmed, RaError> {
        let transition =
            Transition { from: vec![a.state], to, event, serials: None, refusal: None, notice: None, token: None };
        match self.store.transition(&a.number, &transition)? {
            Transitioned::Applied(a) => Ok(Confirmed::Now(a)),
            // Someone else moved it first: a second confirmation is harmless.
            Transitioned::NotApplicable(a) if a.state != ApplicationState::Refused => Ok(Confirmed::Already(a)),
            Transitioned::NotApplicable(a) => Err(refused_already(a)),
        }
    }
}

/// The role an operator's certificate needs to confirm an application of `channel`.
pub fn confirmer_role(channel: Channel) -> Role {
    match channel {
        Channel::StateCorporation => Role::StateCorporationOperator,
        Channel::ServiceProvider | Channel::Online => Role::CaOperator,
    }
}

pub(super) fn stored(r: &Refusal) -> StoredRefusal {
    StoredRefusal { code: r.code(), message: r.to_string() }
}

pub(super) fn operator_event(
    step: Step,
    operator: &str,
    signer: Option<SerialNumber>,
    at: time::OffsetDateTime,
) -> NewEvent {
    NewEvent {
        step,
        actor_role: ActorRole::Operator,
        actor: operator.to_owned(),
        signer_serial: signer,
        at,
        details: serde_json::Value::Null,
    }
}

fn refused_already(a: Application) -> RaError {
    RaError::WrongState { number: a.number, state: a.state, what: "it was refused".into() }
}

fn needs_head(a: Application) -> RaError {
    RaError::WrongState {
        number: a.number,
        state: a.state,
        what: "the legal entity's first head or HR must confirm it first".into(),
    }
}
