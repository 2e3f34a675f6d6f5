//! Phone-binding rates of portal-server against the CA's verification rate measured in the
//! same run on the same cores (`POST /api/v1/cms/verify` of a signature by a P-256 key):
//! - one-time passwords over HTTP on the durable SQLite store: `POST /api/v1/login/otp/request`
//!   (a code stored as a salted hash) then `POST /api/v1/login/otp` (checked, used up, a session
//!   opened);
//! - the cabinet's binding flow: `POST /api/v1/phone/code` (OTP session, code and SMS in one
//!   transaction), the sender delivering the outbox, the client signing the statement with
//!   the SIGN key, `POST /api/v1/phone/binding` (signature, chain and CRLs, registry, code,
//!   the binding with the change notices to the old number and the email).
//!
//! The send limits are lifted for the run (every iteration asks for a code). Every HTTP
//! request is a new loopback connection. Run: `cargo bench -p portal --bench phone -- [SECONDS]`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use ca_core::clock::SystemClock;
use ca_core::profile::ProfileId;
use ca_core::store::SqliteStore;
use portal::notify::sms::{OutgoingSms, SmsDispatcher, SmsTransport};
use serde_json::json;

const PASSWORD: &str = "Степной7Ветер";

/// The phones' inboxes: the last code sent to each number (notices are not kept).
#[derive(Default)]
struct Inbox(Mutex<HashMap<String, String>>);

impl SmsTransport for Inbox {
    fn send(&self, sms: &OutgoingSms<'_>) -> Result<Option<String>, String> {
        if sms.text.starts_with("Код") {
            self.0.lock().unwrap().insert(sms.to.to_owned(), sms.text.to_owned());
        }
        Ok(None)
    }
}

/// The client of the calling benchmark thread: each thread takes the next one the first time.
fn client_of(next: &AtomicUsize) -> usize {
    thread_local! { static CLIENT: Cell<Option<usize>> = const { Cell::new(None) }; }
    CLIENT.with(|c| {
        *c.get().get_or_insert_with(|| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            c.set(Some(i));
            i
        })
    })
}

fn code_in(text: &str) -> String {
    text.chars().skip_while(|c| !c.is_ascii_digit()).take(6).collect()
}

