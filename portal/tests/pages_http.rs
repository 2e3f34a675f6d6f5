//! The pages over plain HTTP (no browser): every page carries the security headers, and a
//! state-changing request without the CSRF token of its own cookies is refused before the
//! portal does anything (a cross-site login form cannot log anyone in or count a failure).

mod common;

use common::TestPortal;

const PASSWORD: &str = "Степной7Ветер";

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

#[test]
fn pages_carry_the_csp_and_a_post_without_the_csrf_token_is_refused() {
    let t = TestPortal::start();
    let iin = fixtures::person(40).iin.to_string();
    t.register_person(40, PASSWORD);

    let (status, head, body) = ca_tests::http_with_head(t.port, "GET", "/login", &[], b"");
    assert_eq!(status, 200, "{head}");
    let csp = header(&head, "content-security-policy");
    assert_eq!(
        csp,
        ["default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws://127.0.0.1:13579; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"]
    );
    assert_eq!(header(&head, "x-content-type-options"), ["nosniff"]);
    assert_eq!(header(&head, "referrer-policy"), ["no-referrer"]);
    let html = String::from_utf8(body).unwrap();
    assert!(html.starts_with("<!doctype html>\n<html lang=\"ru\">"), "{html}");
    assert!(!html.contains("<script>") && !html.contains(" onclick="), "no inline script");
    // The nonce cookie, and the token the page's form carries.
    let cookie = header(&head, "set-cookie").into_iter().find(|c| c.starts_with("csrf=")).unwrap().to_owned();
    assert!(cookie.ends_with("; Path=/; HttpOnly; Secure; SameSite=Strict"), "{cookie}");
    let nonce = cookie.split(';').next().unwrap().to_owned();
    let token = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

    let form = |csrf: Option<&str>| {
        let mut f = format!("login={iin}&password={}", urlencode(PASSWORD));
        if let Some(c) = csrf {
            f.push_str(&format!("&csrf={c}"));
        }
        f
    };
    let post = |cookie: Option<&str>, body: String, extra: &[(&str, &str)]| {
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        headers.extend_from_slice(extra);
        ca_tests::http_with_head(t.port, "POST", "/login/password", &headers, body.as_bytes())
    };
    // A cross-site form: the browser sends no SameSite=Strict cookie and the attacker has no
    // token; with a stolen cookie but no token; with a token of another nonce; marked
    // cross-site by the browser: all refused, and no session or failure is recorded.
    let other = "csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (cookie, body, extra) in [
        (None, form(None), vec![("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")]),
        (None, form(Some(&token)), vec![]),
        (Some(nonce.as_str()), form(None), vec![]),
        (Some(nonce.as_str()), form(Some("forged")), vec![]),
        (Some(other), form(Some(&token)), vec![]),
        (Some(nonce.as_str()), form(Some(&token)), vec![("Sec-Fetch-Site", "cross-site")]),
    ] {
        let (status, head, body) = post(cookie, body, &extra);
        assert_eq!(status, 403, "{cookie:?} {extra:?}: {head}");
        assert!(header(&head, "set-cookie").iter().all(|c| !c.starts_with("portal_session=")));
        assert!(!header(&head, "content-security-policy").is_empty());
        assert!(String::from_utf8_lossy(&body).contains("Обновите страницу"));
    }
    let account = t.portal.store.account_by_login(&iin).unwrap().unwrap();
    let idle = t.portal.policy.idle();
    let sessions = t.portal.store.sessions_of(account.id, t.portal.clock.now(), idle).unwrap();
    assert!(sessions.is_empty(), "a refused form opened a session");

    // The page's own form, with its cookie and token: logged in, the session in a cookie.
    let (status, head, _) = post(Some(&nonce), form(Some(&token)), &[]);
    assert_eq!(status, 303, "{head}");
    assert_eq!(header(&head, "location"), ["/"]);
    let session = header(&head, "set-cookie").into_iter().find(|c| c.starts_with("portal_session=")).unwrap();
    assert!(session.ends_with("; Path=/; HttpOnly; Secure; SameSite=Strict"), "{session}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
