//! `ca application new|show|list|verify|confirm|refuse|issue`: the operator's side of the RA.
//!
//! Signed steps (`confirm`, `head-confirm`, and `new` for repeat / revoke-signed) take the CMS
//! SignedData in a file (`--signature FILE`), over the bytes `ca application statement` prints
//! (attached or detached). It is verified with `ca_core::cms` against this CA's chain, with the
//! signer's revocation status from the store at the time of the step.

use std::path::{Path, PathBuf};

use ca_core::cms::{StoreRevocationSource, TrustStore};
use ca_core::identity::{Bin, Iin};
use ca_core::ra::application::{ApplicationKind, ApplicationNumber, ApplicationState, Channel};
use ca_core::ra::cms_check::{CmsSignatureCheck, SingleUse};
use ca_core::ra::store::ApplicationQuery;
use ca_core::ra::{
    ApplicantCsrs, Application, RaError, RegistrationAuthority, Statement, StoreRegistry, Submission, Submitted,
};
use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use clap::{Args, Subcommand};
use hsm::SoftwareKey;

use super::delivery::Pkcs12Files;
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::secrets::SecretSource;
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum ApplicationCommand {
    /// Register an application (the registry check runs now; a refusal is stored and shown).
    New(Box<NewArgs>),
    /// One application with its transitions.
    Show {
        /// The application number (A-YYYY-NNNNNN).
        number: String,
    },
    /// Applications, newest first.
    List(ListArgs),
    /// The operator checked the applicant's identity and the form.
    Verify {
        /// The application number (A-YYYY-NNNNNN).
        number: String,
    },
    /// The first head or HR confirms an employee's application with his EDS.
    HeadConfirm(SignedArgs),
    /// The operator confirms with his own EDS (CA-operator role).
    Confirm(SignedArgs),
    /// The operator refuses: the person or the form does not match ("process 8").
    Refuse {
        /// The application number (A-YYYY-NNNNNN).
        number: String,
        /// Why, in words the applicant will read in the notice.
        #[arg(long)]
        reason: String,
    },
    /// Carry out a confirmed application: issue AUTH + SIGN key stores, or revoke.
    Issue(IssueArgs),
    /// Record a step at the counter: `present` (the applicant presents his form: the operator's
    /// time starts), and in the card flow `enter-pin` and `applicant-sign`.
    Step {
        /// The application number (A-YYYY-NNNNNN).
        number: String,
        /// present, enter-pin or applicant-sign.
        step: String,
    },
    /// Print the exact bytes a signer signs for a step (to stdout, no newline).
    Statement(StatementArgs),
    /// A State Corporation counter's numbered receipt (of acceptance or of refusal), as text,
    /// or as PDF with --pdf.
    Receipt {
        /// The receipt number (R-YYYY-NNNNNN).
        number: String,
        /// Write it as PDF to this file.
        #[arg(long)]
        pdf: Option<PathBuf>,
    },
    /// Finish an application a crashed worker left issuing/revoking: complete it when both key
    /// stores were delivered, otherwise revoke what it issued and give it back to be carried out
    /// again.
    Recover {
        /// The application number (A-YYYY-NNNNNN).
        number: String,
        /// Only when the claim is older than this many minutes.
        #[arg(long, default_value_t = 10)]
        stale_minutes: u32,
        /// Where the interrupted issuance wrote key stores (its --p12-dir); default issued/.
        #[arg(long)]
        p12_dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct StatementArgs {
    /// submit (a signed new application), head-confirm, operator-confirm, or status (the
    /// applicant reads his application over HTTP with a signed request).
    #[arg(long)]
    pub action: String,
    /// The application (head-confirm, operator-confirm).
    #[arg(long, required_unless_present = "kind")]
    pub number: Option<String>,
    /// For `submit`: the kind, IIN, BIN and serials of the application to be submitted.
    #[arg(long, requires = "iin")]
    pub kind: Option<String>,
    /// For `submit`: the applicant's IIN.
    #[arg(long)]
    pub iin: Option<String>,
    /// For `submit`: the organisation's BIN (employees' applications).
    #[arg(long)]
    pub bin: Option<String>,
    /// For `submit`: a certificate serial (hex) the application names (repeatable).
    #[arg(long = "serial")]
    pub serials: Vec<String>,
    /// For `submit` with the applicant's own keys: his AUTH request (with --csr-sign).
    #[arg(long, requires = "csr_sign")]
    pub csr_auth: Option<PathBuf>,
    /// For `submit` with the applicant's own keys: his SIGN request (with --csr-auth).
    #[arg(long, requires = "csr_auth")]
    pub csr_sign: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct NewArgs {
    /// new-individual, new-employee, repeat, revoke-signed, revoke-counter, card (at the
    /// counter, with --arrived-at …).
    #[arg(long)]
    pub kind: String,
    /// The applicant's IIN (12 digits, checked against the person registry).
    #[arg(long)]
    pub iin: String,
    /// The organisation's BIN, for an employee's application.
    #[arg(long)]
    pub bin: Option<String>,
    /// A certificate to revoke (repeatable; default: all valid certificates of the IIN).
    #[arg(long = "serial")]
    pub serials: Vec<String>,
    /// Revocation reason (RFC 5280 name).
    #[arg(long)]
    pub reason: Option<String>,
    /// The applicant's CMS signature (repeat, revoke-signed).
    #[arg(long)]
    pub signature: Option<PathBuf>,
    /// The applicant's AUTH key request (PKCS#10, PEM or DER) made by his signing client;
    /// with --csr-sign. Only the public key is taken.
    #[arg(long, requires = "csr_sign")]
    pub csr_auth: Option<PathBuf>,
    /// The applicant's SIGN key request (PKCS#10, PEM or DER); with --csr-auth.
    #[arg(long, requires = "csr_auth")]
    pub csr_sign: Option<PathBuf>,
    /// Where the applicant's notices go (default: the address in the person registry).
    #[arg(long)]
    pub email: Option<String>,
    /// new-employee: a legal-entity role asked for (first-head, signing-right, financial-signing,
    /// hr; repeatable), confirmed by the entity's first head.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Where the applicant is served: service-provider (its counter), state-corporation (a
    /// State Corporation counter: --consent and --document required), online.
    #[arg(long, default_value = "service-provider")]
    pub channel: String,
    #[command(flatten)]
    pub paper: super::state_corporation::CounterPaperArgs,
    /// At the counter (card, revoke-counter): when the applicant came (RFC 3339).
    #[arg(long)]
    pub arrived_at: Option<String>,
    /// At the counter: when the operator identified him (RFC 3339).
    #[arg(long, requires = "arrived_at")]
    pub identified_at: Option<String>,
    /// At the counter (card): when the forms were filled through the gateway (RFC 3339).
    #[arg(long, requires = "arrived_at")]
    pub form_filled_at: Option<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only in this state: awaiting-head, awaiting-operator, verified, confirmed, issuing,
    /// revoking, issued, revoked, refused.
    #[arg(long)]
    pub state: Option<String>,
    /// Only this applicant's (IIN).
    #[arg(long)]
    pub iin: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Args, Debug)]
pub struct SignedArgs {
    /// The application number (A-YYYY-NNNNNN).
    pub number: String,
    /// File holding the CMS SignedData over the application's canonical encoding
    /// (made by the desktop signing client, or `openssl cms -sign` over `ca application statement`).
    #[arg(long, required_unless_present = "p12")]
    pub signature: Option<PathBuf>,
    /// Or sign here with the signer's own PKCS#12 key store (password from `--p12-password-env`,
    /// default CA_SIGNER_P12_PASSWORD, or a prompt).
    #[arg(long, conflicts_with = "signature")]
    pub p12: Option<PathBuf>,
    /// Environment variable holding the password of the `--p12` key store.
    #[arg(long, default_value = "CA_SIGNER_P12_PASSWORD", value_name = "VAR")]
    pub p12_password_env: String,
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    /// The application number (A-YYYY-NNNNNN).
    pub number: String,
    /// Staff only, for an application without the applicant's own keys (CSRs): generate his
    /// key pairs here and hand them over as PKCS#12 files. The key stores' password is the
    /// applicant's: typed by him at the prompt, or from `--p12-password-env`.
    #[arg(long)]
    pub generate_keys: bool,
    /// Directory for the PKCS#12 files (--generate-keys); default issued/ in the CA directory.
    #[arg(long, requires = "generate_keys")]
    pub p12_dir: Option<PathBuf>,
    /// Environment variable holding the applicant's PKCS#12 password (--generate-keys).
    #[arg(long, default_value = "CA_APPLICANT_P12_PASSWORD", value_name = "VAR")]
    pub p12_password_env: String,
}

fn number(s: &str) -> Result<ApplicationNumber, Failure> {
    s.parse().map_err(|e: ca_core::ra::application::BadNumber| Failure::Input(e.to_string()))
}

/// The applicant's two requests, when given.
fn read_csrs(auth: Option<&Path>, sign: Option<&Path>) -> Result<Option<ApplicantCsrs>, Failure> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Failure::Input(format!("cannot read {}: {e}", p.display())));
    match (auth, sign) {
        (Some(a), Some(s)) => Ok(Some(ApplicantCsrs { auth: read(a)?, sign: read(s)? })),
        (None, None) => Ok(None),
        _ => Err(Failure::Input("give both --csr-auth and --csr-sign".into())),
    }
}

