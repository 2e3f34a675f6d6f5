//! `ca issue`: one certificate from a CSR, or with a server-generated key delivered as a
//! password-protected PKCS#12 named as the national profile names it.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ca_core::fs::{write_atomically, AtomicWrite};
use ca_core::identity::{Bin, Iin, Organisation, Person, Subject};
use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::{ProfileId, Role};
use clap::Args;
use hsm::{KeyAlgorithm, SoftwareKey};
use serde::Serialize;

use super::pending::{self, Pending};
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::secrets::SecretSource;
use crate::Outcome;

#[derive(Args, Debug, Clone, Default)]
pub struct IssueArgs {
    /// individual-auth, individual-sign, legal-auth, legal-sign, tsa (the OCSP responder's: `ca ocsp init|renew`).
    #[arg(long)]
    pub profile: String,
    /// The holder's IIN (12 digits).
    #[arg(long)]
    pub iin: Option<String>,
    /// The holder's surname.
    #[arg(long)]
    pub surname: Option<String>,
    /// First name.
    #[arg(long)]
    pub given_name: Option<String>,
    /// Patronymic (written into G).
    #[arg(long)]
    pub patronymic: Option<String>,
    /// Email, written into subjectAltName (rfc822Name).
    #[arg(long)]
    pub email: Option<String>,
    /// BIN of the legal entity (legal-* profiles).
    #[arg(long)]
    pub bin: Option<String>,
    /// Name of the legal entity (legal-* profiles).
    #[arg(long)]
    pub org: Option<String>,
    /// Common name of a service certificate (ocsp-responder, tsa).
    #[arg(long)]
    pub common_name: Option<String>,
    /// Role: first-head, signing-right, financial-signing, hr, employee, ca-operator … (repeatable).
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// PKCS#10 request (PEM or DER); `-` reads standard input.
    #[arg(long, conflicts_with = "generate_key", required_unless_present = "generate_key")]
    pub csr: Option<PathBuf>,
    /// Generate the key here and deliver key and certificate as a PKCS#12 file.
    #[arg(long)]
    pub generate_key: bool,
    /// Key algorithm for --generate-key (default from ca.toml: rsa2048).
    #[arg(long, requires = "generate_key")]
    pub key_algorithm: Option<String>,
    /// Where to write the certificate (PEM); default issued/<serial>.pem in the CA directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Directory for the PKCS#12 file; default issued/ in the CA directory.
    #[arg(long, requires = "generate_key")]
    pub p12_dir: Option<PathBuf>,
    /// Environment variable holding the PKCS#12 password.
    #[arg(long, default_value = "CA_P12_PASSWORD", value_name = "VAR")]
    pub p12_password_env: String,
    /// File whose first line is the PKCS#12 password.
    #[arg(long, value_name = "PATH")]
    pub p12_password_file: Option<PathBuf>,
}

#[derive(Serialize)]
pub struct IssueReport {
    pub serial: String,
    pub profile: String,
    pub subject: String,
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
    pub roles: Vec<Role>,
    pub not_before: String,
    pub not_after: String,
    pub ski: String,
    pub certificate: PathBuf,
    pub pkcs12: Option<PathBuf>,
}

fn required<'a>(v: &'a Option<String>, flag: &str, profile: ProfileId) -> Result<&'a str, Failure> {
    v.as_deref().ok_or_else(|| Failure::Input(format!("the {profile} profile needs --{flag}")))
}

/// Build the subject from the application data given on the command line.
pub fn subject_from_args(args: &IssueArgs, profile: ProfileId) -> Result<Subject, Failure> {
    use ca_core::profile::SubjectKind;
    let kind = profile.profile().subject;
    if matches!(kind, SubjectKind::Service | SubjectKind::CertificateAuthority) {
        let cn = match (&args.common_name, profile) {
            (Some(cn), _) => cn.clone(),
            (None, ProfileId::OcspResponder) => "OCSP RESPONDER".to_owned(),
            (None, _) => return Err(Failure::Input(format!("the {profile} profile needs --common-name"))),
        };
        return Ok(Subject::Service { common_name: cn, organisation: args.org.clone() });
    }
    let iin: Iin = required(&args.iin, "iin", profile)?
        .parse()
        .map_err(|e: ca_core::identity::IdNumberError| Failure::Input(e.to_string()))?;
    let person = Person {
        iin,
        surname: required(&args.surname, "surname", profile)?.to_owned(),
        given_name: required(&args.given_name, "given-name", profile)?.to_owned(),
        patronymic: args.patronymic.clone(),
        email: args.email.clone(),
    };
    match kind {
        SubjectKind::Employee => {
            let bin: Bin = required(&args.bin, "bin", profile)?
                .parse()
                .map_err(|e: ca_core::identity::IdNumberError| Failure::Input(e.to_string()))?;
            let name = required(&args.org, "org", profile)?.to_owned();
            Ok(Subject::Employee { person, organisation: Organisation { bin, name } })
        }
        _ => {
            if args.bin.is_some() || args.org.is_some() {
                return Err(Failure::Input(format!(
                    "the {profile} profile is for an individual: --bin and --org belong to legal-auth / legal-sign"
                )));
            }
            Ok(Subject::Individual(person))
        }
    }
}

