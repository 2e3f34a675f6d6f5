#![allow(dead_code)]

//! Digital documents in the HTTP tests: a loopback time-stamping authority (`openssl ts -reply`
//! with a TSA certificate our test CA issued, behind a tiny axum handler), an authority and an
//! integrated system with SIGN certificates of our CA, and their signed requests made with
//! `openssl cms -sign`.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use ca_core::identity::{Iin, Subject};
use ca_core::profile::{ProfileId, Role};
use portal::config::PortalConfig;
use portal::documents::config::{AuthorityRule, SystemRule, TsaConfig};
use portal::documents::signed_request::canonical;
use portal::documents::submission::DocumentSubmission;
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};

use crate::common::{Holder, TestPortal};

pub const AUTHORITY_ORG: u32 = 3;
pub const SYSTEM_ORG: u32 = 4;
pub const PASSWORD: &str = "Docs-Pass-2026!";

/// Where the loopback TSA finds its files once the test CA exists.
#[derive(Default)]
pub struct TsaSlot {
    pub dir: Mutex<Option<PathBuf>>,
    pub served: std::sync::atomic::AtomicU32,
    /// Answer with the previous reply instead (a replayed or misrouted answer).
    pub replay_previous: std::sync::atomic::AtomicBool,
    /// Answer with the product's own TSA (`ca_core::tsa`, what ca-server serves at `/tsa`)
    /// instead of `openssl ts -reply`.
    pub ours: Mutex<Option<Arc<ca_core::tsa::TimeStampAuthority>>>,
}

/// A portal with documents configured: one authority (identity cards, birth certificates), one
/// integrated system (identity cards), the loopback TSA; `tweak` changes the access policy etc.
pub struct DocsPortal {
    pub t: TestPortal,
    pub authority: Holder,
    pub system: Holder,
    /// The TSA's certificate (for pinning).
    pub tsa: Holder,
    /// How many time stamps the loopback TSA answered.
    pub slot: Arc<TsaSlot>,
}

pub fn authority_bin() -> String {
    fixtures::organisation(AUTHORITY_ORG).bin.to_string()
}

pub fn system_bin() -> String {
    fixtures::organisation(SYSTEM_ORG).bin.to_string()
}

impl DocsPortal {
    pub fn start(tweak: impl FnOnce(&mut PortalConfig)) -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let tsa_port = std_listener.local_addr().unwrap().port();
        let t = TestPortal::start_with(|config| {
            config.documents.tsa = Some(TsaConfig {
                url: format!("http://127.0.0.1:{tsa_port}/tsa"),
                certificate_sha256: Vec::new(),
                timeout_seconds: 10,
            });
            config.documents.authorities = vec![AuthorityRule {
                bin: authority_bin(),
                name: "Министерство внутренних дел".into(),
                types: vec!["identity-card".into(), "birth-certificate".into()],
                role: Some("signing-right".into()),
                certificate_sha256: None,
            }];
            config.documents.systems = vec![SystemRule {
                id: "bank-7".into(),
                name: "АО Банк".into(),
                bin: system_bin(),
                types: vec!["identity-card".into()],
                role: None,
                certificate_sha256: None,
            }];
            tweak(config);
        });
        let authority = t.holder(
            "authority",
            ProfileId::LegalSign,
            fixtures::employee(250, AUTHORITY_ORG),
            vec![Role::SigningRight],
        );
        let system =
            t.holder("system", ProfileId::LegalSign, fixtures::employee(251, SYSTEM_ORG), vec![Role::SigningRight]);
        let tsa = t.holder(
            "tsa",
            ProfileId::TimeStamping,
            Subject::Service { common_name: "TEST TSA".into(), organisation: None },
            vec![],
        );
        let dir = t.dir.path().join("tsa");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("serial"), "01\n").unwrap();
        let config = format!(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {dir}\nserial = $dir/serial\nsigner_cert = {cert}\n\
             certs = {chain}\nsigner_key = {key}\nsigner_digest = sha256\n\
             default_policy = 1.2.398.3.3.2.1\ndigests = sha256, sha384, sha512\naccuracy = secs:1\n\
             ordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            dir = dir.display(),
            cert = tsa.cert_pem.display(),
            chain = t.issuing_pem.display(),
            key = tsa.key_pem.display(),
        );
        std::fs::write(dir.join("tsa.cnf"), config).unwrap();
        let slot = Arc::new(TsaSlot::default());
        *slot.dir.lock().unwrap() = Some(dir);
        let served = slot.clone();
        let app = axum::Router::new().route(
            "/tsa",
            axum::routing::post(move |body: Bytes| {
                let slot = served.clone();
                async move { tokio::task::spawn_blocking(move || reply(&slot, &body)).await.unwrap() }
            }),
        );
        t.runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Self { t, authority, system, tsa, slot }
    }

    /// A document for `subject_iin`, signed by `by` (attached, `openssl cms -sign`), base64.
    pub fn signed_document(&self, by: &Holder, subject_iin: &str, doc_type: &str, number: &str) -> String {
        let doc = self.document(subject_iin, doc_type, number);
        self.t.sign(by, &canonical(&doc))
    }

    pub fn document(&self, subject_iin: &str, doc_type: &str, number: &str) -> DocumentSubmission {
        let now = ca_core::clock::Clock::now(self.t.clock.as_ref());
        DocumentSubmission {
            authority_bin: authority_bin(),
            created_at: now,
            data: json!({ "number": number, "surname": "ТЕСТОВ", "valid_until": "2036-01-01", "given_name": "ТЕСТ" }),
            doc_type: doc_type.into(),
            issued_at: now - time::Duration::days(1),
            number: number.into(),
            rendering: format!("Удостоверение личности № {number}"),
            request_id: request_id(),
            subject_iin: subject_iin.into(),
            title: "Удостоверение личности".into(),
        }
    }

    /// Submit; the status and answer.
    pub fn submit(&self, cms: &str) -> (u16, Value) {
        self.t.post("/api/v1/documents/submissions", json!({ "cms": cms }))
    }

    /// Submit a document that must be accepted; its id.
    pub fn submit_ok(&self, subject_iin: &str, doc_type: &str, number: &str) -> i64 {
        let (status, body) = self.submit(&self.signed_document(&self.authority, subject_iin, doc_type, number));
        assert_eq!(status, 201, "{body}");
        body["document_id"].as_i64().unwrap()
    }

    /// Register person `n` and log in by password; the session token.
    pub fn person_session(&self, n: u32) -> String {
        self.t.register_person(n, PASSWORD);
        self.login(n)
    }

    pub fn login(&self, n: u32) -> String {
        let (status, body) = self.t.login_password(&fixtures::person(n).iin.to_string(), PASSWORD);
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.t.call("GET", path, Some(token), &Value::Null)
    }

    pub fn post_as(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.t.call("POST", path, Some(token), &body)
    }
}