fn read_signature(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Input(format!("cannot read the signature {}: {e}", path.display())))
}

/// The CMS for a signed step: read from `--signature`, or made here with the signer's PKCS#12.
fn signature_for(
    ctx: &Context,
    ra: &RegistrationAuthority<'_>,
    n: &ApplicationNumber,
    action: &'static str,
    args: &SignedArgs,
) -> Result<Vec<u8>, Failure> {
    if let Some(path) = &args.signature {
        return read_signature(path);
    }
    let path = args.p12.as_ref().ok_or_else(|| Failure::Input("give --signature FILE or --p12 FILE".into()))?;
    let der = std::fs::read(path).map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display())))?;
    let source = SecretSource { what: "key store password", env: args.p12_password_env.clone(), file: None };
    let password = source.read(false)?;
    let (key, certificates) = hsm::read_pkcs12(&der, &password)?;
    let (certificate, chain) =
        certificates.split_first().ok_or_else(|| Failure::Input("the key store holds no certificate".into()))?;
    let a = ra.store.application(n)?.ok_or_else(|| Failure::NotFound(format!("no application {n}")))?;
    let statement = ra.statement(action, &a).canonical();
    ca_core::cms::sign(&statement, false, &key, certificate, chain, ca_core::clock::Clock::now(&ctx.clock))
        .map_err(|e| Failure::Internal(e.into()))
}

