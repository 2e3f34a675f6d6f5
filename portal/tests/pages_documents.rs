//! The digital documents' pages in headless Chromium (document 003): the owner sees his document
//! with its verification report and opens access (the QR image and the six-digit code counting
//! down); a different person in a second browser enters the code, and follows the QR's one-time
//! link, and sees the document; the view marks show in both cabinets; withdrawal makes the code
//! stop working (the page says so), and a code past its time is refused by the server whatever
//! the page shows. A parent sees his minor child's document. Every page is photographed and
//! checked by axe-core. People log in through the login page (password tab).

mod common;
#[path = "support/pages.rs"]
mod pages;
#[path = "support/documents.rs"]
mod support;

use browser_test::{Browser, Harness};
use pages::page;
use portal::documents::access::CODE_INVALID;
use support::{registry_with_child, DocsPortal, PASSWORD};
use time::Duration;

fn iin(n: u32) -> String {
    fixtures::person(n).iin.to_string()
}

fn base(d: &DocsPortal) -> String {
    format!("http://127.0.0.1:{}", d.t.port)
}

fn sign_in(b: &Browser, base: &str, n: u32) {
    pages::sign_in(b, base, &iin(n), PASSWORD);
}

#[test]
fn access_by_code_and_qr_link_marks_both_cabinets_and_withdrawal_or_expiry_stops_the_code() {
    let d = DocsPortal::start(|_| {});
    let (owner_n, viewer_n) = (80, 81);
    d.t.register_person(owner_n, PASSWORD);
    d.t.register_person(viewer_n, PASSWORD);
    let id = d.submit_ok(&iin(owner_n), "identity-card", "N-0801");
    let base = base(&d);
    let mut harness = Harness::new("pages_documents_access");
    let owner = harness.session("owner");
    let viewer = harness.session("viewer");

    // The owner: the list, the document with its report, «Открыть доступ».
    sign_in(&owner, &base, owner_n);
    owner.goto(&format!("{base}/documents"));
    owner.wait_text("#documents", "Удостоверение личности");
    page(&owner, "documents-list");
    owner.click(&format!("a[href='/documents/{id}']"));
    owner.wait_text("#report-verdict", "Документ подлинный");
    assert!(owner.text("#rendering").contains("N-0801"));
    page(&owner, "document-with-report");
    owner.click("#open-access");
    let code = owner.text("#short-code");
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{code:?}");
    let qr = owner.attr("#access-qr", "src").unwrap();
    assert!(qr.starts_with("data:image/png;base64,iVBORw0KGgo"), "{}", &qr[..40.min(qr.len())]);
    // The countdown runs (a static script: the CSP forbids inline ones) from the portal's 05:00.
    owner.wait_text("#countdown", "04:5");
    let link = owner.text("#access-link");
    let token = link.split_once("?token=").map(|(_, t)| t.to_owned()).expect("the QR's link carries the token");
    page(&owner, "access-opened");

    // The third party, a different person in a second browser: the code.
    sign_in(&viewer, &base, viewer_n);
    viewer.goto(&format!("{base}/documents/open"));
    page(&viewer, "enter-code");
    // By keyboard alone: Tab reaches the code field (its focus visible), Enter submits.
    let focused = |b: &Browser| b.execute("return document.activeElement.id", vec![]);
    for _ in 0..30 {
        if focused(&viewer) == serde_json::json!("code") {
            break;
        }
        viewer.keys("\u{E004}");
    }
    assert_eq!(focused(&viewer), serde_json::json!("code"), "Tab reaches the code field");
    let outline = viewer.execute("return getComputedStyle(document.activeElement).outlineStyle", vec![]);
    assert_eq!(outline, serde_json::json!("solid"), "the focus is visible");
    viewer.keys(&format!("{code}\u{E007}"));
    viewer.wait_text("#third-party-notice", "Отметка о просмотре сохранена");
    assert!(viewer.text("#rendering").contains("N-0801"));
    viewer.wait_text("#report-verdict", "Документ подлинный");
    assert!(!viewer.exists("#open-access"), "a third party cannot open access further");
    page(&viewer, "third-party-document");
    // The QR code's one-time link (the same origin here; public_url in production).
    viewer.goto(&format!("{base}/documents/open?token={token}"));
    viewer.wait_text("#third-party-notice", "Отметка о просмотре сохранена");

    // The view marks: the third party sees what he viewed, the owner who viewed and how.
    viewer.goto(&format!("{base}/documents/history"));
    let marks = viewer.wait_text("#history", "Удостоверение личности № N-0801");
    assert!(
        marks.contains("Просмотр документа") && marks.contains("код доступа") && marks.contains("QR-код"),
        "{marks}"
    );
    page(&viewer, "viewer-history");
    owner.goto(&format!("{base}/documents/history"));
    let marks = owner.wait_text("#history", &iin(viewer_n));
    assert!(marks.contains("третье лицо") && marks.contains("Открыт доступ"), "{marks}");
    page(&owner, "owner-history");

    // Withdrawal from the list: the code stops working, and so does the link.
    owner.goto(&format!("{base}/documents"));
    owner.wait_text("#grants", &code);
    owner.click_text("Отозвать доступ");
    owner.wait_text("#documents-notice", "Доступ к документу отозван");
    assert!(!owner.text("#grants").contains(&code), "a closed grant's code is not shown");
    page(&owner, "access-withdrawn");
    viewer.goto(&format!("{base}/documents/open"));
    viewer.fill_label("Код доступа (6 цифр)", &code);
    viewer.click("#view");
    viewer.wait_text("#code-error", CODE_INVALID);
    assert_eq!(viewer.attr("#code", "aria-invalid").as_deref(), Some("true"));
    page(&viewer, "code-refused");
    viewer.goto(&format!("{base}/documents/open?token={token}"));
    viewer.wait_text("#code-error", "Субъект отозвал доступ к документу");

    // A new grant past its lifetime (the portal's clock): refused by the server.
    owner.goto(&format!("{base}/documents/{id}"));
    owner.click("#open-access");
    let late = owner.text("#short-code");
    d.t.clock.advance(Duration::minutes(6));
    viewer.goto(&format!("{base}/documents/open"));
    viewer.fill_label("Код доступа (6 цифр)", &late);
    viewer.click("#view");
    viewer.wait_text("#code-error", CODE_INVALID);
}

