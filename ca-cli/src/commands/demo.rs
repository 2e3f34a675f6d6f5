//! `ca demo`: the whole lifecycle on a fresh directory with the embedded SQLite store.

use ca_core::identity::{Iin, Person, Subject};
use ca_core::signer::Signer;
use clap::Args;
use hsm::{KeyAlgorithm, SoftwareKey};

use crate::commands::{audit, crl, init, issue, ocsp, revoke, show};
use crate::context::Context;
use crate::failure::Failure;
use crate::{Cli, Outcome};

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Key algorithm of both CA keys (rsa4096 as in production; p384 is faster).
    #[arg(long, default_value = "rsa4096")]
    pub ca_key: String,
}

fn step(title: &str) {
    println!("\n== {title}");
}

pub fn run(cli: &Cli, args: &DemoArgs) -> Outcome {
    if cli.json {
        return Err(Failure::Input("the demo prints a narrative; run it without --json".into()));
    }
    step(&format!("ca init --dir {}", cli.dir.display()));
    init::run(
        cli,
        &init::InitArgs {
            root_key: args.ca_key.clone(),
            issuing_key: args.ca_key.clone(),
            base_url: "http://127.0.0.1:8080".into(),
            root_cn: None,
            ca_policies: Default::default(),
            issuing_cn: None,
            hsm_module: None,
            hsm_token: None,
            store: None,
        },
    )?;
    let ctx = Context::open(cli)?;

    let iin = Iin::with_check_digit("88010130001").expect("fixture IIN is valid").to_string();
    let person = |profile: &str| issue::IssueArgs {
        profile: profile.into(),
        iin: Some(iin.clone()),
        surname: Some("Тестов".into()),
        given_name: Some("Тест".into()),
        patronymic: Some("Тестович".into()),
        email: Some("test.testov@example.kz".into()),
        generate_key: true,
        key_algorithm: Some("rsa2048".into()),
        p12_password_env: "CA_P12_PASSWORD".into(),
        ..Default::default()
    };

    step("an individual's two certificates, keys generated here and delivered as PKCS#12");
    let auth = issue::issue_one(&ctx, &person("individual-auth"))?;
    issue::print_human(&auth);
    let sign = issue::issue_one(&ctx, &person("individual-sign"))?;
    issue::print_human(&sign);

    step("a legal-entity first head's SIGN certificate from a CSR (P-256 key made by the applicant)");
    let applicant_key = SoftwareKey::generate(KeyAlgorithm::P256)?;
    let csr_subject = Subject::Individual(Person {
        iin: iin.parse().map_err(|e: ca_core::identity::IdNumberError| Failure::Input(e.to_string()))?,
        surname: "ignored".into(),
        given_name: "the CA takes the subject from the application".into(),
        patronymic: None,
        email: None,
    })
    .to_name()
    .map_err(|e| Failure::Input(e.to_string()))?;
    let csr = ca_core::csr::build_csr(csr_subject, &applicant_key).map_err(|e| Failure::Internal(e.into()))?;
    let csr_path = ctx.dir.issued().join("demo-applicant.csr");
    std::fs::write(&csr_path, crate::pem::encode("CERTIFICATE REQUEST", &csr)?)
        .map_err(|e| Failure::Internal(e.into()))?;
    println!("applicant key {}, CSR at {}", applicant_key.algorithm().name(), csr_path.display());
    let legal = issue::issue_one(
        &ctx,
        &issue::IssueArgs {
            profile: "legal-sign".into(),
            iin: Some(iin.clone()),
            surname: Some("Тестов".into()),
            given_name: Some("Тест".into()),
            patronymic: Some("Тестович".into()),
            email: Some("ceo@example.kz".into()),
            bin: Some(ca_core::identity::Bin::with_check_digit("12134001234").expect("fixture BIN").to_string()),
            org: Some("АО \"ТЕСТОВАЯ КОМПАНИЯ\"".into()),
            roles: vec!["first-head".into()],
            csr: Some(csr_path),
            p12_password_env: "CA_P12_PASSWORD".into(),
            ..Default::default()
        },
    )?;
    issue::print_human(&legal);

    step(&format!("ca list --iin {iin}"));
    show::list(&ctx, &show::ListArgs { iin: Some(iin.clone()), limit: 100, ..Default::default() })?;

    step("ca revoke <individual SIGN> --reason keyCompromise");
    let rev = revoke::RevokeArgs { serial: sign.serial.clone(), reason: "keyCompromise".into(), invalidity_date: None };
    revoke::run(&ctx, &rev)?;

    step("ca revoke <the same> again: idempotent, and says so");
    match revoke::run(&ctx, &rev) {
        Err(Failure::Already(msg)) => println!("{msg}"),
        other => other?,
    }

    step("ca crl publish: the full CRL lists it, the delta builds on the full one");
    crl::run(
        &ctx,
        &crl::CrlCommand::Publish(crl::PublishArgs { which: crl::Which::Both, pem: true, out: None, root: false }),
    )?;

    step("ca revoke <legal SIGN> --reason certificateHold, then ca crl publish --which delta");
    revoke::run(
        &ctx,
        &revoke::RevokeArgs { serial: legal.serial.clone(), reason: "certificateHold".into(), invalidity_date: None },
    )?;
    crl::run(
        &ctx,
        &crl::CrlCommand::Publish(crl::PublishArgs { which: crl::Which::Delta, pem: false, out: None, root: false }),
    )?;

    step("ca show <individual SIGN>: status and the CRL that first listed it");
    show::show(&ctx, &show::ShowArgs { serial: sign.serial.clone(), pem: false })?;

    step("ca ocsp init: the delegated OCSP responder (serve it with `ca serve`)");
    ocsp::run(
        &ctx,
        &ocsp::OcspCommand::Init(ocsp::OcspInitArgs {
            key_algorithm: "rsa2048".into(),
            validity_days: 90,
            ca: None,
            hsm: Default::default(),
        }),
    )?;

    step("ca audit checkpoint: sign the journal's head (ca init signed the first; `ca serve` signs hourly)");
    audit::run(&ctx, &audit::AuditCommand::Checkpoint)?;

    step("ca audit verify: the chain, and the journal still holds the signed checkpoint");
    audit::run(&ctx, &audit::AuditCommand::Verify(audit::VerifyArgs::default()))?;

    println!(
        "\nDemo complete. Try: openssl pkcs12 -in {} -info -nokeys",
        auth.pkcs12.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    );
    Ok(())
}
