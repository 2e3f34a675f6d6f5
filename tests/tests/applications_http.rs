//! Applicants over HTTP, end to end against the running server, with what an applicant's
//! machine makes: keys and CSRs by `openssl req -new`, signatures by `openssl cms -sign`.
//!
//! Flow 1 for a legal entity's employee: apply with his own CSRs → the first head confirms →
//! the operator verifies and confirms (operator-signed requests) → issued for his keys → the
//! maildir notice's link downloads the certificates once → `openssl verify` passes → the link
//! answers 410. Every refusal arrives in the maildir word for word. Bad input: a weak key, a
//! key already used, a CSR whose signature fails, install tokens reused, expired or of another
//! application.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::Engine;
use ca_core::clock::SystemClock;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::{ProfileId, Role};
use ca_core::ra::outbox::{send_due, Maildir};
use ca_core::ra::{RaStore, Refusal, RegistrationAuthority, SignatureCheck, StoreRegistry};
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use ca_tests::{openssl_csr, openssl_ok, write_pem};
use fixtures::registry as reg;
use fixtures::TestCa;
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::{json, Value};
use time::Duration;

/// Where the notices' links point; the test sends the path to its own port.
const BASE_URL: &str = "https://ca.example.test";
/// The portal's bearer token (unsigned applications come through the portal).
const PORTAL_TOKEN: &str = "portal-token-for-applications";

use common::{Holder, ShiftedClock};

struct Running {
    ca: TestCa,
    store: Arc<SqliteStore>,
    port: u16,
    clock: Arc<ShiftedClock>,
    maildir: PathBuf,
    _runtime: tokio::runtime::Runtime,
}

fn start() -> Running {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let certificates = vec![ca.root.certificate_der.clone(), ca.issuing.certificate_der.clone()];
    let common::Running { ca, port, clock, _runtime } = common::start_with(ca, None, |services| {
        services.ca_certificates = certificates;
        services.public_base_url = BASE_URL.into();
        services.install_ttl = Duration::hours(72);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(PORTAL_TOKEN.as_bytes()));
        services.api_tokens.set(Arc::new(ca_server::ApiTokens::parse(&digest).unwrap()));
    });
    // The test's own connection to the server's database.
    let store = Arc::new(SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
    let import = ca_core::ra::csv::parse(&reg::registry_csv()).unwrap();
    store.import_registry(&import, "test").unwrap();
    let maildir = ca.dir.path().join("mail");
    Running { ca, store, port, clock, maildir, _runtime }
}

impl Running {
    fn http(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
        ca_tests::http(self.port, method, path, &[("Content-Type", content_type)], body)
    }

    fn json(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let (status, body) = self.http(method, path, content_type, body);
        let v = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
        (status, v)
    }