/// Parse the roles and check them and the subject against the profile: everything that can be
/// refused before a key is opened or a serial reserved.
pub fn check_application(profile: ProfileId, subject: &Subject, roles: &[String]) -> Result<Vec<Role>, Failure> {
    let roles: Vec<Role> = roles
        .iter()
        .map(|r| r.parse())
        .collect::<Result<_, _>>()
        .map_err(|e: ca_core::profile::UnknownRole| Failure::Input(e.to_string()))?;
    profile.profile().roles_for(&roles).map_err(Failure::Input)?;
    subject.to_name().map_err(|e| Failure::Input(format!("invalid subject: {e}")))?;
    Ok(roles)
}

fn read_csr(path: &Path) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut buf).map_err(|e| Failure::Input(format!("cannot read the CSR: {e}")))?;
    } else {
        buf =
            std::fs::read(path).map_err(|e| Failure::Input(format!("cannot read the CSR {}: {e}", path.display())))?;
    }
    Ok(buf)
}

/// `AUTH_RSA256_<ski>.p12` / `RSA256_<ski>.p12` (ECDSA keys: `AUTH_ECDSA256_…` / `ECDSA256_…`).
pub fn pkcs12_file_name(profile: ProfileId, rsa: bool, ski_hex: &str) -> String {
    let family = if rsa { "RSA256" } else { "ECDSA256" };
    let auth = matches!(profile, ProfileId::IndividualAuth | ProfileId::LegalAuth);
    format!("{}{family}_{ski_hex}.p12", if auth { "AUTH_" } else { "" })
}