impl From<RaError> for Failure {
    fn from(e: RaError) -> Self {
        match e {
            RaError::Refused(r) => Failure::Refused(r.to_string()),
            RaError::NotFound(_) => Failure::NotFound(e.to_string()),
            RaError::AlreadyDone(_) | RaError::InProgress(_) => Failure::Already(e.to_string()),
            RaError::WrongState { .. } | RaError::Invalid(_) | RaError::NotSupported(_) => {
                Failure::Input(e.to_string())
            }
            RaError::Card(ref m) if m.contains("PIN") => Failure::Auth(e.to_string()),
            other => Failure::Internal(anyhow::Error::new(other)),
        }
    }
}

fn print_application(ctx: &Context, a: &Application) -> Outcome {
    let events = ctx.store.application_events(Some(&a.number))?;
    if ctx.json {
        print_json(&serde_json::json!({ "application": a, "events": events }));
        return Ok(());
    }
    println!(
        "{} {} {} IIN {}{} ({})",
        a.number,
        a.kind,
        a.state,
        a.iin,
        a.bin.map(|b| format!(" BIN {b}")).unwrap_or_default(),
        a.channel
    );
    if let Some(p) = &a.paperwork {
        if let Some(c) = &p.consent {
            let scan = c.scan_sha256.as_deref().map(|s| format!(", scan SHA-256 {s}")).unwrap_or_default();
            println!("  consent taken by {} at {}{scan}", c.taken_by, when(c.taken_at));
        }
        if let Some(r) = &p.representative {
            println!("  representative IIN {} {}, power of attorney {}", r.iin, r.name, r.power_of_attorney);
        }
        let docs: Vec<&str> = p.documents.iter().map(|d| d.name()).collect();
        println!("  documents: {}", docs.join(", "));
        if let Some(r) = &p.receipt {
            println!("  receipt of acceptance {r}");
        }
    }
    if let Some(r) = &a.refusal {
        println!("  refusal [{}]: {}", r.code, r.message);
    }
    for s in &a.serials {
        println!("  certificate {s}");
    }
    for e in &events {
        println!(
            "  {} {:<24} {} → {} by {}:{}{}{}",
            when(e.at),
            e.step.name(),
            e.from.map_or("-", ApplicationState::name),
            e.to,
            e.actor_role.name(),
            e.actor,
            e.signer_serial.as_ref().map(|s| format!(" (EDS {s})")).unwrap_or_default(),
            if e.breached { " BUDGET BREACHED" } else { "" }
        );
    }
    Ok(())
}

