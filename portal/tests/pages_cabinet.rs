//! The cabinet's pages in headless Chromium: the profile; binding a phone through the pages
//! («Получить проверочный код», the code from the SMS spool, the statement signed with the
//! person's SIGN key by `ca-signer` running in-process non-interactively with a PKCS#12 key
//! store), a mistyped code refused next to the field and the same signature reused for the
//! right one; the sessions page listing this session and ending another; the journal showing
//! a failed attempt made before. Every page is photographed and checked by axe-core. The person
//! logs in through the login page (password tab).

mod common;
#[path = "support/pages.rs"]
mod pages;

use std::sync::Arc;

use browser_test::{Browser, Harness};
use ca_core::profile::ProfileId;
use ca_signer::{keys, Policy, Service};
use common::TestPortal;
use pages::page;
use portal::notify::sms::spool::Spool;
use portal::phone::config::SmsConfig;
use portal::phone::messages;
use zeroize::Zeroizing;

const PASSWORD: &str = "Cabinet-Pages-2026!";

fn iin(n: u32) -> String {
    fixtures::person(n).iin.to_string()
}

fn sign_in(b: &Browser, base: &str, n: u32) {
    pages::sign_in(b, base, &iin(n), PASSWORD);
}

/// A portal with the SMS spool (sent by the test, not in the background) and, on a port bound
/// first, `ca-signer` holding person `n`'s SIGN key in a PKCS#12 file, accepting every request
/// from the portal's origin (its non-interactive policy).
fn start(n: u32) -> (TestPortal, tokio::runtime::Runtime) {
    let signer_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    signer_listener.set_nonblocking(true).unwrap();
    let signer_port = signer_listener.local_addr().unwrap().port();
    let t = TestPortal::start_with(|c| {
        c.phone.sms = Some(SmsConfig {
            spool: Some(c.store.sqlite_file().unwrap().parent().unwrap().join("sms")),
            ..SmsConfig::default()
        });
        c.phone.send_from_serve = false;
        c.pages.signer_url = format!("ws://127.0.0.1:{signer_port}");
    });
    let holder = t.holder(&format!("sign{n}"), ProfileId::IndividualSign, fixtures::individual(n), vec![]);
    let p12 = t.dir.path().join("RSA256_person.p12");
    let chain = [t.ca.issuing.certificate_der.clone()];
    let der = hsm::build_pkcs12(&holder.key, &holder.cert.der, &chain, "Qwerty12", "sign").unwrap();
    std::fs::write(&p12, der).unwrap();
    let key = keys::from_pkcs12(&p12, &Zeroizing::new("Qwerty12".to_owned())).unwrap();
    let service = Arc::new(Service::new(vec![key], Arc::new(Policy::Accept), t.clock.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let origin = format!("http://127.0.0.1:{}", t.port);
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(signer_listener).unwrap();
        ca_signer::server::serve(listener, ca_signer::server::router(service, vec![origin])).await
    });
    (t, runtime)
}

/// The code in the newest SMS to `phone`.
fn code_sent_to(t: &TestPortal, phone: &str) -> String {
    t.portal.phone.dispatcher.as_ref().unwrap().deliver_pending().unwrap();
    let outbox = t.portal.store.sms_outbox(1000).unwrap();
    let newest = outbox.iter().rev().find(|m| m.to == phone && m.purpose == "phone-code").expect("a code was queued");
    let spool = t.dir.path().join("sms");
    let sms = Spool::read(&spool).unwrap().into_iter().find(|s| s.id == newest.message_id).unwrap();
    let digits: String = sms.text.chars().skip_while(|c| !c.is_ascii_digit()).take(6).collect();
    assert_eq!(digits.len(), 6, "{}", sms.text);
    digits
}

