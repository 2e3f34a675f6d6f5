//! What the server-rendered pages of the portal and of ca-server's console share: the security
//! headers, CSRF protection, the cookies, the page language and rendering a template.
//!
//! One middleware, [`guard`], wraps a router of pages (never the JSON API, whose callers
//! authenticate with a bearer token that a browser does not send on its own):
//!
//! - **Headers** on every answer: a Content-Security-Policy without inline scripts or styles
//!   (`script-src 'self'`; the only socket a page may open besides its own origin is the local
//!   signing client's), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//!   `X-Frame-Options: DENY` for old browsers, and `Cache-Control: no-store` unless the handler
//!   set one (a page may show personal data: no shared or back-button cache).
//! - **CSRF**, signed double-submit bound to the session: a random nonce lives in the `csrf`
//!   cookie (HttpOnly, SameSite=Strict); the token a form carries in its hidden `csrf` field (or
//!   a script in the `X-CSRF-Token` header) is HMAC-SHA256(key, nonce ‖ session cookie). Every
//!   request that is not GET/HEAD/OPTIONS must carry the token matching its own cookies, so
//!   another site can neither forge it (no key) nor replay one (its nonce and session differ),
//!   and a request the browser itself marks `Sec-Fetch-Site: cross-site` is refused outright.
//!   The token changes with the session: a form rendered before a login in another tab is
//!   refused and has to be reloaded.
//! - **Language**: `?lang=ru|kk` (remembered in the `lang` cookie), else the cookie, else
//!   Russian; handlers read it, with the token, from the [`PageContext`] extension.
//!
//! Cookies are `Path=/; HttpOnly; Secure; SameSite=Strict` ([`cookie`]): browsers keep Secure
//! cookies on `http://localhost` and `http://127.0.0.1` too (secure contexts), so the same
//! settings work in the tests and behind TLS in production.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

/// The cookie holding the CSRF nonce.
pub const CSRF_COOKIE: &str = "csrf";
/// The hidden form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The request header carrying the CSRF token (for scripts).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The cookie remembering the chosen language.
pub const LANG_COOKIE: &str = "lang";
/// The largest form body the guard reads to find the token.
pub const MAX_FORM: usize = 256 * 1024;

/// Bytes of the CSRF nonce.
const NONCE_LEN: usize = 32;

/// The language of a page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// Russian, the default.
    #[default]
    Ru,
    /// Kazakh.
    Kk,
}

impl Lang {
    /// The code for `<html lang>`, `?lang=` and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ru => "ru",
            Self::Kk => "kk",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "ru" => Some(Self::Ru),
            "kk" => Some(Self::Kk),
            _ => None,
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What the guard gives every page handler (an axum `Extension`).
#[derive(Clone, Debug)]
pub struct PageContext {
    pub lang: Lang,
    /// The CSRF token for this request's cookies: the forms' hidden `csrf` field.
    pub csrf_token: String,
    /// The request's query without `lang`, ready to prefix `lang=…` (empty, or ending in `&`):
    /// the language switch keeps the rest of the address (`?tab=eds&lang=kk`).
    pub query_without_lang: String,
}

/// The settings of [`guard`].
pub struct PageSecurity {
    csp: HeaderValue,
    key: hmac::Key,
    session_cookie: &'static str,
    refusal: String,
}

/// A setting of [`PageSecurity`] that cannot go into a header.
#[derive(Debug, thiserror::Error)]
#[error("not usable in the Content-Security-Policy: {0}")]
pub struct BadSource(pub String);

impl PageSecurity {
    /// `secret` keys the CSRF tokens (at least 32 bytes, the same on every instance behind one
    /// name); `session_cookie` is the cookie the tokens are bound to; `connect_src` are the
    /// origins scripts may connect to besides the page's own (the signing client's
    /// `ws://127.0.0.1:13579`).
    pub fn new(secret: &[u8], session_cookie: &'static str, connect_src: &[&str]) -> Result<Self, BadSource> {
        for source in connect_src {
            if source.is_empty() || source.contains([';', ',', ' ', '\'', '"']) || !source.is_ascii() {
                return Err(BadSource((*source).to_owned()));
            }
        }
        let connect = std::iter::once("'self'").chain(connect_src.iter().copied()).collect::<Vec<_>>().join(" ");
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        );
        Ok(Self {
            csp: HeaderValue::from_str(&csp).map_err(|_| BadSource(connect))?,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            session_cookie,
            refusal: "Страница устарела или форма отправлена не с этого сайта. Обновите страницу и повторите. \
                      Бет ескірген немесе пішін осы сайттан жіберілмеген. Бетті жаңартып, қайталаңыз."
                .to_owned(),
        })
    }