    /// Submit as the portal does (with its bearer token).
    fn apply(&self, application: &Value) -> (u16, Value) {
        let auth = format!("Bearer {PORTAL_TOKEN}");
        let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
        let (status, body) =
            ca_tests::http(self.port, "POST", "/api/v1/applications", &headers, application.to_string().as_bytes());
        (status, serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())))
    }

    fn admin(&self, number: &str, step: &str, signer: &Holder, content: &Value) -> (u16, Value) {
        let cms = self.openssl_sign(signer, &format!("{number}-{step}"), content.to_string().as_bytes());
        let path = format!("/api/v1/admin/applications/{number}/{step}");
        self.json("POST", &path, "application/pkcs7-mime", &cms)
    }

    /// A certificate of this CA with `roles` for person `n` (of organisation `org`, if given).
    fn holder(&self, profile: ProfileId, n: u32, org: Option<u32>, roles: Vec<Role>) -> Holder {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let subject = match org {
            Some(k) => fixtures::employee(n, k),
            None => fixtures::individual(n),
        };
        let cert = self
            .ca
            .issuer(&SystemClock)
            .issue(&IssuanceRequest { profile, subject, roles, public_key: key.public_key().clone() })
            .unwrap();
        Holder { key, cert }
    }

    /// `openssl cms -sign` of `content` by `h` (attached, signed attributes as openssl makes them).
    fn openssl_sign(&self, h: &Holder, name: &str, content: &[u8]) -> Vec<u8> {
        let dir = self.ca.dir.path();
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&key, h.key.to_encrypted_pem(b"pw").unwrap().as_bytes()).unwrap();
        let cert = write_pem(dir, &format!("{name}.pem"), "CERTIFICATE", &h.cert.der);
        let issuing = write_pem(dir, "issuing.pem", "CERTIFICATE", &self.ca.issuing.certificate_der);
        let data = dir.join(format!("{name}.data"));
        std::fs::write(&data, content).unwrap();
        let out = dir.join(format!("{name}.cms"));
        let p = |p: &Path| p.to_str().unwrap().to_owned();
        openssl_ok(&[
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-md",
            "sha256",
            "-outform",
            "DER",
            "-signer",
            &p(&cert),
            "-inkey",
            &p(&key),
            "-passin",
            "pass:pw",
            "-certfile",
            &p(&issuing),
            "-in",
            &p(&data),
            "-out",
            &p(&out),
        ]);
        std::fs::read(out).unwrap()
    }

    /// Carry out a confirmed application the way `ca application issue` does, for the
    /// applicant's own keys, and deliver the notices to the maildir.
    fn issue(&self, number: &str) -> Result<(), ca_core::ra::RaError> {
        let registry = StoreRegistry(self.store.as_ref());
        let ra = self.ra(&registry, &NoSignatures);
        let issuer = self.ca.issuer(self.clock.as_ref());
        ra.issue_for_applicant_keys(&number.parse().unwrap(), &issuer, "operator-1").map(|_| ())
    }

    fn ra<'a>(&'a self, registry: &'a StoreRegistry<'a>, check: &'a dyn SignatureCheck) -> RegistrationAuthority<'a> {
        RegistrationAuthority {
            store: self.store.as_ref(),
            certificates: self.store.as_ref(),
            registry,
            signatures: check,
            clock: self.clock.as_ref(),
            install_url: BASE_URL,
            install_ttl: Duration::hours(72),
        }
    }

    /// Deliver the outbox; every message in the maildir so far, as (to, subject, body).
    fn mail(&self) -> Vec<(String, String, String)> {
        send_due(self.store.as_ref(), &Maildir::new(&self.maildir, "nca@example.test"), self.clock.as_ref(), 100)
            .unwrap();
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(self.maildir.join("new")).unwrap().flatten().map(|e| e.path()).collect();
        files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        files.iter().map(|f| parse_mail(&std::fs::read_to_string(f).unwrap())).collect()
    }

    /// The applicant's AUTH and SIGN requests made by openssl, PEM.
    fn csrs(&self, name: &str) -> (String, String) {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
        let auth = openssl_csr(self.ca.dir.path(), &format!("{name}-auth"), &ec);
        let sign = openssl_csr(self.ca.dir.path(), &format!("{name}-sign"), &ec);
        (String::from_utf8(auth).unwrap(), String::from_utf8(sign).unwrap())
    }
}

/// The RA's signature check is not reached when issuing.
struct NoSignatures;
impl SignatureCheck for NoSignatures {
    fn check(
        &self,
        _: &ca_core::ra::SignedPayload,
        _: &ca_core::ra::Expectation,
    ) -> Result<ca_core::ra::SignerFacts, ca_core::ra::SignatureProblem> {
        Err(ca_core::ra::SignatureProblem::Unavailable("not used".into()))
    }
}

/// (To, Subject, body) of an RFC 5322 message as the maildir transport writes it.
fn parse_mail(text: &str) -> (String, String, String) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let header = |name: &str| {
        let mut value = String::new();
        let mut inside = false;
        for line in head.split("\r\n") {
            if let Some(v) = line.strip_prefix(&format!("{name}: ")) {
                value.push_str(v);
                inside = true;
            } else if inside && line.starts_with(' ') {
                value.push_str(line.trim_start());
            } else {
                inside = false;
            }
        }
        value
    };
    let decode_words = |v: String| -> String {
        v.split("?=")
            .filter_map(|w| w.trim().strip_prefix("=?UTF-8?B?"))
            .map(|b| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap())
            .collect::<String>()
    };
    let subject = header("Subject");
    let subject = if subject.starts_with("=?") { decode_words(subject) } else { subject };
    let body = base64::engine::general_purpose::STANDARD.decode(body.replace("\r\n", "")).unwrap();
    (header("To"), subject, String::from_utf8(body).unwrap().replace("\r\n", "\n"))
}

