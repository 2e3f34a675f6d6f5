//! The registration authority's operator console (`/console` in ca-server).
//!
//! Over plain HTTP (no browser): only a CA operator's signature opens a session; a console
//! action needs the session, its CSRF token *and* a valid operator signature — with any one
//! missing, nothing changes; the queue puts the overdue application first; the audit and
//! CRL/OCSP pages show the journal's verification and the last CRL.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::{ProfileId, Role};
use ca_core::ra::{ApplicationNumber, ApplicationState, RaStore, RegistrationAuthority, StoreRegistry};
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use time::{Duration, OffsetDateTime};

mod common;
use common::*;

fn holder(ca: &TestCa, profile: ProfileId, n: u32, roles: Vec<Role>) -> Holder {
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let cert = ca
        .issuer(&SystemClock)
        .issue(&IssuanceRequest { profile, subject: individual(n), roles, public_key: key.public_key().clone() })
        .unwrap();
    Holder { key, cert }
}

/// A CMS by `h` over `content`, attached, base64 — what the signing client hands the page.
fn signed(r: &Running, h: &Holder, content: &[u8]) -> String {
    let chain = std::slice::from_ref(&r.ca.issuing.certificate_der);
    let cms = ca_core::cms::sign(content, false, &h.key, &h.cert.der, chain, SystemClock.now()).unwrap();
    b64(&cms)
}