    /// The Content-Security-Policy sent with every page.
    pub fn csp(&self) -> &str {
        self.csp.to_str().unwrap_or_default()
    }

    /// The token for `nonce` (the cookie's value) and the session cookie's value.
    pub fn token(&self, nonce: &str, session: Option<&str>) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"page csrf v1\0");
        ctx.update(nonce.as_bytes());
        ctx.update(b"\0");
        ctx.update(session.unwrap_or_default().as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }

    fn token_matches(&self, nonce: &str, session: Option<&str>, token: &str) -> bool {
        self.token(nonce, session).as_bytes().ct_eq(token.as_bytes()).into()
    }

    fn refuse(&self) -> Response {
        let body = format!(
            "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>403</title></head>\
             <body><main><h1>403</h1><p role=\"alert\">{}</p></main></body></html>",
            self.refusal
        );
        (StatusCode::FORBIDDEN, Html(body)).into_response()
    }
}

/// A cookie as the pages set it: `Path=/; HttpOnly; Secure; SameSite=Strict`, for the browser's
/// session unless `max_age` is given. The value must be a cookie-octet string (base64url,
/// digits, letters).
pub fn cookie(name: &str, value: &str, max_age: Option<std::time::Duration>) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Path=/; Max-Age=0"))
}

/// The header that removes cookie `name`.
pub fn removed_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Path=/; Max-Age=0"))
}

/// The value of cookie `name` in the request, if any (the first one).
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Render `template` as an HTML answer with `status`; a template that fails to render (a bug)
/// is a logged 500, never a half page.
pub fn render<T: askama::Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, Html("<!doctype html><title>500</title><p>internal error</p>"))
                .into_response()
        }
    }
}

/// A static file (script, style sheet) compiled into the binary.
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn query_without_lang(request: &Request) -> String {
    let Some(query) = request.uri().query() else { return String::new() };
    let mut out = form_urlencoded::Serializer::new(String::new());
    out.extend_pairs(form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "lang"));
    let mut text = out.finish();
    if !text.is_empty() {
        text.push('&');
    }
    text
}

fn query_lang(request: &Request) -> Option<Lang> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "lang").and_then(|(_, v)| Lang::parse(&v))
}

fn well_formed_nonce(value: &str) -> bool {
    URL_SAFE_NO_PAD.decode(value).is_ok_and(|b| b.len() == NONCE_LEN)
}

fn new_nonce() -> Option<String> {
    let mut bytes = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// The token a state-changing request carries: the header, else the form field. A form body is
/// read (up to [`MAX_FORM`]) and put back for the handler.
async fn submitted_token(request: Request) -> Result<(Option<String>, Request), Response> {
    if let Some(t) = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        let t = t.to_owned();
        return Ok((Some(t), request));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((None, request));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, Html("<!doctype html><title>413</title>")).into_response())?;
    let token = form_urlencoded::parse(&bytes).find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.into_owned());
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// The pages' generic client of the signing client (`ca-signer` or the national one): a
/// `window.Signer` with `keyInfo` and `signBase64`, refusals written in words. One file for the
/// portal's pages and ca-server's console, each serving it as `signer.js`.
pub const SIGNER_JS: &str = include_str!("../static/signer.js");

/// The middleware (`axum::middleware::from_fn_with_state(security, guard)`) described in the
/// module documentation.
pub async fn guard(State(security): State<Arc<PageSecurity>>, request: Request, next: Next) -> Response {
    let chosen = query_lang(&request);
    let lang = chosen.or_else(|| read_cookie(request.headers(), LANG_COOKIE).and_then(Lang::parse)).unwrap_or_default();
    let existing = read_cookie(request.headers(), CSRF_COOKIE).filter(|n| well_formed_nonce(n)).map(str::to_owned);
    let session = read_cookie(request.headers(), security.session_cookie).map(str::to_owned);
    let mut request = request;
    if !is_safe(request.method()) {
        let cross_site = request.headers().get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site");
        let (token, back) = match submitted_token(request).await {
            Ok(t) => t,
            Err(response) => return response,
        };
        request = back;
        let valid = match (&existing, token) {
            (Some(nonce), Some(token)) => security.token_matches(nonce, session.as_deref(), &token),
            _ => false,
        };
        if cross_site || !valid {
            tracing::warn!(path = %request.uri().path(), cross_site, "a page request without a valid CSRF token refused");
            return with_headers(&security, security.refuse(), None, chosen);
        }
    }
    let (nonce, new) = match existing {
        Some(n) => (n, None),
        None => match new_nonce() {
            Some(n) => (n.clone(), Some(n)),
            None => return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness").into_response(),
        },
    };
    let csrf_token = security.token(&nonce, session.as_deref());
    let query_without_lang = query_without_lang(&request);
    request.extensions_mut().insert(PageContext { lang, csrf_token, query_without_lang });
    let response = next.run(request).await;
    with_headers(&security, response, new, chosen)
}