/// An IIN of a boy born on `born` (the registry's format: YYMMDD, century digit 5, check digit).
fn child_iin(born: time::Date) -> String {
    let head = format!("{:02}{:02}{:02}5", born.year() % 100, u8::from(born.month()), born.day());
    (1..999)
        .flat_map(|serial| {
            let head = head.clone();
            (0..10).map(move |last| format!("{head}{serial:04}{last}"))
        })
        .find(|candidate| Iin::from_str(candidate).is_ok())
        .unwrap()
}

/// A registry export in which person `parent` is the parent of a boy born on `born`: the file
/// (kept while it lives) and the child's IIN.
pub fn registry_with_child(parent: u32, born: time::Date) -> (tempfile::NamedTempFile, String) {
    let child = child_iin(born);
    let registry = tempfile::NamedTempFile::new().unwrap();
    let parent = fixtures::person(parent).iin;
    let line = format!("representative,{parent},{child},parent,{born}\n");
    std::fs::write(registry.path(), format!("{}{line}", fixtures::registry::registry_csv())).unwrap();
    (registry, child)
}

pub fn request_id() -> String {
    let mut id = [0u8; 32];
    OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

/// `openssl ts -reply` to a query; the reply (DER) as application/timestamp-reply.
fn reply(slot: &TsaSlot, query: &[u8]) -> axum::response::Response {
    if let Some(ours) = slot.ours.lock().unwrap().clone() {
        let (reply, _) = ours.respond(query);
        return ([(header::CONTENT_TYPE, "application/timestamp-reply")], reply).into_response();
    }
    let Some(dir) = slot.dir.lock().unwrap().clone() else {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let n = slot.served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if n > 0 && slot.replay_previous.load(std::sync::atomic::Ordering::SeqCst) {
        let previous = std::fs::read(dir.join(format!("r{}.tsr", n - 1))).unwrap();
        return ([(header::CONTENT_TYPE, "application/timestamp-reply")], previous).into_response();
    }
    let (q, r) = (dir.join(format!("q{n}.tsq")), dir.join(format!("r{n}.tsr")));
    std::fs::write(&q, query).unwrap();
    let out = ca_tests::openssl(&[
        "ts",
        "-reply",
        "-config",
        dir.join("tsa.cnf").to_str().unwrap(),
        "-queryfile",
        q.to_str().unwrap(),
        "-out",
        r.to_str().unwrap(),
    ]);
    if !out.status.success() {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::from_utf8_lossy(&out.stderr).into_owned())
            .into_response();
    }
    ([(header::CONTENT_TYPE, "application/timestamp-reply")], std::fs::read(r).unwrap()).into_response()
}