pub fn issue_one(ctx: &Context, args: &IssueArgs) -> Result<IssueReport, Failure> {
    let profile: ProfileId =
        args.profile.parse().map_err(|e: ca_core::profile::UnknownProfile| Failure::Input(e.to_string()))?;
    if profile.profile().is_ca() {
        return Err(Failure::Input(format!("{profile} certificates are made by `ca init`, not `ca issue`")));
    }
    if profile == ProfileId::OcspResponder {
        // A responder made here would be one the server never signs with.
        return Err(Failure::Input(
            "the OCSP responder certificate is made by `ca ocsp init` and replaced by `ca ocsp renew`, \
             which also put its key where the server uses it; `ca issue` does not make one"
                .into(),
        ));
    }
    let subject = subject_from_args(args, profile)?;
    let roles = check_application(profile, &subject, &args.roles)?;

    // Everything that can be refused is checked before the CA key is opened or a serial reserved.
    let (public_key, generated, p12_password) = if args.generate_key {
        let alg: KeyAlgorithm = args
            .key_algorithm
            .as_deref()
            .unwrap_or(&ctx.config.end_entity.key_algorithm)
            .parse()
            .map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))?;
        if !matches!(
            alg,
            KeyAlgorithm::Rsa2048
                | KeyAlgorithm::Rsa3072
                | KeyAlgorithm::Rsa4096
                | KeyAlgorithm::P256
                | KeyAlgorithm::P384
        ) {
            return Err(Failure::Input(format!("{alg} keys are not issued to applicants")));
        }
        let source = SecretSource {
            what: "PKCS#12 password",
            env: args.p12_password_env.clone(),
            file: args.p12_password_file.clone(),
        };
        let password = source.read(true)?;
        let key = SoftwareKey::generate(alg)?;
        (ca_core::signer::Signer::public_key(&key).clone(), Some((key, alg)), Some(password))
    } else {
        let path = args.csr.as_ref().ok_or_else(|| Failure::Input("give --csr FILE or --generate-key".into()))?;
        let csr = ca_core::csr::parse_and_verify(&read_csr(path)?).map_err(|e| Failure::Input(e.to_string()))?;
        (csr.public_key, None, None)
    };
    let p12_dir = args.p12_dir.clone().unwrap_or_else(|| ctx.dir.issued());
    if generated.is_some() && !p12_dir.is_dir() {
        return Err(Failure::Input(format!("{} is not a directory", p12_dir.display())));
    }
    let p12_path = generated.as_ref().map(|(key, _)| {
        p12_dir.join(super::delivery::key_store_name(profile, ca_core::signer::Signer::public_key(key)))
    });
    for path in args.out.iter().chain(&p12_path) {
        if path.exists() {
            return Err(Failure::Input(format!("{} already exists; nothing was issued", path.display())));
        }
    }

    // Runs that were interrupted are completed or revoked first (see `pending`).
    for s in pending::settle_all(ctx)? {
        eprintln!(
            "interrupted issuance of key {}: {} {}",
            s.ski,
            s.outcome,
            s.serial.as_deref().map(|x| format!("(certificate {x})")).unwrap_or_default()
        );
    }
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    let issuer = ctx.issuer(&ca);
    let marker = Pending {
        ski: hex::encode(ca_core::profile::key_identifier(&public_key)),
        iin: subject.iin(),
        bin: subject.bin(),
        started_at: ctx.clock_now().unix_timestamp(),
        certificate: args.out.clone(),
        pkcs12: p12_path.clone(),
    };
    let in_progress = marker.begin(ctx)?;
    let request = IssuanceRequest { profile, subject: subject.clone(), roles, public_key };
    let issued = match issuer.issue(&request) {
        Ok(issued) => issued,
        Err(e) => {
            // Nothing was issued: the marker has nothing to settle.
            pending::finish(in_progress)?;
            return Err(e.into());
        }
    };
    let roles_out = ca_core::identity::CertificateIdentity::from_certificate(&issued.certificate).roles;
    let cert_path = args.out.clone().unwrap_or_else(|| pending::default_certificate_path(ctx, &issued.serial));

    // The key store first: once it is in place, the certificate file can always be written again
    // from the store; the other way round a crash would leave a certificate without its key.
    let delivered = (|| -> anyhow::Result<()> {
        if let (Some((key, _)), Some(password), Some(path)) = (&generated, &p12_password, &p12_path) {
            let chain = ctx.chain_der()?;
            let p12 = hsm::build_pkcs12(key, &issued.der, &chain, password, &issued.ski_hex())?;
            write_atomically(path, &p12, AtomicWrite::PRIVATE_NEW)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let pem = crate::pem::encode("CERTIFICATE", &issued.der)?;
        write_atomically(&cert_path, pem.as_bytes(), AtomicWrite::NEW)
            .with_context(|| format!("cannot write {}", cert_path.display()))?;
        Ok(())
    })();
    if let Err(e) = delivered {
        let settled = pending::settle(ctx, &marker);
        pending::finish(in_progress)?;
        return Err(delivery_failure(&issued, e, settled.ok().map(|s| s.outcome)));
    }
    pending::finish(in_progress)?;
    let pkcs12 = p12_path;
    Ok(IssueReport {
        serial: issued.serial.to_hex(),
        profile: profile.name().to_owned(),
        subject: ca_core::identity::format_dn(&issued.certificate.tbs_certificate.subject),
        iin: subject.iin(),
        bin: subject.bin(),
        roles: roles_out,
        not_before: when(issued.not_before),
        not_after: when(issued.not_after),
        ski: issued.ski_hex(),
        certificate: cert_path,
        pkcs12,
    })
}

/// The certificate is issued and recorded but could not be handed over: say so, with the
/// serial and what was done about it (revoked when its generated key was never written).
fn delivery_failure(issued: &IssuedCertificate, e: anyhow::Error, settled: Option<&str>) -> Failure {
    let what = match settled {
        Some("revoked") => "it was revoked, since its key could not be delivered".to_owned(),
        _ => format!(
            "`ca show {}` has it; revoke it with `ca revoke {} --reason cessationOfOperation` if the key is lost",
            issued.serial, issued.serial
        ),
    };
    Failure::Internal(anyhow::anyhow!(
        "certificate {} was issued and recorded, but could not be delivered: {e:#}; {what}",
        issued.serial
    ))
}

pub fn run(ctx: &Context, args: &IssueArgs) -> Outcome {
    let report = issue_one(ctx, args)?;
    if ctx.json {
        print_json(&report);
    } else {
        print_human(&report);
    }
    Ok(())
}

pub fn print_human(r: &IssueReport) {
    println!("Issued certificate ({})", r.profile);
    println!("  serial       {}", r.serial);
    println!("  subject      {}", r.subject);
    if let Some(iin) = r.iin {
        println!("  IIN          {iin}");
    }
    if let Some(bin) = r.bin {
        println!("  BIN          {bin}");
    }
    let roles: Vec<&str> = r.roles.iter().map(|x| x.name()).collect();
    println!("  roles        {}", roles.join(", "));
    println!("  valid        {} .. {}", r.not_before, r.not_after);
    println!("  certificate  {}", r.certificate.display());
    if let Some(p) = &r.pkcs12 {
        println!("  key store    {}", p.display());
    }
}
