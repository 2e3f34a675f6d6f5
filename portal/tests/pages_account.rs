//! The account pages in headless Chromium, signing through `ca-signer` running in-process
//! non-interactively (PKCS#12 key stores; a SoftHSM token in its own test): registration, login
//! by password, EDS and one-time password, the lockout after ten wrong passwords with the
//! document's message while EDS login still works, recovery by email with the forced change,
//! recovery by EDS, the signing client's refusals in words. Every page is screenshotted
//! (`target/browser-artifacts/<test>/`) and checked by axe-core (no serious or critical
//! violation).

mod common;

use std::path::Path;
use std::sync::Arc;

use browser_test::{Browser, Harness};
use ca_signer::keys::{self, KeyEntry};
use ca_signer::{Policy, Service};
use common::{Holder, TestPortal};
use portal::messages;
use serde_json::json;
use zeroize::Zeroizing;

const PASSWORD: &str = "Степной7Ветер";
const PHONE: &str = "+77017654321";

/// A portal whose pages point at a signing client on `signer`'s port.
fn portal_with_signer(signer: &std::net::TcpListener) -> TestPortal {
    let url = format!("ws://127.0.0.1:{}", signer.local_addr().unwrap().port());
    TestPortal::start_with(move |c| c.pages.signer_url = url)
}

/// ca-signer on `listener` with `keys`, confirming by `policy`, for the portal's pages only.
fn start_signer(
    t: &TestPortal,
    listener: std::net::TcpListener,
    keys: Vec<KeyEntry>,
    policy: Policy,
) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener).unwrap()
    };
    let service = Arc::new(Service::new(keys, Arc::new(policy), t.clock.clone()));
    let origin = format!("http://127.0.0.1:{}", t.port);
    runtime.spawn(ca_signer::server::serve(listener, ca_signer::server::router(service, vec![origin])));
    runtime
}

/// The PKCS#12 key store a holder's certificate was delivered in, as ca-signer loads it.
fn pkcs12_key(holder: &Holder) -> KeyEntry {
    keys::from_pkcs12(&holder.p12, &Zeroizing::new("pw".to_string())).unwrap()
}

fn free_listener() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Screenshot and accessibility check of the page shown.
fn look(b: &Browser, name: &str) {
    b.screenshot(name);
    b.axe(name);
}

fn sign_out(b: &Browser) {
    b.click("form[action='/logout'] button");
    b.wait("a[href='/login']");
}

fn login_by_password(t: &TestPortal, b: &Browser, login: &str, password: &str) {
    b.goto(&format!("http://127.0.0.1:{}/login", t.port));
    b.fill_label("ИИН/БИН", login);
    b.fill_label("Пароль", password);
    b.click_text("Войти");
}

fn register_through_the_pages(t: &TestPortal, b: &Browser, n: u32, shots: bool) {
    let iin = fixtures::person(n).iin.to_string();
    b.goto(&format!("http://127.0.0.1:{}/register", t.port));
    if shots {
        look(b, "register");
    }
    b.click("#agreement");
    b.click_text("Выбрать сертификат");
    // What the certificate says, shown before anything is signed.
    b.wait_text("#cert-iin", &iin);
    let person = fixtures::person(n);
    let name = b.text("#cert-name").to_lowercase();
    assert!(
        name.contains(&person.surname.to_lowercase()) && name.contains(&person.given_name.to_lowercase()),
        "{name}"
    );
    assert!(b.text("#cert-validity").contains(" — "));
    b.fill_label("Адрес электронной почты", &format!("person{n}@example.kz"));
    b.fill_label("Пароль", PASSWORD);
    b.fill_label("Повторите пароль", PASSWORD);
    if shots {
        look(b, "register-certificate-chosen");
    }
    b.click_text("Подписать и зарегистрироваться");
    assert_eq!(b.wait_text("#outcome", messages::REGISTERED), messages::REGISTERED);
    if shots {
        look(b, "registered");
    }
    assert!(t.portal.store.account_by_login(&iin).unwrap().is_some());
}