/// An HTTP client that keeps cookies, as a browser does for one origin.
struct Client<'r> {
    r: &'r Running,
    cookies: BTreeMap<String, String>,
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn location(&self) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
    }

    fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        self.head.lines().find(|l| l.to_ascii_lowercase().starts_with(&prefix)).map(|l| l[prefix.len()..].to_owned())
    }

    /// The value of the first hidden `csrf` field of the page.
    fn csrf(&self) -> String {
        let field = r#"name="csrf" value=""#;
        let at = self.body.find(field).expect("a form token on the page") + field.len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl<'r> Client<'r> {
    fn new(r: &'r Running) -> Self {
        Self { r, cookies: BTreeMap::new() }
    }

    fn request(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Answer {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let body: String = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        let (status, head, body) = ca_tests::http_with_head(self.r.port, method, path, &headers, body.as_bytes());
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("set-cookie: ").map(|_| &line[12..]) {
                let pair = value.split(';').next().unwrap();
                let (k, v) = pair.split_once('=').unwrap();
                if v.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        Answer { status, head, body: String::from_utf8_lossy(&body).into_owned() }
    }

    fn get(&mut self, path: &str) -> Answer {
        self.request("GET", path, &[])
    }

    /// Log in as `h`: a challenge, its signature by the AUTH key, the login form.
    fn login(&mut self, h: &Holder) -> Answer {
        let page = self.get("/console/login");
        assert_eq!(page.status, 200, "{}", page.body);
        let (status, challenge) = post_json(self.r, "/api/v1/auth/challenge", &serde_json::json!({}));
        assert_eq!(status, 200, "{challenge}");
        let nonce = base64::engine::general_purpose::STANDARD.decode(challenge["nonce"].as_str().unwrap()).unwrap();
        let cms = signed(self.r, h, &nonce);
        self.request("POST", "/console/login", &[("csrf", &page.csrf()), ("cms", &cms)])
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The RA of the test, at `clock` (signatures are not checked through it).
fn ra<'a>(store: &'a SqliteStore, registry: &'a StoreRegistry<'a>, clock: &'a dyn Clock) -> RegistrationAuthority<'a> {
    RegistrationAuthority {
        store,
        certificates: store,
        registry,
        signatures: &NoSignatures,
        clock,
        install_url: "",
        install_ttl: Duration::hours(72),
    }
}

struct NoSignatures;
impl ca_core::ra::SignatureCheck for NoSignatures {
    fn check(
        &self,
        _: &ca_core::ra::SignedPayload,
        _: &ca_core::ra::Expectation,
    ) -> Result<ca_core::ra::SignerFacts, ca_core::ra::SignatureProblem> {
        Err(ca_core::ra::SignatureProblem::Unavailable("not used in this test".into()))
    }
}

/// A new-individual application of person `n` registered at `at`; presented at the counter
/// (the operator's 20 minutes start) when `present`.
fn application(store: &SqliteStore, n: u32, at: OffsetDateTime, present: bool) -> ApplicationNumber {
    application_with(store, n, at, present, None)
}

/// The same with the applicant's own keys: certificate requests made by `openssl req` in `dir`.
fn application_with_csrs(store: &SqliteStore, dir: &Path, n: u32, at: OffsetDateTime) -> ApplicationNumber {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let csrs = ca_core::ra::ApplicantCsrs {
        auth: ca_tests::openssl_csr(dir, &format!("applicant-{n}-auth"), &ec),
        sign: ca_tests::openssl_csr(dir, &format!("applicant-{n}-sign"), &ec),
    };
    application_with(store, n, at, true, Some(csrs))
}

fn application_with(
    store: &SqliteStore,
    n: u32,
    at: OffsetDateTime,
    present: bool,
    csrs: Option<ca_core::ra::ApplicantCsrs>,
) -> ApplicationNumber {
    let registry = StoreRegistry(store);
    let clock = FixedClock(at);
    let ra = ra(store, &registry, &clock);
    let submission = ca_core::ra::Submission {
        channel: ca_core::ra::Channel::ServiceProvider,
        kind: ca_core::ra::ApplicationKind::NewIndividual,
        iin: fixtures::person(n).iin,
        bin: None,
        serials: Vec::new(),
        revocation_reason: None,
        signature: None,
        operator: None,
        email: None,
        csrs,
        roles: Vec::new(),
    };
    let number = ra.submit(&submission).unwrap().application().number.clone();
    if present {
        ra.present(&number, "operator-1").unwrap();
    }
    number
}

/// A revocation of `h`'s certificate taken at the counter for person `n`.
fn counter_revocation(store: &SqliteStore, n: u32, h: &Holder) -> ApplicationNumber {
    let registry = StoreRegistry(store);
    let clock = SystemClock;
    let submission = ca_core::ra::Submission {
        channel: ca_core::ra::Channel::ServiceProvider,
        kind: ca_core::ra::ApplicationKind::RevokeCounter,
        iin: fixtures::person(n).iin,
        bin: None,
        serials: vec![h.cert.serial.clone()],
        revocation_reason: Some(ca_core::revocation::RevocationReason::KeyCompromise),
        signature: None,
        operator: Some("operator-1".into()),
        email: None,
        csrs: None,
        roles: Vec::new(),
    };
    ra(store, &registry, &clock).submit(&submission).unwrap().application().number.clone()
}

/// Full CRL number 7 of the issuing CA, published two hours ago for a day, as the store records
/// `ca crl publish`.
fn crl_published_two_hours_ago(store: &SqliteStore) {
    let now = SystemClock.now();
    let crl = ca_core::store::CrlRecord {
        issuer: "nca".into(),
        partition: None,
        kind: ca_core::store::CrlKind::Full,
        number: 7,
        base_number: None,
        this_update: now - Duration::hours(2),
        next_update: now + Duration::hours(22),
        event_seq: 0,
    };
    let event = ca_core::store::AuditEvent::new("test", "crl.publish");
    ca_core::store::Store::record_crl(store, &crl, &event).unwrap();
}

fn state(store: &SqliteStore, n: &ApplicationNumber) -> ApplicationState {
    store.application(n).unwrap().unwrap().state
}

fn with_registry() -> Running {
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
    r.ca.store.import_registry(&import, "test").unwrap();
    r
}

#[test]
fn only_an_operators_signature_opens_the_console() {
    let r = with_registry();
    let operator = holder(&r.ca, ProfileId::IndividualAuth, 31, vec![Role::CaOperator]);
    let citizen = holder(&r.ca, ProfileId::IndividualAuth, 32, vec![]);
    let operator_sign = holder(&r.ca, ProfileId::IndividualSign, 31, vec![Role::CaOperator]);

    // No session: every page sends to the login page, which is a CSP-protected form.
    let mut anonymous = Client::new(&r);
    for path in ["/console", "/console/audit", "/console/health", "/console/cards", "/console/revocations"] {
        let a = anonymous.get(path);
        assert_eq!((a.status, a.location()), (303, Some("/console/login")), "{path}");
    }
    let page = anonymous.get("/console/login");
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!page.body.contains("<script>") && !page.body.contains(" on"), "no inline script or handler");

    // A valid citizen's AUTH signature: refused with the reason, journaled, no session.
    let mut citizen_client = Client::new(&r);
    let refused = citizen_client.login(&citizen);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("нет роли оператора УЦ"), "{}", refused.body);
    assert_eq!(citizen_client.get("/console").status, 303, "no session for a citizen");

    // The operator's SIGN key is not a login key (AUTH is required).
    let mut wrong_key = Client::new(&r);
    let refused = wrong_key.login(&operator_sign);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("Вход не выполнен"), "{}", refused.body);

    // A login form posted without its token opens nothing, even with a valid signature.
    let mut forged = Client::new(&r);
    let (_, challenge) = post_json(&r, "/api/v1/auth/challenge", &serde_json::json!({}));
    let nonce = base64::engine::general_purpose::STANDARD.decode(challenge["nonce"].as_str().unwrap()).unwrap();
    let cms = signed(&r, &operator, &nonce);
    let a = forged.request("POST", "/console/login", &[("csrf", "forged"), ("cms", &cms)]);
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(forged.get("/console").status, 303);

    // The operator gets in: an HttpOnly, Secure, SameSite=Strict session cookie.
    let mut op = Client::new(&r);
    let a = op.login(&operator);
    assert_eq!((a.status, a.location()), (303, Some("/console")), "{}", a.body);
    let cookie = a.head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: nca_console=")).unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let queue = op.get("/console");
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert!(queue.body.contains("Очередь заявлений"));

    // Logging out ends the session (the form's token is required for that too).
    let no_token = op.request("POST", "/console/logout", &[]);
    assert_eq!(no_token.status, 403);
    assert_eq!(op.get("/console").status, 200, "still logged in");
    let csrf = op.get("/console").csrf();
    let out = op.request("POST", "/console/logout", &[("csrf", &csrf)]);
    assert_eq!((out.status, out.location()), (303, Some("/console/login")));
    assert_eq!(op.get("/console").status, 303);

    let journal = |action: &str| {
        let mut n = 0;
        ca_core::store::Store::audit_entries(&r.ca.store, &Default::default(), &mut |e| {
            n += usize::from(e.event.action == action);
            Ok(())
        })
        .unwrap();
        n
    };
    assert_eq!((journal("console.login"), journal("console.login-refused")), (1, 1));
}

#[test]
fn a_console_action_needs_session_token_and_signature_and_the_queue_puts_the_overdue_first() {
    let r = with_registry();
    let now = SystemClock.now();
    // Registered online two hours ago, never presented: no clock runs (last).
    let waiting = application(&r.ca.store, 21, now - Duration::hours(2), false);
    // Presented an hour ago: the operator's 20 minutes are long over (first).
    let late = application(&r.ca.store, 22, now - Duration::hours(1), true);
    // Presented now: due in 20 minutes (second). The newest, so the store lists it first.
    let fresh = application(&r.ca.store, 23, now, true);
    let operator = holder(&r.ca, ProfileId::IndividualAuth, 31, vec![Role::CaOperator]);
    let operator_sign = holder(&r.ca, ProfileId::IndividualSign, 31, vec![Role::CaOperator]);
    let citizen_sign = holder(&r.ca, ProfileId::IndividualSign, 32, vec![]);

    let mut op = Client::new(&r);
    assert_eq!(op.login(&operator).status, 303);
    let queue = op.get("/console");
    let position =
        |n: &ApplicationNumber| queue.body.find(&format!(">{n}</a>")).unwrap_or_else(|| panic!("{n} listed"));
    assert!(position(&late) < position(&fresh) && position(&fresh) < position(&waiting), "{}", queue.body);
    assert!(queue.body.contains("просрочено: <strong>1</strong>"), "{}", queue.body);
    assert!(queue.body.contains("просрочено на 40 мин"), "20 minutes from an hour ago: {}", queue.body);

    // The application page offers verify with the exact statement to sign.
    let page = op.get(&format!("/console/applications/{late}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"id="action-verify""#), "{}", page.body);
    let csrf = page.csrf();
    let verify =
        serde_json::to_vec(&serde_json::json!({ "action": "operator-verify", "application": late.as_str() })).unwrap();
    let path = format!("/console/applications/{late}/verify");

    // Each of these changes nothing.
    let operators_signature = signed(&r, &operator_sign, &verify);
    let no_token = op.request("POST", &path, &[("cms", &operators_signature)]);
    assert_eq!(no_token.status, 403, "no CSRF token");
    let wrong_token = op.request("POST", &path, &[("csrf", "x"), ("cms", &operators_signature)]);
    assert_eq!(wrong_token.status, 403, "a wrong CSRF token");
    // Someone else's token is not this browser's.
    let mut stranger = Client::new(&r);
    let other_token = stranger.request("POST", &path, &[("csrf", &csrf), ("cms", &operators_signature)]);
    assert_eq!(other_token.status, 403, "another browser's token");
    // A browser with a valid form token of its own but no session is sent to log in.
    let own_token = stranger.get("/console/login").csrf();
    let no_session = stranger.request("POST", &path, &[("csrf", &own_token), ("cms", &operators_signature)]);
    assert_eq!((no_session.status, no_session.location()), (303, Some("/console/login")), "no session");
    assert_eq!(state(&r.ca.store, &late), ApplicationState::AwaitingOperator);
    for (cms, expect) in [
        (String::new(), "подпись не получена"),
        (b64(b"garbage"), "not a CMS signature"),
        (signed(&r, &citizen_sign, &verify), "is not a ca-operator"),
        (signed(&r, &operator_sign, b"{\"action\":\"operator-verify\",\"application\":\"A-2026-000001\"}"), "is not"),
    ] {
        let a = op.request("POST", &path, &[("csrf", &csrf), ("cms", &cms)]);
        assert_eq!(a.status, 303, "{}", a.body);
        let shown = op.get(&format!("/console/applications/{late}"));
        assert!(shown.body.contains("Не выполнено") && shown.body.contains(expect), "{expect}: {}", shown.body);
        assert_eq!(state(&r.ca.store, &late), ApplicationState::AwaitingOperator, "{expect}");
    }

    // Session, token and the operator's signature: done, once.
    let a = op.request("POST", &path, &[("csrf", &csrf), ("cms", &operators_signature)]);
    assert_eq!(a.status, 303);
    assert_eq!(state(&r.ca.store, &late), ApplicationState::Verified);
    let shown = op.get(&format!("/console/applications/{late}"));
    assert!(shown.body.contains("проверка личности отмечена"), "{}", shown.body);
    assert!(shown.body.contains(r#"id="action-confirm""#) && !shown.body.contains(r#"id="action-verify""#));
    let replay = op.request("POST", &path, &[("csrf", &csrf), ("cms", &operators_signature)]);
    assert_eq!(replay.status, 303);
    assert!(op.get(&format!("/console/applications/{late}")).body.contains("already used"), "replayed");
    assert!(ca_core::store::Store::verify_audit(&r.ca.store).unwrap().is_intact());
}

#[test]
fn the_audit_and_health_pages_show_the_journal_verified_and_the_last_crl() {
    let r = with_registry();
    let operator = holder(&r.ca, ProfileId::IndividualAuth, 31, vec![Role::CaOperator]);
    let mut op = Client::new(&r);
    assert_eq!(op.login(&operator).status, 303);

    let health = op.get("/console/health");
    assert!(health.body.contains("CRL ещё не публиковались"), "{}", health.body);
    crl_published_two_hours_ago(&r.ca.store);
    let health = op.get("/console/health");
    assert!(health.body.contains("<td>7</td>") && health.body.contains("2 ч 00 мин"), "{}", health.body);
    assert!(health.body.contains("действует"), "{}", health.body);

    let audit = op.get("/console/audit");
    assert!(audit.body.contains("Журнал цел"), "{}", audit.body);
    assert!(audit.body.contains("console.login"), "{}", audit.body);
}

// ---------------------------------------------------------------------------------------------
// In headless Chromium, signing in the page through ca-signer (non-interactive, PKCS#12).

/// The operator's (or anyone's) AUTH and SIGN keys as PKCS#12 files loaded into a
/// non-interactive ca-signer that serves pages of `origin`; its port is bound before the
/// console starts (the console's pages and CSP name it).
struct SigningClient {
    port: u16,
    listener: Option<tokio::net::TcpListener>,
    runtime: tokio::runtime::Runtime,
}

impl SigningClient {
    fn bind() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        Self { port: listener.local_addr().unwrap().port(), listener: Some(listener), runtime }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn serve(&mut self, ca: &TestCa, holders: &[&Holder], origin: String) {
        let password = zeroize::Zeroizing::new("Qwerty12".to_owned());
        let chain = std::slice::from_ref(&ca.issuing.certificate_der);
        let keys = holders
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let p12 = hsm::build_pkcs12(&h.key, &h.cert.der, chain, &password, &format!("key{i}")).unwrap();
                let path = ca.dir.path().join(format!("console-key-{}-{i}.p12", self.port));
                std::fs::write(&path, p12).unwrap();
                ca_signer::keys::from_pkcs12(&path, &password).unwrap()
            })
            .collect();
        let service = std::sync::Arc::new(ca_signer::Service::new(
            keys,
            std::sync::Arc::new(ca_signer::Policy::Accept),
            std::sync::Arc::new(SystemClock),
        ));
        let router = ca_signer::server::router(service, vec![origin]);
        self.runtime.spawn(ca_signer::server::serve(self.listener.take().unwrap(), router));
    }
}

/// The console over a test CA whose pages talk to `signer`.
fn console_with(signer: &SigningClient) -> Running {
    let url = signer.url();
    let r = start_with(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None, |s| s.console.signer_url = url);
    let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
    r.ca.store.import_registry(&import, "test").unwrap();
    r
}

/// TEST ONLY: the worker's new key pairs, "delivered" nowhere (delivery is `ca worker`'s test).
struct GeneratedKeys;

struct Nowhere;

impl ca_core::ra::KeyStoreDelivery for Nowhere {
    fn deliver(&self, _: &[ca_core::issuer::IssuedCertificate]) -> Result<(), String> {
        Ok(())
    }
    fn delivered(&self, _: &ca_core::issuer::IssuedCertificate) -> Result<bool, String> {
        Ok(true)
    }
    fn withdraw(&self, _: &ca_core::issuer::IssuedCertificate) -> Result<(), String> {
        Ok(())
    }
    fn location(&self) -> String {
        "test".into()
    }
}

impl ca_core::ra::worker::RepeatKeys for GeneratedKeys {
    fn keys_for(&self, _: &ca_core::ra::Application) -> Result<ca_core::ra::worker::NewKeys<'_>, String> {
        let public =
            || SoftwareKey::generate(KeyAlgorithm::P256).map(|k| k.public_key().clone()).map_err(|e| e.to_string());
        Ok(ca_core::ra::worker::NewKeys { auth: public()?, sign: public()?, delivery: Box::new(Nowhere) })
    }
    fn recovery(&self) -> Box<dyn ca_core::ra::KeyStoreDelivery + '_> {
        Box::new(ca_core::ra::NothingDelivered)
    }
}

/// One round of the RA's worker on the console's store, as `ca worker --once` runs it.
fn worker_round(r: &Running) -> ca_core::ra::worker::Round {
    let clock = SystemClock;
    let registry = StoreRegistry(&r.ca.store);
    let issuer = r.ca.issuer(&clock);
    let metrics = ca_core::ra::worker::WorkerMetrics::default();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let worker = ca_core::ra::worker::Worker {
        ra: ra(&r.ca.store, &registry, &clock),
        issuer: &issuer,
        keys: &GeneratedKeys,
        crls: None,
        transport: None,
        settings: Default::default(),
        actor: "worker:test",
        metrics: &metrics,
        stop: &stop,
    };
    worker.round().unwrap()
}

#[test]
fn an_operator_works_the_queue_in_the_browser_signing_in_the_page() {
    let mut signer = SigningClient::bind();
    let r = console_with(&signer);
    let base = format!("http://127.0.0.1:{}", r.port);
    let operator_auth = holder(&r.ca, ProfileId::IndividualAuth, 31, vec![Role::CaOperator]);
    let operator_sign = holder(&r.ca, ProfileId::IndividualSign, 31, vec![Role::CaOperator]);
    signer.serve(&r.ca, &[&operator_auth, &operator_sign], base.clone());
    let now = SystemClock.now();
    let fresh = application(&r.ca.store, 23, now - Duration::minutes(1), true);
    let late = application_with_csrs(&r.ca.store, r.ca.dir.path(), 22, now - Duration::hours(1));
    let target = holder(&r.ca, ProfileId::IndividualSign, 24, vec![]);
    crl_published_two_hours_ago(&r.ca.store);

    let mut harness = browser_test::Harness::new("console_pages");
    let b = harness.session("operator");
    let check = |name: &str| {
        b.screenshot(name);
        b.axe(name);
    };

    // Logging in: the page signs the challenge with the AUTH key in ca-signer.
    b.goto(&format!("{base}/console"));
    b.wait_path("/console/login");
    check("login");
    b.click("#login-button");
    b.wait_path("/console");
    b.wait_text("#queue-summary", "просрочено: 1");
    check("queue");
    assert_eq!(b.text("#queue tbody tr:first-child th"), late.to_string(), "the overdue application first");
    // Keyboard: the first Tab reaches the skip link, and the focus is visible.
    b.keys("\u{E004}");
    assert_eq!(b.execute("return document.activeElement.className", vec![]), serde_json::json!("skip-link"));
    let outline = b.execute("return getComputedStyle(document.activeElement).outlineStyle", vec![]);
    assert_eq!(outline, serde_json::json!("solid"));

    // The overdue application: verified, then confirmed, each signed with the SIGN key.
    b.click(&format!("a[href='/console/applications/{late}']"));
    b.wait("#action-verify");
    check("application");
    // Signed from the keyboard: Enter on the focused button.
    b.execute("document.getElementById('action-verify').focus()", vec![]);
    b.keys("\u{E007}");
    b.wait_text("#flash", "проверка личности отмечена");
    assert_eq!(state(&r.ca.store, &late), ApplicationState::Verified);
    b.click("#action-confirm");
    b.wait_text("#flash", "заявление подтверждено");
    assert_eq!(state(&r.ca.store, &late), ApplicationState::Confirmed);
    check("application-confirmed");

    // The application came with the applicant's own keys (his CSRs): the worker issues it for
    // them, and the page shows it issued.
    let round = worker_round(&r);
    assert_eq!(round.issued, vec![late.to_string()], "{round:?}");
    b.goto(&format!("{base}/console/applications/{late}"));
    b.wait_text("#application-state", "issued");
    assert_eq!(r.ca.store.application(&late).unwrap().unwrap().serials.len(), 2);
    assert!(b.exists("#application-serials"));
    check("application-issued");

    // A counter revocation application confirmed in the console is carried out by the worker.
    let revoked = holder(&r.ca, ProfileId::IndividualSign, 25, vec![]);
    let counter = counter_revocation(&r.ca.store, 25, &revoked);
    b.goto(&format!("{base}/console/applications/{counter}"));
    b.click("#action-confirm");
    b.wait_text("#flash", "заявление подтверждено");
    let round = worker_round(&r);
    assert_eq!(round.revoked, vec![counter.to_string()], "{round:?}");
    b.goto(&format!("{base}/console/applications/{counter}"));
    b.wait_text("#application-state", "revoked");
    check("application-revoked-by-the-worker");

    // A refusal needs its reason next to the field, then is signed.
    b.goto(&format!("{base}/console/applications/{fresh}"));
    b.click("#action-refuse");
    b.wait_text("#error-refuse", "Укажите причину отказа");
    assert_eq!(state(&r.ca.store, &fresh), ApplicationState::AwaitingOperator, "nothing sent");
    b.fill("#refuse-reason", "Документ, удостоверяющий личность, недействителен");
    b.click("#action-refuse");
    b.wait_text("#flash", "в заявлении отказано");
    assert_eq!(state(&r.ca.store, &fresh), ApplicationState::Refused);

    // Counter revocation: a bad serial is refused next to the field, a good one is revoked.
    b.goto(&format!("{base}/console/revocations"));
    b.fill("#serial", "not hex");
    b.click("#revoke-button");
    b.wait_text("#serial-error", "шестнадцатеричных");
    check("revocation");
    b.fill("#serial", &target.cert.serial.to_hex());
    b.click("#revoke-button");
    b.wait_text("#flash", "отозвано");
    let record = ca_core::store::Store::certificate(&r.ca.store, &target.cert.serial).unwrap().unwrap();
    assert_eq!(record.status, ca_core::store::CertificateStatus::Revoked);

    // The read-only pages.
    b.goto(&format!("{base}/console/cards"));
    b.wait("#cards");
    check("cards");
    b.goto(&format!("{base}/console/audit"));
    b.wait_text("#audit-verdict", "Журнал цел");
    let journal = b.text("#audit");
    assert!(journal.contains("console.login") && journal.contains("operator "), "{journal}");
    check("audit");
    b.goto(&format!("{base}/console/health"));
    let crls = b.wait_text("#crls", "2 ч 00 мин");
    assert!(crls.contains('7'), "{crls}");
    check("health");

    // Logging out ends the session.
    b.click(".logout button");
    b.wait_path("/console/login");
    b.goto(&format!("{base}/console"));
    b.wait_path("/console/login");
}

#[test]
fn a_citizen_cannot_log_in_to_the_console_in_the_browser() {
    let mut signer = SigningClient::bind();
    let r = console_with(&signer);
    let base = format!("http://127.0.0.1:{}", r.port);
    let citizen = holder(&r.ca, ProfileId::IndividualAuth, 32, vec![]);
    signer.serve(&r.ca, &[&citizen], base.clone());
    let mut harness = browser_test::Harness::new("console_pages_refused");
    let b = harness.session("citizen");
    b.goto(&format!("{base}/console/login"));
    b.click("#login-button");
    b.wait_text("#message", "нет роли оператора УЦ");
    b.screenshot("not-an-operator");
    b.axe("not-an-operator");
    b.goto(&format!("{base}/console"));
    b.wait_path("/console/login");
}