/// The CMS-backed signature check of this CA (trust: its root; intermediates: every generation
/// of the issuing CA; revocation: the store).
pub struct Verifier {
    trust: TrustStore,
    chain: Vec<Vec<u8>>,
}

impl Verifier {
    pub fn new(ctx: &Context) -> Result<Self, Failure> {
        let roots = ctx.root_certificates()?;
        let mut chain = ctx.issuing_certificates()?;
        let trust = TrustStore::new(&roots, &chain).map_err(|e| Failure::Internal(e.into()))?;
        chain.extend(roots);
        Ok(Self { trust, chain })
    }

    pub fn check<'a>(&'a self, ctx: &'a Context) -> Result<CmsSignatureCheck<'a>, Failure> {
        let revocation =
            StoreRevocationSource::new(ctx.store.as_ref(), &self.chain).map_err(|e| Failure::Internal(e.into()))?;
        Ok(CmsSignatureCheck { trust: &self.trust, revocation, clock: &ctx.clock })
    }
}

pub fn run(ctx: &Context, cmd: &ApplicationCommand) -> Outcome {
    let registry = StoreRegistry(ctx.store.as_ref());
    let verifier = Verifier::new(ctx)?;
    let signatures = verifier.check(ctx)?;
    let ra = RegistrationAuthority {
        store: ctx.store.as_ref(),
        certificates: ctx.store.as_ref(),
        registry: &registry,
        signatures: &signatures,
        clock: &ctx.clock,
        install_url: ctx.config.server.link_base(),
        install_ttl: ctx.config.server.install_ttl(),
    };
    // Confirmations take each signature once: the same CMS presented again is a replay.
    let single_use = SingleUse { inner: &signatures, requests: ctx.store.as_ref(), clock: &ctx.clock };
    let confirming = RegistrationAuthority { signatures: &single_use, ..ra };
    match cmd {
        ApplicationCommand::New(args) => {
            let kind: ApplicationKind =
                args.kind.parse().map_err(|e: ca_core::ra::application::UnknownKind| Failure::Input(e.to_string()))?;
            let iin: Iin =
                args.iin.parse().map_err(|e: ca_core::identity::IdNumberError| Failure::Input(e.to_string()))?;
            let bin: Option<Bin> = args
                .bin
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: ca_core::identity::IdNumberError| Failure::Input(e.to_string()))?;
            let serials = args
                .serials
                .iter()
                .map(|s| s.parse::<SerialNumber>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::Input(e.to_string()))?;
            let reason = args
                .reason
                .as_deref()
                .map(str::parse::<RevocationReason>)
                .transpose()
                .map_err(|e| Failure::Input(e.to_string()))?;
            let signature = args.signature.as_deref().map(read_signature).transpose()?;
            let operator = (kind == ApplicationKind::RevokeCounter).then(|| ctx.actor.clone());
            let csrs = read_csrs(args.csr_auth.as_deref(), args.csr_sign.as_deref())?;
            let roles = args
                .roles
                .iter()
                .map(|r| r.parse::<ca_core::profile::Role>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::Input(e.to_string()))?;
            let channel: Channel = args.channel.parse().map_err(Failure::Input)?;
            let submission = Submission {
                kind,
                channel,
                iin,
                bin,
                serials,
                revocation_reason: reason,
                signature,
                operator,
                email: args.email.clone(),
                csrs,
                roles,
            };
            let times = super::counter::CounterTimes {
                arrived_at: args.arrived_at.as_deref(),
                identified_at: args.identified_at.as_deref(),
                form_filled_at: args.form_filled_at.as_deref(),
            };
            let submitted = if channel == Channel::StateCorporation {
                super::state_corporation::submit(ctx, &ra, &submission, &args.paper, &times)?
            } else if args.paper.given() {
                return Err(Failure::Input(
                    "--consent, --document and --representative-iin are for --channel state-corporation".into(),
                ));
            } else {
                super::counter::submit(ctx, &ra, &submission, &times)?
            };
            let a = submitted.application();
            if !ctx.json && matches!(submitted, Submitted::Existing(_)) {
                println!("(the same application is already open)");
            }
            print_application(ctx, a)?;
            match &a.refusal {
                // The refusal is stored; the exit code says so, and the message is shown again
                // on stderr (or in the JSON document printed above).
                Some(r) => Err(Failure::Refused(if ctx.json { String::new() } else { r.message.clone() })),
                None => Ok(()),
            }
        }
        ApplicationCommand::Show { number: n } => {
            let n = number(n)?;
            let a = ctx.store.application(&n)?.ok_or_else(|| Failure::NotFound(format!("no application {n}")))?;
            print_application(ctx, &a)
        }
        ApplicationCommand::List(args) => {
            let state = args
                .state
                .as_deref()
                .map(|s| ApplicationState::parse(s).ok_or_else(|| Failure::Input(format!("unknown state {s:?}"))))
                .transpose()?;
            let iin =
                args.iin.as_deref().map(str::parse::<Iin>).transpose().map_err(|e| Failure::Input(e.to_string()))?;
            let list = ctx.store.applications(&ApplicationQuery { state, kind: None, iin, limit: Some(args.limit) })?;
            if ctx.json {
                print_json(&list);
            } else {
                for a in &list {
                    println!("{} {:<14} {:<17} IIN {} {}", a.number, a.kind, a.state, a.iin, when(a.created_at));
                }
            }
            Ok(())
        }
        ApplicationCommand::Verify { number: n } => {
            let a = ra.verify_identity(&number(n)?, &ctx.actor)?;
            print_application(ctx, a.application())
        }
        ApplicationCommand::HeadConfirm(args) => {
            let n = number(&args.number)?;
            let cms = signature_for(ctx, &ra, &n, "head-confirm", args)?;
            let a = confirming.head_confirm(&n, &cms)?;
            print_application(ctx, a.application())
        }
        ApplicationCommand::Confirm(args) => {
            let n = number(&args.number)?;
            let cms = signature_for(ctx, &ra, &n, "operator-confirm", args)?;
            let a = confirming.confirm(&n, &ctx.actor, &cms)?;
            print_application(ctx, a.application())
        }
        ApplicationCommand::Step { number: n, step } => {
            let a = super::counter::step(ctx, &ra, &number(n)?, step)?;
            print_application(ctx, &a)
        }
        ApplicationCommand::Refuse { number: n, reason } => {
            let a = ra.refuse(&number(n)?, &ctx.actor, reason)?;
            print_application(ctx, &a)
        }
        ApplicationCommand::Issue(args) => issue(ctx, &ra, args),
        ApplicationCommand::Recover { number: n, stale_minutes, p12_dir } => {
            // Recovery only looks for and takes back key stores: it holds no key and no password.
            let dir = p12_dir.clone().unwrap_or_else(|| ctx.dir.issued());
            let delivery = Pkcs12Files { dir, keys: Vec::new(), password: "", chain: Vec::new() };
            let stale = time::Duration::minutes((*stale_minutes).into());
            let done = ra.recover(&number(n)?, &ctx.actor, stale, &delivery)?;
            if !ctx.json {
                for s in &done.revoked {
                    println!("revoked {s} (its key was lost with the interrupted worker)");
                }
                if done.completed {
                    println!("completed: both key stores had been delivered; the notice is queued");
                }
            }
            print_application(ctx, &done.application)
        }
        ApplicationCommand::Receipt { number: n, pdf } => {
            super::state_corporation::show_receipt(ctx, n, pdf.as_deref())
        }
        ApplicationCommand::Statement(args) => {
            let action: &'static str = match args.action.as_str() {
                "submit" => "submit",
                "head-confirm" => "head-confirm",
                "operator-confirm" => "operator-confirm",
                "status" => "status",
                other => {
                    return Err(Failure::Input(format!(
                        "unknown action {other:?}; use submit, head-confirm, operator-confirm or status"
                    )))
                }
            };
            let statement = match (&args.number, action) {
                (Some(n), "head-confirm" | "operator-confirm" | "status") => {
                    let n = number(n)?;
                    let a =
                        ra.store.application(&n)?.ok_or_else(|| Failure::NotFound(format!("no application {n}")))?;
                    ra.statement(action, &a)
                }
                (None, "submit") => {
                    let kind: ApplicationKind = args
                        .kind
                        .as_deref()
                        .unwrap_or_default()
                        .parse()
                        .map_err(|e: ca_core::ra::application::UnknownKind| Failure::Input(e.to_string()))?;
                    let iin: Iin = args
                        .iin
                        .as_deref()
                        .unwrap_or_default()
                        .parse()
                        .map_err(|e: ca_core::identity::IdNumberError| Failure::Input(e.to_string()))?;
                    let bin = args
                        .bin
                        .as_deref()
                        .map(str::parse::<Bin>)
                        .transpose()
                        .map_err(|e| Failure::Input(e.to_string()))?;
                    let serials = args
                        .serials
                        .iter()
                        .map(|s| s.parse::<SerialNumber>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| Failure::Input(e.to_string()))?;
                    let keys = match read_csrs(args.csr_auth.as_deref(), args.csr_sign.as_deref())? {
                        Some(csrs) => RegistrationAuthority::key_digests(&csrs.keys()?),
                        None => Vec::new(),
                    };
                    Statement { action, number: None, kind, iin, bin, serials, keys }
                }
                _ => return Err(Failure::Input(
                    "submit takes --kind/--iin (no --number); head-confirm, operator-confirm and status take --number"
                        .into(),
                )),
            };
            use std::io::Write;
            std::io::stdout().write_all(&statement.canonical()).map_err(|e| Failure::Internal(e.into()))?;
            Ok(())
        }
    }
}