#[test]
fn a_parent_sees_his_minor_childs_document_in_both_languages() {
    let now = fixtures::fixed_now().0;
    let born = (now + Duration::hours(5)).date() - Duration::days(365 * 7);
    let parent = 83;
    let (registry, child) = registry_with_child(parent, born);
    let d = DocsPortal::start(|c| c.registry.csv = registry.path().to_path_buf());
    d.t.register_person(parent, PASSWORD);
    let id = d.submit_ok(&child, "birth-certificate", "B-0083");
    let base = base(&d);
    let mut harness = Harness::new("pages_documents_minor");
    let b = harness.session("parent");
    sign_in(&b, &base, parent);
    b.goto(&format!("{base}/documents"));
    let row = b.wait_text(&format!("#documents tr:has(a[href='/documents/{id}'])"), &child);
    assert!(row.contains("Ребенка (я родитель)"), "{row}");
    page(&b, "minor-document-list");
    b.click(&format!("a[href='/documents/{id}']"));
    b.wait_text("#report-verdict", "Документ подлинный");
    b.goto(&format!("{base}/documents?lang=kk"));
    let row = b.wait_text("#documents", &child);
    assert!(row.contains("Баланың (мен ата-анасымын)"), "{row}");
    assert_eq!(b.execute("return document.documentElement.lang", vec![]), serde_json::json!("kk"));
    page(&b, "minor-document-list-kk");
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().filter_map(|l| l.split_once(':')).find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

/// Without a browser: opening access is a POST that needs the CSRF token of the person's own
/// cookies (refused before anything is opened without it), its answer (the code, the token) is
/// never cached, and the QR link's page sends no Referer; another person's document is not
/// found through the pages either.
#[test]
fn opening_access_needs_the_csrf_token_and_its_answer_is_not_cached() {
    let d = DocsPortal::start(|_| {});
    d.t.register_person(84, PASSWORD);
    d.t.register_person(85, PASSWORD);
    let id = d.submit_ok(&iin(84), "identity-card", "N-0841");
    let session = |n: u32| format!("portal_session={}", d.login(n));
    let owner = session(84);
    let port = d.t.port;
    let grants = || d.get("/api/v1/documents/access", &d.login(84)).1["grants"].as_array().unwrap().len();

    // The document page gives the CSRF cookie and the form's token.
    let (status, head, body) =
        ca_tests::http_with_head(port, "GET", &format!("/documents/{id}"), &[("Cookie", &owner)], b"");
    assert_eq!(status, 200, "{head}");
    let nonce = header(&head, "set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let html = String::from_utf8(body).unwrap();
    let token = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let cookies = format!("{owner}; {nonce}");
    let form = [("Cookie", cookies.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    let path = format!("/documents/{id}/access");

    // Without the token, or with another session's: refused, nothing opened.
    let (status, _) = ca_tests::http(port, "POST", &path, &form, b"");
    assert_eq!(status, 403);
    let other = format!("{}; {nonce}", session(84));
    let (status, _) = ca_tests::http(
        port,
        "POST",
        &path,
        &[("Cookie", other.as_str()), ("Content-Type", "application/x-www-form-urlencoded")],
        format!("csrf={token}").as_bytes(),
    );
    assert_eq!(status, 403);
    assert_eq!(grants(), 0);

    // With it: opened, and the answer is not kept by any cache.
    let (status, head, body) = ca_tests::http_with_head(port, "POST", &path, &form, format!("csrf={token}").as_bytes());
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    assert!(String::from_utf8(body).unwrap().contains("id=\"short-code\""));
    assert_eq!(grants(), 1);

    // The QR link's page: no Referer leaves it.
    let viewer = session(85);
    let (status, head, _) =
        ca_tests::http_with_head(port, "GET", "/documents/open?token=x", &[("Cookie", viewer.as_str())], b"");
    assert_eq!((status, header(&head, "referrer-policy")), (400, Some("no-referrer")), "{head}");
    // Another person's document: not found, as in the API.
    let (status, _) = ca_tests::http(port, "GET", &format!("/documents/{id}"), &[("Cookie", viewer.as_str())], b"");
    assert_eq!(status, 404);
    // No session: to the login page.
    let (status, head, _) = ca_tests::http_with_head(port, "GET", "/documents", &[], b"");
    assert_eq!((status, header(&head, "location")), (303, Some("/login")), "{head}");
}