fn with_headers(
    security: &PageSecurity,
    mut response: Response,
    nonce: Option<String>,
    lang: Option<Lang>,
) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, security.csp.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(nonce) = nonce {
        h.append(header::SET_COOKIE, cookie(CSRF_COOKIE, &nonce, None));
    }
    if let Some(lang) = lang {
        h.append(
            header::SET_COOKIE,
            cookie(LANG_COOKIE, lang.code(), Some(std::time::Duration::from_secs(365 * 86400))),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> (Router, Arc<PageSecurity>) {
        let security = Arc::new(PageSecurity::new(&[7u8; 32], "session", &["ws://127.0.0.1:13579"]).unwrap());
        let router = Router::new()
            .route(
                "/",
                get(|axum::Extension(c): axum::Extension<PageContext>| async move {
                    format!("{} {} {}", c.lang, c.csrf_token, c.query_without_lang)
                })
                .post(|body: String| async move { body }),
            )
            .layer(axum::middleware::from_fn_with_state(security.clone(), guard));
        (router, security)
    }

    async fn send(router: &Router, request: Request) -> (StatusCode, HeaderMap, String) {
        let response = router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn post(cookies: &str, body: &str, extra: &[(&str, &str)]) -> Request {
        let mut r = Request::post("/")
            .header(header::COOKIE, cookies)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        r.body(Body::from(body.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn a_state_changing_request_needs_the_token_of_its_own_cookies() {
        let (router, security) = app();
        // A first visit sets the nonce cookie and the headers.
        let (status, headers, body) =
            send(&router, Request::get("/?tab=eds&lang=kk&x=%D0%B0").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], security.csp());
        assert!(security.csp().contains("script-src 'self';") && security.csp().contains("ws://127.0.0.1:13579"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        let cookies: Vec<&str> = headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        let nonce_cookie = cookies.iter().find(|c| c.starts_with("csrf=")).unwrap();
        assert!(nonce_cookie.ends_with("; Path=/; HttpOnly; Secure; SameSite=Strict"), "{nonce_cookie}");
        assert!(cookies.iter().any(|c| c.starts_with("lang=kk;")));
        let nonce = nonce_cookie.split(';').next().unwrap().trim_start_matches("csrf=");
        let mut parts = body.split(' ');
        let (lang, token, query) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        assert_eq!((lang, token.to_owned(), query), ("kk", security.token(nonce, None), "tab=eds&x=%D0%B0&"));

        let cookie = format!("csrf={nonce}");
        // With the token: served, and the handler gets the whole body.
        let form = format!("a=1&csrf={token}");
        let (status, _, body) = send(&router, post(&cookie, &form, &[])).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, form.as_str()));
        // By header.
        let (status, _, _) = send(&router, post(&cookie, "a=1", &[(CSRF_HEADER, token)])).await;
        assert_eq!(status, StatusCode::OK);
        // Without a token, with a wrong one, without the cookie, with another session, or marked
        // cross-site by the browser: refused, and the handler never runs.
        for (cookies, form, extra) in [
            (cookie.clone(), "a=1".to_owned(), vec![]),
            (cookie.clone(), format!("a=1&csrf={}", security.token("other", None)), vec![]),
            (String::new(), form.clone(), vec![]),
            (format!("{cookie}; session=abc"), form.clone(), vec![]),
            (cookie.clone(), form.clone(), vec![("sec-fetch-site", "cross-site")]),
        ] {
            let (status, headers, body) = send(&router, post(&cookies, &form, &extra)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{cookies} {form} {extra:?}");
            assert!(!body.contains("a=1") && headers.contains_key(header::CONTENT_SECURITY_POLICY));
        }
        // The token bound to a session works with that session only.
        let bound = security.token(nonce, Some("abc"));
        let (status, _, _) =
            send(&router, post(&format!("{cookie}; session=abc"), &format!("csrf={bound}"), &[])).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[test]
    fn cookies_are_read_and_built_as_the_pages_need() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; session=xyz; lang=kk".parse().unwrap());
        assert_eq!(read_cookie(&headers, "session"), Some("xyz"));
        assert_eq!(read_cookie(&headers, "missing"), None);
        assert_eq!(
            cookie("session", "xyz", Some(std::time::Duration::from_secs(60))),
            "session=xyz; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=60"
        );
        assert!(PageSecurity::new(&[0; 32], "s", &["ws://x; script-src *"]).is_err());
    }
}