fn issue(ctx: &Context, ra: &RegistrationAuthority<'_>, args: &IssueArgs) -> Outcome {
    let n = number(&args.number)?;
    let a = ctx.store.application(&n)?.ok_or_else(|| Failure::NotFound(format!("no application {n}")))?;
    if a.kind.is_revocation() {
        let done = ra.revoke(&n, &ctx.actor)?;
        return print_application(ctx, &done.application);
    }
    if a.state != ApplicationState::Confirmed {
        return Err(Failure::Input(format!("application {n} is {}: only a confirmed application is issued", a.state)));
    }
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    let issuer = ctx.issuer(&ca);
    if !ctx.store.application_keys(&n)?.is_empty() {
        // The applicant brought his own keys: certificates only, installed from the notice's link.
        if args.generate_keys {
            return Err(Failure::Input(format!(
                "application {n} came with the applicant's own keys: no key is generated here (drop --generate-keys)"
            )));
        }
        let done = ra.issue_for_applicant_keys(&n, &issuer, &ctx.actor)?;
        return print_application(ctx, &done.application);
    }
    if !args.generate_keys {
        return Err(Failure::Input(format!(
            "application {n} has no keys of the applicant's own (CSRs): he sends them with the application, or \
             staff generate his key pairs here with --generate-keys (the key stores' password is then his)"
        )));
    }
    let p12_dir = ctx.key_store_dir(args.p12_dir.as_deref())?;
    let alg = ctx.end_entity_key_algorithm()?;
    let password =
        SecretSource { what: "the applicant's key store password", env: args.p12_password_env.clone(), file: None }
            .read(true)?;
    // Keys are generated here; ca-core gets the public keys only.
    let auth = SoftwareKey::generate(alg)?;
    let sign = SoftwareKey::generate(alg)?;
    let public = |k: &SoftwareKey| ca_core::signer::Signer::public_key(k).clone();
    let delivery = Pkcs12Files { dir: p12_dir, keys: vec![&auth, &sign], password: &password, chain: ctx.chain_der()? };
    let done = ra.issue(&n, &issuer, public(&auth), public(&sign), &ctx.actor, &delivery)?;
    if !ctx.json {
        for cert in &done.certificates {
            println!("key store {}", delivery.path(cert).display());
        }
    }
    print_application(ctx, &done.application)
}