#[test]
fn bind_a_phone_see_the_sessions_and_the_journal_of_a_failed_attempt() {
    let n = 90;
    let (t, _signer) = start(n);
    t.register_person(n, PASSWORD);
    // A failed attempt before: the journal page must show it.
    let (status, _) = t.login_password(&iin(n), "not the password");
    assert_eq!(status, 401);
    let base = format!("http://127.0.0.1:{}", t.port);
    let mut harness = Harness::new("pages_cabinet");
    let b = harness.session("person");
    sign_in(&b, &base, n);

    b.goto(&format!("{base}/cabinet"));
    b.wait_text("main", &iin(n));
    page(&b, "cabinet-profile");

    b.goto(&format!("{base}/cabinet/journal"));
    let failures = b.wait_text("#failures", "Неверный пароль");
    assert!(failures.contains("Логин и пароль"), "{failures}");
    assert!(b.text("#logins").contains("Открыт"));
    page(&b, "cabinet-journal");

    // Sessions: this one, and another opened through the API, which is ended from the page.
    let (status, other) = t.login_password(&iin(n), PASSWORD);
    assert_eq!(status, 200, "{other}");
    let other_id = other["session_id"].as_i64().unwrap();
    b.goto(&format!("{base}/cabinet/sessions"));
    b.wait_text("#sessions", "Текущий сеанс");
    assert!(b.exists(&format!("#session-{other_id}")));
    page(&b, "cabinet-sessions");
    b.click(&format!("#session-{other_id} button"));
    b.wait_text("main", "Сеанс завершен");
    assert!(!b.exists(&format!("#session-{other_id}")), "the ended session is no longer listed");
    let (status, _) = t.call("GET", "/api/v1/sessions", other["token"].as_str(), &serde_json::Value::Null);
    assert_eq!(status, 401, "the ended session's token no longer works");

    // The phone: «Получить проверочный код», a wrong code, then the right one.
    b.goto(&format!("{base}/cabinet/phone"));
    b.wait_text("#bound-phone", "Номер телефона не привязан");
    page(&b, "cabinet-phone");
    b.fill_label("Номер мобильного телефона", "8 (701) 000-90-01");
    b.click_text("Получить проверочный код");
    b.wait_text("#phone-notice", messages::CODE_SENT);
    page(&b, "cabinet-phone-code");
    let code = code_sent_to(&t, "+77010009001");
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    b.fill_label("Проверочный код из SMS", &wrong);
    b.click("#bind");
    b.wait_text("#code-error", messages::WRONG_CODE);
    assert_eq!(b.attr("#code", "aria-invalid").as_deref(), Some("true"));
    let kept = b.attr("#cms", "value").unwrap_or_default();
    assert!(!kept.is_empty(), "the signature is kept for the retry");
    page(&b, "cabinet-phone-wrong-code");
    b.fill_label("Проверочный код из SMS", &code);
    b.click("#bind");
    b.wait_text("#phone-notice", messages::BOUND);
    b.wait_text("#bound-phone", "+77010009001");
    page(&b, "cabinet-phone-bound");
    let binding = t.portal.store.current_binding(t.portal.store.account_by_login(&iin(n)).unwrap().unwrap().id);
    assert_eq!(binding.unwrap().unwrap().phone, "+77010009001");

    // A change of number whose code is mistyped until the session is spent: back to the number,
    // with the document's message next to it.
    t.clock.advance(time::Duration::minutes(2));
    b.fill_label("Номер мобильного телефона", "+7 701 000 90 02");
    b.click_text("Получить проверочный код");
    b.wait_text("#phone-notice", messages::CODE_SENT);
    let code = code_sent_to(&t, "+77010009002");
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..4 {
        b.fill_label("Проверочный код из SMS", &wrong);
        b.click("#bind");
        b.wait_text("#code-error", messages::WRONG_CODE);
    }
    b.fill_label("Проверочный код из SMS", &wrong);
    b.click("#bind");
    b.wait_text("#phone-error", messages::SESSION_SPENT);
    assert_eq!(b.attr("#phone", "value").as_deref(), Some("+77010009002"));
    b.wait_text("#bound-phone", "+77010009001");

    // Kazakh.
    b.goto(&format!("{base}/cabinet/phone?lang=kk"));
    b.wait_text("h1", "Телефон нөмірі");
    page(&b, "cabinet-phone-kk");
}