/// The install link's path and query from a notice.
fn install_path(body: &str) -> String {
    let start = body.find(&format!("{BASE_URL}/install/")).expect("an install link in the notice");
    let link: String = body[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    link.strip_prefix(BASE_URL).unwrap().to_owned()
}

fn pem_blocks(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----\n").filter(|b| b.contains("BEGIN")).map(String::from).collect()
}

#[test]
fn flow_one_for_an_employee_over_http_with_his_own_keys_and_a_one_time_install_link() {
    let r = start();
    let org = 3;
    let applicant = 40;
    let (auth_csr, sign_csr) = r.csrs("employee");
    let email = "employee40@mail.example.test";
    let (status, v) = r.apply(&json!({
        "kind": "new-employee",
        "iin": fixtures::person(applicant).iin.as_string(),
        "bin": fixtures::organisation(org).bin.as_string(),
        "email": email,
        "csr_auth": auth_csr,
        "csr_sign": sign_csr,
    }));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["application"]["state"], "awaiting-head", "{v}");
    assert_eq!(v["application"]["email"], email);
    let number = v["application"]["number"].as_str().unwrap().to_owned();
    let status_token = v["status_token"].as_str().unwrap().to_owned();

    // "Process 6": the application form with its number, to the address given on the application.
    let mail = r.mail();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].0, email);
    assert!(mail[0].1.contains(&number), "{:?}", mail[0]);
    assert!(mail[0].2.contains(&format!("Уникальный номер заявления: {number}")), "{}", mail[0].2);

    // The first head confirms with his SIGN key (openssl cms -sign over the statement).
    let registry = StoreRegistry(r.store.as_ref());
    let ra = r.ra(&registry, &NoSignatures);
    let a = r.store.application(&number.parse().unwrap()).unwrap().unwrap();
    let head = r.holder(ProfileId::LegalSign, reg::head_of(org), Some(org), vec![Role::FirstHead]);
    let head_cms = r.openssl_sign(&head, "head", &ra.statement("head-confirm", &a).canonical());
    let path = format!("/api/v1/applications/{number}/head-confirm");
    let (status, v) = r.json("POST", &path, "application/pkcs7-mime", &head_cms);
    assert_eq!((status, v["application"]["state"].as_str()), (200, Some("awaiting-operator")), "{v}");
    // The same signature again is a replay.
    let (status, v) = r.json("POST", &path, "application/pkcs7-mime", &head_cms);
    assert_eq!(status, 403, "{v}");

    // The operator verifies and confirms, each an operator-signed request.
    let operator = r.holder(ProfileId::IndividualSign, 200, None, vec![Role::CaOperator]);
    let (status, v) =
        r.admin(&number, "verify", &operator, &json!({ "action": "operator-verify", "application": number }));
    assert_eq!((status, v["application"]["state"].as_str()), (200, Some("verified")), "{v}");
    let confirm = r.openssl_sign(&operator, "confirm", &ra.statement("operator-confirm", &a).canonical());
    let (status, v) =
        r.json("POST", &format!("/api/v1/admin/applications/{number}/confirm"), "application/pkcs7-mime", &confirm);
    assert_eq!((status, v["application"]["state"].as_str()), (200, Some("confirmed")), "{v}");

    // The applicant follows it with his status token: every event with its budget and deadline.
    let (status, v) = r.json("GET", &format!("/api/v1/applications/{number}?t={status_token}"), "text/plain", b"");
    assert_eq!(status, 200, "{v}");
    let steps: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["register", "head-confirm", "operator-verify", "operator-confirm"]);
    assert!(v["events"][2]["deadline"].is_string() && v["events"][2]["budget"].is_object(), "{v}");
    let (status, _) = r.json("GET", &format!("/api/v1/applications/{number}?t=wrong"), "text/plain", b"");
    assert_eq!(status, 404);

    // Issued for the applicant's own keys; the notice carries the install link.
    r.issue(&number).unwrap();
    let mail = r.mail();
    let notice = &mail.last().unwrap().2;
    assert!(notice.contains("выпущены"), "{notice}");
    let link = install_path(notice);
    assert!(link.starts_with(&format!("/install/{number}?t=")), "{link}");
    let token = link.split("t=").nth(1).unwrap();
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert!(!r.store.application_events(None).unwrap().iter().any(|e| e.details.to_string().contains(token)));

    // Another application's number with this token, or a wrong token: 404, and nothing is spent.
    let other = r
        .apply(&json!({ "kind": "new-individual", "iin": fixtures::person(41).iin.as_string(),
        "csr_auth": r.csrs("other").0, "csr_sign": r.csrs("other2").1 }))
        .1;
    let other_number = other["application"]["number"].as_str().unwrap();
    for path in [
        format!("/install/{other_number}?t={token}"),
        format!("/install/{number}?t=x{token}"),
        format!("/install/{number}"),
    ] {
        let (status, v) = r.json("GET", &path, "text/plain", b"");
        assert_eq!((status, v["message"].as_str()), (404, Some("no such install link")), "{path}: {v}");
    }

    let (status, pem) = r.http("GET", &link, "text/plain", b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pem));
    let pem = String::from_utf8(pem).unwrap();
    let blocks = pem_blocks(&pem);
    assert_eq!(blocks.len(), 4, "AUTH, SIGN, issuing CA, root:\n{pem}");
    let dir = r.ca.dir.path();
    let root = write_pem(dir, "root.pem", "CERTIFICATE", &r.ca.root.certificate_der);
    std::fs::write(dir.join("downloaded-chain.pem"), blocks[2..].concat()).unwrap();
    for (i, block) in blocks[..2].iter().enumerate() {
        let leaf = dir.join(format!("downloaded-{i}.pem"));
        std::fs::write(&leaf, block).unwrap();
        let out = openssl_ok(&[
            "verify",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            dir.join("downloaded-chain.pem").to_str().unwrap(),
            leaf.to_str().unwrap(),
        ]);
        assert!(out.contains(": OK"), "{out}");
        // The certificate is for the applicant's own key from his CSR.
        let csr = dir.join(if i == 0 { "employee-auth.csr" } else { "employee-sign.csr" });
        let csr_key = openssl_ok(&["req", "-in", csr.to_str().unwrap(), "-noout", "-pubkey"]);
        let cert_key = openssl_ok(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-pubkey"]);
        assert_eq!(csr_key, cert_key);
    }
    // The link is spent.
    let (status, v) = r.json("GET", &link, "text/plain", b"");
    assert_eq!(status, 410, "{v}");
    let journal = journaled(&r.store);
    assert_eq!(journal.iter().filter(|a| *a == "install.download").count(), 1);
    assert!(journal.iter().filter(|a| *a == "install.refused").count() >= 4, "{journal:?}");
    assert!(ca_core::store::Store::verify_audit(r.store.as_ref()).unwrap().is_intact());
}