#[test]
fn a_person_registers_logs_in_three_ways_is_locked_out_and_recovers_in_the_browser() {
    let started = std::time::Instant::now();
    let signer_listener = free_listener();
    let t = portal_with_signer(&signer_listener);
    let n = 50;
    let iin = fixtures::person(n).iin.to_string();
    let auth: Holder = t.person_auth(n);
    let _signer = start_signer(&t, signer_listener, vec![pkcs12_key(&auth)], Policy::Accept);
    let mut harness = Harness::new("pages_account");
    let b = harness.session("citizen");
    let base = format!("http://127.0.0.1:{}", t.port);

    // The start page; keyboard: the first Tab reaches the skip link.
    b.goto(&format!("{base}/"));
    look(&b, "start");
    b.keys("\u{E004}");
    assert_eq!(b.execute("return document.activeElement.className", vec![]), json!("skip-link"));
    // Focus is visible.
    let outline = b.execute("return getComputedStyle(document.activeElement).outlineStyle", vec![]);
    assert_eq!(outline, json!("solid"));
    // Kazakh through the switch, which keeps the tab, and remembered.
    b.goto(&format!("{base}/login?tab=eds"));
    b.click("a[hreflang='kk']");
    b.wait("html[lang='kk']");
    assert_eq!(b.text("h1"), "Порталға кіру");
    assert!(b.url().ends_with("/login?tab=eds&lang=kk"), "{}", b.url());
    look(&b, "login-kk");
    b.goto(&format!("{base}/login"));
    assert_eq!(b.attr("html", "lang").as_deref(), Some("kk"));
    b.goto(&format!("{base}/?lang=ru"));
    assert_eq!(b.attr("html", "lang").as_deref(), Some("ru"));

    register_through_the_pages(&t, &b, n, true);

    // Password login, with the unknown-or-wrong message at the password field first.
    login_by_password(&t, &b, &iin, "Неверный1пароль");
    assert_eq!(b.text("#password-error"), messages::WRONG_LOGIN);
    assert_eq!(b.attr("#password", "aria-invalid").as_deref(), Some("true"));
    assert_eq!(b.attr("#password", "aria-describedby").as_deref(), Some("password-error"));
    look(&b, "login-wrong-password");
    login_by_password(&t, &b, &iin, PASSWORD);
    b.wait_path("/");
    assert!(b.text("header").contains(&iin));
    look(&b, "signed-in");
    sign_out(&b);

    // EDS login.
    b.goto(&format!("{base}/login?tab=eds"));
    look(&b, "login-eds");
    b.click_text("Войти по ЭЦП");
    b.wait_path("/");
    assert!(b.text("header").contains(&iin));
    sign_out(&b);

    // One-time password to the bound phone (the test's SMS spool gives the code).
    t.phones.bound.lock().unwrap().push((iin.clone(), PHONE.into()));
    b.goto(&format!("{base}/login?tab=otp"));
    look(&b, "login-otp");
    b.fill("#otp-login", &iin);
    b.click_text("Получить одноразовый пароль");
    b.wait("#code");
    look(&b, "login-otp-code");
    let (phone, text) = t.phones.sent.lock().unwrap().last().cloned().unwrap();
    assert_eq!(phone, PHONE);
    let code: String = text.split(": ").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
    b.fill("#code", &code);
    b.click_text("Войти");
    b.wait_path("/");
    assert!(b.text("header").contains(&iin));
    sign_out(&b);

    // Ten wrong passwords: the document's lockout message on the page; EDS login still works.
    for _ in 0..10 {
        login_by_password(&t, &b, &iin, "Неверный1пароль");
        b.wait_text("#password-error", messages::WRONG_LOGIN);
    }
    login_by_password(&t, &b, &iin, PASSWORD);
    assert_eq!(b.text("#form-error"), messages::LOCKED);
    look(&b, "login-locked");
    b.goto(&format!("{base}/login?tab=eds"));
    b.click_text("Войти по ЭЦП");
    b.wait_path("/");
    sign_out(&b);

    // Recovery by email: the generated password from the maildir, then the forced change.
    let record = fixtures::registry::person_record(n);
    b.goto(&format!("{base}/recovery?way=email"));
    look(&b, "recovery-email");
    b.fill("#iin", &iin);
    b.fill("#document-number", &record.document_number);
    b.execute(
        "document.getElementById('document-issued').value = arguments[0]",
        vec![json!(record.document_issued.to_string())],
    );
    b.click("form[action='/recovery/email'] button");
    assert_eq!(b.wait_text("#outcome", messages::RECOVERY_EMAIL_SENT), messages::RECOVERY_EMAIL_SENT);
    look(&b, "recovery-email-sent");
    let mail = t.mail();
    let generated =
        mail.iter().find_map(|m| m.lines().find_map(|l| l.strip_prefix("Новый пароль: "))).unwrap().trim().to_owned();
    login_by_password(&t, &b, &iin, &generated);
    b.wait_path("/password/change");
    assert!(b.text("main").contains("Необходимо сменить пароль"));
    look(&b, "must-change-password");
    // Going elsewhere leads back to the change form.
    b.goto(&format!("{base}/"));
    b.wait_path("/password/change");
    let new_password = "Новый8Пароль";
    b.fill_label("Текущий пароль", &generated);
    b.fill_label("Новый пароль", new_password);
    b.fill_label("Повторите новый пароль", new_password);
    b.click_text("Сменить пароль");
    assert_eq!(b.wait_text("#outcome", "Пароль изменен"), "Пароль изменен");
    look(&b, "password-changed");
    sign_out(&b);
    login_by_password(&t, &b, &iin, new_password);
    b.wait_path("/");
    sign_out(&b);

    // Recovery by EDS: the person's key signs; the new password works.
    b.goto(&format!("{base}/recovery"));
    look(&b, "recovery-eds");
    let third = "Третий9Пароль";
    b.fill_label("ИИН/БИН", &iin);
    b.fill_label("Новый пароль", third);
    b.fill_label("Повторите новый пароль", third);
    b.click_text("Подписать и сменить пароль");
    b.wait_text("#outcome", "Пароль изменен");
    login_by_password(&t, &b, &iin, third);
    b.wait_path("/");
    eprintln!("pages_account (PKCS#12): {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_token_key_registers_and_logs_in_and_refusals_are_shown_in_words() {
    use hsm::pkcs11::{CertificateCategory, Pkcs11Module, SecretPin, TokenSelector};
    let started = std::time::Instant::now();
    let signer_listener = free_listener();
    let t = portal_with_signer(&signer_listener);
    let n = 51;
    let iin = fixtures::person(n).iin.to_string();
    // The person's AUTH key generated on a SoftHSM token, its certificate written beside it.
    let conf = ca_tests::softhsm_tokens(t.dir.path(), &["id-card"], "1234");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin = || SecretPin::new(Zeroizing::new("1234".to_string()));
    {
        let module = Pkcs11Module::load(ca_tests::SOFTHSM_MODULE).unwrap();
        let token = module.open_token(&TokenSelector::Label("id-card".into())).unwrap();
        token.login(&pin()).unwrap();
        let key = token.generate_key_pair(hsm::KeyAlgorithm::P256, "auth").unwrap();
        let clock = ca_core::clock::FixedClock(t.ca_now() - time::Duration::minutes(5));
        let request = ca_core::issuer::IssuanceRequest {
            profile: ca_core::profile::ProfileId::IndividualAuth,
            subject: fixtures::individual(n),
            roles: vec![],
            public_key: ca_core::signer::Signer::public_key(&key).clone(),
        };
        let cert = t.ca.issuer(&clock).issue(&request).unwrap();
        token.write_certificate(&cert.der, "auth", CertificateCategory::TokenUser).unwrap();
        token.write_certificate(&t.ca.issuing.certificate_der, "NCA", CertificateCategory::Authority).unwrap();
    }
    let entries = keys::from_token(Path::new(ca_tests::SOFTHSM_MODULE), "id-card", &pin(), "AKKaztokenStore").unwrap();
    let _signer = start_signer(&t, signer_listener, entries, Policy::Accept);
    let mut harness = Harness::new("pages_account_token");
    let b = harness.session("card-holder");
    let base = format!("http://127.0.0.1:{}", t.port);

    register_through_the_pages(&t, &b, n, false);
    b.goto(&format!("{base}/login?tab=eds"));
    b.click_text("Войти по ЭЦП");
    b.wait_path("/");
    assert!(b.text("header").contains(&iin));
    b.screenshot("token-signed-in");
    sign_out(&b);

    // A signing client that refuses (the person said no): the words next to the button.
    let refusing = free_listener();
    let refusing_url = format!("ws://127.0.0.1:{}", refusing.local_addr().unwrap().port());
    let t2 = TestPortal::start_with(move |c| c.pages.signer_url = refusing_url);
    let key = t2.person_auth(52);
    let _refuser = start_signer(&t2, refusing, vec![pkcs12_key(&key)], Policy::Refuse);
    let other = harness.session("refuser");
    other.goto(&format!("http://127.0.0.1:{}/login?tab=eds", t2.port));
    other.click_text("Войти по ЭЦП");
    assert_eq!(other.wait_text("#eds-status", "Подписание отменено."), "Подписание отменено.");
    look(&other, "login-eds-refused");
    // No signing client at all.
    let gone = free_listener();
    let gone_url = format!("ws://127.0.0.1:{}", gone.local_addr().unwrap().port());
    drop(gone);
    let t3 = TestPortal::start_with(move |c| c.pages.signer_url = gone_url);
    other.goto(&format!("http://127.0.0.1:{}/login?tab=eds", t3.port));
    other.click_text("Войти по ЭЦП");
    other.wait_text("#eds-status", "Программа для подписания не запущена");
    look(&other, "login-eds-no-signer");
    eprintln!("pages_account (token): {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_legal_entity_registers_through_the_pages_and_logs_in_by_bin() {
    use ca_core::profile::{ProfileId, Role};
    let signer_listener = free_listener();
    let t = portal_with_signer(&signer_listener);
    let org = fixtures::organisation(3);
    let head = fixtures::registry::head_of(3);
    let (iin, bin) = (fixtures::person(head).iin.to_string(), org.bin.to_string());
    let head_auth = t.holder("head3", ProfileId::LegalAuth, fixtures::employee(head, 3), vec![Role::FirstHead]);
    let _signer = start_signer(&t, signer_listener, vec![pkcs12_key(&head_auth)], Policy::Accept);
    let mut harness = Harness::new("pages_account_legal");
    let b = harness.session("first-head");
    b.goto(&format!("http://127.0.0.1:{}/register", t.port));
    b.click("#agreement");
    b.click_text("Выбрать сертификат");
    // The certificate's BIN picks "legal entity".
    b.wait_text("#cert-bin", &bin);
    assert_eq!(b.text("#cert-iin"), iin);
    assert_eq!(b.execute("return document.getElementById('kind-legal').checked", vec![]), json!(true));
    b.fill_label("Адрес электронной почты", "org3@example.kz");
    b.fill_label("Пароль", PASSWORD);
    b.fill_label("Повторите пароль", PASSWORD);
    look(&b, "register-legal-entity");
    b.click_text("Подписать и зарегистрироваться");
    b.wait_text("#outcome", messages::REGISTERED);
    let account = t.portal.store.account_by_login(&bin).unwrap().unwrap();
    assert_eq!((account.iin.as_str(), account.bin.as_deref()), (iin.as_str(), Some(bin.as_str())));
    login_by_password(&t, &b, &bin, PASSWORD);
    b.wait_path("/");
    assert!(b.text("header").contains(&bin));
}