fn main() {
    let seconds: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5.0);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let t = common::TestPortal::start_with(|c| {
        c.phone.resend_seconds = 0;
        c.phone.codes_per_hour = u32::MAX;
    });

    // The CA's verification API on the same CA, with revocation from its store.
    let store = Arc::new(SqliteStore::open(&t.ca.dir.path().join("ca.db")).unwrap());
    let mut services = ca_server::Services::new(
        None,
        Some(store as Arc<dyn ca_core::store::Store>),
        "nca",
        t.ca.dir.path().join("crl"),
        t.ca.dir.path().join("certs"),
    );
    let (root, issuing) = (t.ca.root.certificate_der.clone(), t.ca.issuing.certificate_der.clone());
    services.verifier = Some(Arc::new(
        ca_server::Verifier::new(
            std::slice::from_ref(&root),
            std::slice::from_ref(&issuing),
            vec![issuing.clone(), root.clone()],
            Arc::new(SystemClock),
        )
        .unwrap(),
    ));
    let (ca_port, _ca_runtime) = ca_tests::serve(Arc::new(services));

    // One account per client thread, logged in, with a SIGN certificate and a bound phone for
    // OTP login.
    struct Client {
        iin: String,
        token: String,
        holder: common::Holder,
        login_phone: String,
        numbers: [String; 2],
    }
    let clients: Vec<Client> = (0..threads as u32)
        .map(|i| {
            let n = 100 + i;
            t.register_person(n, PASSWORD);
            let iin = fixtures::person(n).iin.to_string();
            let (status, grant) = t.login_password(&iin, PASSWORD);
            assert_eq!(status, 200);
            let login_phone = format!("+7701{:03}0000", i);
            t.phones.bound.lock().unwrap().push((iin.clone(), login_phone.clone()));
            Client {
                token: grant["token"].as_str().unwrap().to_owned(),
                holder: t.holder(&format!("sign{n}"), ProfileId::IndividualSign, fixtures::individual(n), vec![]),
                iin,
                login_phone,
                numbers: [format!("+7702{:03}0001", i), format!("+7702{:03}0002", i)],
            }
        })
        .collect();
    let inbox = Arc::new(Inbox::default());
    let sender = SmsDispatcher::new(t.portal.store.clone(), t.clock.clone(), inbox.clone());
    // One sender at a time, as in production: once a run ends, all that was queued before it
    // has reached the inbox.
    let sending = Mutex::new(());

    let signed = {
        let h = &clients[0].holder;
        let now = ca_core::clock::Clock::now(&SystemClock);
        ca_core::cms::sign(&[0x42; 32], false, &h.key, &h.cert.der, std::slice::from_ref(&issuing), now).unwrap()
    };
    let verify_body = json!({ "cms": base64::engine::general_purpose::STANDARD.encode(&signed) }).to_string();
    let json_header = [("Content-Type", "application/json")];
    let cms_verify = || {
        let (status, body) =
            ca_tests::http(ca_port, "POST", "/api/v1/cms/verify?key_usage=SIGN", &json_header, verify_body.as_bytes());
        assert!(
            status == 200 && body.windows(12).any(|w| w == b"\"valid\":true"),
            "{}",
            String::from_utf8_lossy(&body)
        );
    };
    let otp_login = |c: &Client| {
        let body = json!({ "login": c.iin }).to_string();
        let (status, _) = ca_tests::http(t.port, "POST", "/api/v1/login/otp/request", &json_header, body.as_bytes());
        assert_eq!(status, 202);
        let code = {
            let sent = t.phones.sent.lock().unwrap();
            code_in(&sent.iter().rev().find(|(p, _)| *p == c.login_phone).unwrap().1)
        };
        let body = json!({ "login": c.iin, "code": code }).to_string();
        let (status, answer) = ca_tests::http(t.port, "POST", "/api/v1/login/otp", &json_header, body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    };
    let bind = |c: &Client, k: usize| {
        let auth = format!("Bearer {}", c.token);
        let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
        let phone = &c.numbers[k % 2];
        let body = json!({ "phone": phone }).to_string();
        let (status, answer) = ca_tests::http(t.port, "POST", "/api/v1/phone/code", &headers, body.as_bytes());
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
        let sent: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        let code = {
            let _one = sending.lock().unwrap();
            sender.deliver_pending().unwrap();
            code_in(&inbox.0.lock().unwrap()[phone])
        };
        let statement = base64::engine::general_purpose::STANDARD.decode(sent["statement"].as_str().unwrap()).unwrap();
        let now = ca_core::clock::Clock::now(&SystemClock);
        let h = &c.holder;
        let cms =
            ca_core::cms::sign(&statement, false, &h.key, &h.cert.der, std::slice::from_ref(&issuing), now).unwrap();
        let body = json!({ "session_id": sent["session_id"], "code": code, "cms": base64::engine::general_purpose::STANDARD.encode(cms) }).to_string();
        let (status, answer) = ca_tests::http(t.port, "POST", "/api/v1/phone/binding", &headers, body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    };

    // Warm up (path caches, connections, allocator).
    for k in 0..10 {
        cms_verify();
        otp_login(&clients[0]);
        bind(&clients[0], k);
    }
    println!("portal phone benchmark: {threads} client threads, {seconds} s each, P-256 signers, SQLite (WAL, synchronous=FULL)");
    let cms_rate = ca_tests::rate_on_threads(threads, seconds, |_| cms_verify());
    let next = AtomicUsize::new(0);
    let otp_rate = ca_tests::rate_on_threads(threads, seconds, |_| otp_login(&clients[client_of(&next)]));
    let next = AtomicUsize::new(0);
    let bind_rate = ca_tests::rate_on_threads(threads, seconds, |n| bind(&clients[client_of(&next)], n));
    // Where a binding's time goes: one client, the steps timed apart.
    let steps = {
        let c = &clients[0];
        let auth = format!("Bearer {}", c.token);
        let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
        let mut took = [std::time::Duration::ZERO; 4];
        let rounds = 40;
        for k in 0..rounds {
            let phone = &c.numbers[k % 2];
            let body = json!({ "phone": phone }).to_string();
            let start = std::time::Instant::now();
            let (status, answer) = ca_tests::http(t.port, "POST", "/api/v1/phone/code", &headers, body.as_bytes());
            assert_eq!(status, 202);
            took[0] += start.elapsed();
            let start = std::time::Instant::now();
            sender.deliver_pending().unwrap();
            let code = code_in(&inbox.0.lock().unwrap()[phone]);
            took[1] += start.elapsed();
            let sent: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            let statement =
                base64::engine::general_purpose::STANDARD.decode(sent["statement"].as_str().unwrap()).unwrap();
            let start = std::time::Instant::now();
            let now = ca_core::clock::Clock::now(&SystemClock);
            let h = &c.holder;
            let cms = ca_core::cms::sign(&statement, false, &h.key, &h.cert.der, std::slice::from_ref(&issuing), now)
                .unwrap();
            took[2] += start.elapsed();
            let body = json!({ "session_id": sent["session_id"], "code": code, "cms": base64::engine::general_purpose::STANDARD.encode(cms) }).to_string();
            let start = std::time::Instant::now();
            let (status, _) = ca_tests::http(t.port, "POST", "/api/v1/phone/binding", &headers, body.as_bytes());
            assert_eq!(status, 200);
            took[3] += start.elapsed();
        }
        took.map(|d| d.as_secs_f64() * 1000.0 / rounds as f64)
    };
    println!(
        "one client, ms per step: code request {:.2}, SMS sender run {:.2}, client signature {:.2}, binding {:.2}",
        steps[0], steps[1], steps[2], steps[3]
    );
    println!("| measurement | per second | ratio to CA verify |");
    println!("|---|---:|---:|");
    println!("| ca-server `POST /api/v1/cms/verify` (baseline) | {cms_rate:.0} | 1.00 |");
    println!(
        "| OTP request + verification (login by OTP, session opened) | {otp_rate:.0} | {:.2} |",
        otp_rate / cms_rate
    );
    println!(
        "| phone binding: code + SMS sent + sign + bind (change) | {bind_rate:.0} | {:.2} |",
        bind_rate / cms_rate
    );
}