fn journaled(store: &SqliteStore) -> Vec<String> {
    let mut found = Vec::new();
    ca_core::store::Store::audit_entries(store, &Default::default(), &mut |e| {
        found.push(e.event.action.clone());
        Ok(())
    })
    .unwrap();
    found
}

#[test]
fn every_refusal_reaches_the_applicant_word_for_word() {
    let r = start();
    let registry = StoreRegistry(r.store.as_ref());
    let ra = r.ra(&registry, &NoSignatures);

    // "Process 3": not in the person registry; the address is the one given on the application.
    let absent = fixtures::person(reg::NOT_IN_REGISTRY).iin;
    let (auth, sign) = r.csrs("absent");
    let (status, v) = r
        .apply(&json!({ "kind": "new-individual", "iin": absent.as_string(), "email": "absent@mail.example.test",
            "csr_auth": auth, "csr_sign": sign }));
    assert_eq!((status, v["application"]["state"].as_str()), (201, Some("refused")), "{v}");
    let process_3 = format!(
        "Сведения об услугополучателе с ИИН {absent} отсутствуют в государственной базе данных \"Физические лица\". \
         В оказании услуги отказано"
    );
    assert_eq!(v["application"]["refusal"]["message"], process_3.as_str());

    // "Process 8": the operator refuses, with his reason.
    let operator = r.holder(ProfileId::IndividualSign, 201, None, vec![Role::CaOperator]);
    let (auth, sign) = r.csrs("p8");
    let n8 = r
        .apply(&json!({ "kind": "new-individual", "iin": fixtures::person(50).iin.as_string(),
        "csr_auth": auth, "csr_sign": sign }))
        .1["application"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let reason = "документ, удостоверяющий личность, не соответствует заявлению";
    let (status, v) =
        r.admin(&n8, "refuse", &operator, &json!({ "action": "operator-refuse", "application": n8, "reason": reason }));
    assert_eq!((status, v["application"]["state"].as_str()), (200, Some("refused")), "{v}");
    let process_8 = format!("Отказ оператора: {reason}");

    // "Process 10": the operator confirms his own application: the service is refused.
    let (auth, sign) = r.csrs("p10");
    let n10 = r
        .apply(&json!({ "kind": "new-individual", "iin": fixtures::person(201).iin.as_string(),
        "csr_auth": auth, "csr_sign": sign }))
        .1["application"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let a10 = r.store.application(&n10.parse().unwrap()).unwrap().unwrap();
    let cms = r.openssl_sign(&operator, "own", &ra.statement("operator-confirm", &a10).canonical());
    let (status, v) =
        r.json("POST", &format!("/api/v1/admin/applications/{n10}/confirm"), "application/pkcs7-mime", &cms);
    assert_eq!(status, 403, "{v}");
    let a10 = r.store.application(&a10.number).unwrap().unwrap();
    assert_eq!(a10.state, ca_core::ra::ApplicationState::Refused, "a stored refusal, not a no-op");
    let process_10 = Refusal::Signature("an operator cannot confirm his own application".into()).to_string();
    assert_eq!(a10.refusal.as_ref().unwrap().message, process_10);

    // "Process 5" of a repeat issuance: signed by someone else's key.
    let stranger = r.holder(ProfileId::IndividualSign, 52, None, vec![]);
    let (auth, sign) = r.csrs("p5");
    let iin = fixtures::person(51).iin;
    let keys =
        ca_core::ra::ApplicantCsrs { auth: auth.clone().into_bytes(), sign: sign.clone().into_bytes() }.keys().unwrap();
    let statement = ca_core::ra::Statement {
        action: "submit",
        number: None,
        kind: ca_core::ra::ApplicationKind::Repeat,
        iin,
        bin: None,
        serials: Vec::new(),
        keys: RegistrationAuthority::key_digests(&keys),
    };
    let cms = r.openssl_sign(&stranger, "p5", &statement.canonical());
    let (status, v) = r.apply(&json!({ "kind": "repeat", "iin": iin.as_string(), "csr_auth": auth, "csr_sign": sign,
        "signature": base64::engine::general_purpose::STANDARD.encode(&cms) }));
    assert_eq!((status, v["application"]["state"].as_str()), (201, Some("refused")), "{v}");
    let process_5 = v["application"]["refusal"]["message"].as_str().unwrap().to_owned();
    assert!(process_5.starts_with("Подпись не принята: ") && process_5.contains("IIN"), "{process_5}");

    let mail = r.mail();
    let refusals: Vec<&(String, String, String)> = mail.iter().filter(|m| m.1.starts_with("Отказ")).collect();
    assert_eq!(refusals.len(), 4, "{mail:?}");
    for (to, text) in [
        ("absent@mail.example.test", &process_3),
        ("person50@example.kz", &process_8),
        ("person201@example.kz", &process_10),
        ("person51@example.kz", &process_5),
    ] {
        let found = refusals.iter().find(|m| m.0 == to).unwrap_or_else(|| panic!("no refusal to {to}: {mail:?}"));
        assert!(found.2.lines().any(|l| l == text.as_str()), "{to}: {:?} lacks the line {text:?}", found.2);
    }
}

#[test]
fn bad_csrs_and_reused_keys_are_refused_and_nothing_is_stored() {
    let r = start();
    let dir = r.ca.dir.path().to_owned();
    let apply = |n: u32, auth: &str, sign: &str| {
        r.apply(&json!({ "kind": "new-individual", "iin": fixtures::person(n).iin.as_string(), "csr_auth": auth, "csr_sign": sign }))
    };
    let (auth, sign) = r.csrs("good");

    // An unsigned application comes from the portal: without its token, 401; another, 403.
    let body = json!({ "kind": "new-individual", "iin": fixtures::person(60).iin.as_string(), "csr_auth": auth, "csr_sign": sign });
    let (status, v) = r.json("POST", "/api/v1/applications", "application/json", body.to_string().as_bytes());
    assert_eq!(status, 401, "{v}");
    let headers = [("Content-Type", "application/json"), ("Authorization", "Bearer not-the-portal")];
    let (status, _) = ca_tests::http(r.port, "POST", "/api/v1/applications", &headers, body.to_string().as_bytes());
    assert_eq!(status, 403);

    // A weak key: RSA-1024 fails the issuer's key policy.
    let weak = String::from_utf8(openssl_csr(&dir, "weak", &["-newkey", "rsa:1024"])).unwrap();
    let (status, v) = apply(60, &weak, &sign);
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("AUTH key's request"), "{v}");

    // No proof of possession: the CSR's signature does not verify (one bit of it flipped).
    let der_path = dir.join("good-auth.der");
    openssl_ok(&[
        "req",
        "-in",
        dir.join("good-auth.csr").to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der_path.to_str().unwrap(),
    ]);
    let mut der = std::fs::read(&der_path).unwrap();
    let last = der.len() - 3;
    der[last] ^= 0x01;
    let tampered = base64::engine::general_purpose::STANDARD.encode(&der);
    let (status, v) = apply(60, &tampered, &sign);
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("proof of possession"), "{v}");

    // AUTH and SIGN must be two keys.
    let (status, v) = apply(60, &auth, &auth);
    assert_eq!(status, 400, "{v}");
    assert!(r.store.applications(&Default::default()).unwrap().is_empty(), "nothing was registered");

    // A key on another open application, and then in an issued certificate, is refused.
    let (status, v) = apply(60, &auth, &sign);
    assert_eq!(status, 201, "{v}");
    let first = v["application"]["number"].as_str().unwrap().to_owned();
    let (status, v) = apply(61, &auth, &r.csrs("fresh").1);
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains(&format!("application {first}")), "{v}");
    let operator = r.holder(ProfileId::IndividualSign, 202, None, vec![Role::CaOperator]);
    let registry = StoreRegistry(r.store.as_ref());
    let ra = r.ra(&registry, &NoSignatures);
    let a = r.store.application(&first.parse().unwrap()).unwrap().unwrap();
    let cms = r.openssl_sign(&operator, "confirm-first", &ra.statement("operator-confirm", &a).canonical());
    let (status, v) =
        r.json("POST", &format!("/api/v1/admin/applications/{first}/confirm"), "application/pkcs7-mime", &cms);
    assert_eq!(status, 200, "{v}");
    r.issue(&first).unwrap();
    let (status, v) = apply(62, &r.csrs("fresh2").0, &sign);
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("certificate "), "{v}");
    assert_eq!(r.store.applications(&Default::default()).unwrap().len(), 1);
}

#[test]
fn an_install_link_serves_pkcs7_and_der_and_expires() {
    let r = start();
    let operator = r.holder(ProfileId::IndividualSign, 203, None, vec![Role::CaOperator]);
    let registry = StoreRegistry(r.store.as_ref());
    let ra = r.ra(&registry, &NoSignatures);
    let mut links = Vec::new();
    for n in [70, 71] {
        let (auth, sign) = r.csrs(&format!("p{n}"));
        let (_, v) = r.apply(&json!({ "kind": "new-individual", "iin": fixtures::person(n).iin.as_string(),
            "csr_auth": auth, "csr_sign": sign }));
        let number = v["application"]["number"].as_str().unwrap().to_owned();
        let a = r.store.application(&number.parse().unwrap()).unwrap().unwrap();
        let cms = r.openssl_sign(&operator, &format!("c{n}"), &ra.statement("operator-confirm", &a).canonical());
        let (status, v) =
            r.json("POST", &format!("/api/v1/admin/applications/{number}/confirm"), "application/pkcs7-mime", &cms);
        assert_eq!(status, 200, "{v}");
        r.issue(&number).unwrap();
        let notice = r.mail().into_iter().rev().find(|m| m.1.contains(&number) && m.1.contains("выпущены")).unwrap();
        links.push(install_path(&notice.2));
    }
    // PKCS#7 certs-only: openssl reads all four certificates.
    let (status, p7c) = r.http("GET", &format!("{}&format=p7c", links[0]), "text/plain", b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&p7c));
    let path = r.ca.dir.path().join("bundle.p7c");
    std::fs::write(&path, &p7c).unwrap();
    let printed = openssl_ok(&["pkcs7", "-inform", "DER", "-in", path.to_str().unwrap(), "-print_certs", "-noout"]);
    assert_eq!(printed.matches("subject=").count(), 4, "{printed}");
    assert_eq!(r.http("GET", &format!("{}&format=p7c", links[0]), "text/plain", b"").0, 410);

    // Past its validity the second link answers 410, whatever the format.
    r.clock.0.store(73 * 3600, Ordering::Relaxed);
    let (status, body) = r.http("GET", &format!("{}&format=der&cert=sign", links[1]), "text/plain", b"");
    assert_eq!(status, 410, "{}", String::from_utf8_lossy(&body));
    r.clock.0.store(0, Ordering::Relaxed);
    // Within it, DER of one certificate.
    let (status, der) = r.http("GET", &format!("{}&format=der&cert=sign", links[1]), "text/plain", b"");
    assert_eq!(status, 200);
    let cert = r.ca.dir.path().join("sign.cer");
    std::fs::write(&cert, &der).unwrap();
    let usage = openssl_ok(&["x509", "-inform", "DER", "-in", cert.to_str().unwrap(), "-noout", "-ext", "keyUsage"]);
    assert!(usage.contains("Non Repudiation"), "{usage}");
}

#[test]
fn an_applicant_with_an_eds_reads_his_application_by_signed_request() {
    let r = start();
    let registry = StoreRegistry(r.store.as_ref());
    let ra = r.ra(&registry, &NoSignatures);
    let n = 80;
    let (auth, sign) = r.csrs("reader");
    let (_, v) = r.apply(&json!({ "kind": "new-individual", "iin": fixtures::person(n).iin.as_string(),
        "csr_auth": auth, "csr_sign": sign }));
    let number = v["application"]["number"].as_str().unwrap().to_owned();
    let a = r.store.application(&number.parse().unwrap()).unwrap().unwrap();
    let statement = ra.statement("status", &a).canonical();
    let path = format!("/api/v1/applications/{number}/status");

    let own = r.holder(ProfileId::IndividualSign, n, None, vec![]);
    let cms = r.openssl_sign(&own, "status-own", &statement);
    let (status, v) = r.json("POST", &path, "application/pkcs7-mime", &cms);
    assert_eq!((status, v["application"]["number"].as_str()), (200, Some(number.as_str())), "{v}");
    assert_eq!(v["events"][0]["step"], "register");
    // The same request again is a replay; someone else's signature, or his AUTH key, is refused.
    let (status, v) = r.json("POST", &path, "application/pkcs7-mime", &cms);
    assert_eq!(status, 403, "{v}");
    let other = r.holder(ProfileId::IndividualSign, n + 1, None, vec![]);
    let (status, v) =
        r.json("POST", &path, "application/pkcs7-mime", &r.openssl_sign(&other, "status-other", &statement));
    assert_eq!(status, 403, "{v}");
    assert!(v.get("application").is_none(), "{v}");
    let auth_key = r.holder(ProfileId::IndividualAuth, n, None, vec![]);
    let (status, v) =
        r.json("POST", &path, "application/pkcs7-mime", &r.openssl_sign(&auth_key, "status-auth", &statement));
    assert_eq!(status, 403, "{v}");
    let (status, _) = r.json("POST", &path, "application/pkcs7-mime", b"");
    assert_eq!(status, 401);
}
