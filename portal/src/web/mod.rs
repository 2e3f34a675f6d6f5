//! The portal's pages: server-rendered HTML (askama templates under `portal/templates/`), plain
//! forms, and a little plain JavaScript from `portal/static/` (no inline script anywhere). Page
//! handlers call the same [`Portal`](crate::Portal) operations the JSON API calls, on the same
//! blocking pool; they only translate forms to those calls and answers to pages.
//!
//! Every page route goes through [`http_common::pages::guard`]: the security headers (a CSP
//! without inline scripts whose `connect-src` allows the signing client's socket), the CSRF
//! check of every state-changing request, the language (Russian by default, Kazakh). The
//! session is the API's own session token, kept in the [`SESSION_COOKIE`] (HttpOnly,
//! SameSite=Strict, Secure) instead of an `Authorization` header.
//!
//! One file per area, each with its `routes()` merged here by one line: [`account`]
//! (registration, login, logout, recovery, the forced password change), [`cabinet`] (profile,
//! phone, sessions, journal), [`documents`] (digital documents, open access, the third party's
//! view, view marks). An area's texts go in `i18n/<area>.rs`; its templates under
//! `portal/templates/<area>/` extend `layout.html` (which reads a [`Page`] field named `page`)
//! and may import `macros.html` (the signing status line, the new-password pair); a page that
//! signs includes `/static/signer.js`, whose `Signer` object is generic. Handlers take
//! `Extension<PageContext>` (language, CSRF token), find the session with [`signed_in`], run the
//! domain operation with `crate::http::run`, and answer a refusal with the form again
//! ([`FormError`], [`status_of`], [`shown`]).

mod account;
mod area;
mod cabinet;
mod documents;
pub mod i18n;

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use http_common::pages::{self, Lang, PageContext, PageSecurity};
use serde::Deserialize;

use crate::http::AppState;
use crate::login::session::{Authenticated, SessionGrant};
use crate::PortalError;

/// The cookie holding the session token of a signed-in browser.
pub const SESSION_COOKIE: &str = "portal_session";

/// `[pages]` of `portal.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PagesConfig {
    /// The signing client's WebSocket, as the browser reaches it (put into each page's
    /// `<meta name="signer-url">` and the CSP's `connect-src`).
    pub signer_url: String,
}

impl Default for PagesConfig {
    fn default() -> Self {
        Self { signer_url: "ws://127.0.0.1:13579".into() }
    }
}

impl PagesConfig {
    pub fn validate(&self) -> Result<(), String> {
        let url = &self.signer_url;
        let scheme_ok = url.starts_with("ws://") || url.starts_with("wss://");
        if !scheme_ok || url.contains([' ', ';', ',', '\'', '"']) || !url.is_ascii() {
            return Err(format!("[pages] signer_url must be a ws:// or wss:// URL, not {url:?}"));
        }
        Ok(())
    }
}

/// What the layout shows on every page: the language and its common texts, the CSRF token for
/// the forms, the signing client's address, who is signed in.
pub struct Page {
    pub lang: Lang,
    pub c: &'static i18n::common::Common,
    pub csrf: String,
    pub signer_url: String,
    /// The login (IIN/BIN) of the signed-in account.
    pub user: Option<String>,
    /// The address's query without `lang` (for the language switch).
    pub query: String,
}

impl Page {
    pub fn new(state: &AppState, ctx: &PageContext, user: Option<&Authenticated>) -> Self {
        Self {
            lang: ctx.lang,
            c: i18n::common::texts(ctx.lang),
            csrf: ctx.csrf_token.clone(),
            signer_url: state.portal.pages.signer_url.clone(),
            user: user.map(|a| a.account.login.clone()),
            query: ctx.query_without_lang.clone(),
        }
    }
}

/// A message shown next to a form field (`field`), or above the form (no field).
#[derive(Clone, Debug, Default)]
pub struct FormError {
    pub field: Option<&'static str>,
    pub message: String,
}

impl FormError {
    pub fn none() -> Self {
        Self::default()
    }

    /// `error` next to `field`.
    pub fn at(field: &'static str, error: &PortalError) -> Self {
        Self { field: Some(field), message: error.to_string() }
    }

    /// `error` above the form.
    pub fn general(error: &PortalError) -> Self {
        Self { field: None, message: error.to_string() }
    }

    /// Whether the message belongs to `field` (templates: `aria-invalid`, `aria-describedby`).
    pub fn is(&self, field: &str) -> bool {
        self.field == Some(field)
    }

    /// Whether there is a message not tied to a field.
    pub fn is_general(&self) -> bool {
        self.field.is_none() && !self.message.is_empty()
    }
}

/// The HTTP status a page answers a refused form with: the API's status for the same error.
pub(crate) use crate::http::status_of;

/// The message a page shows for `error`: internal detail stays in the log, as in the API.
pub fn shown(error: PortalError) -> PortalError {
    match error {
        PortalError::Store(_) | PortalError::Internal(_) => {
            tracing::error!(error = %error, "page request failed");
            PortalError::Internal("internal error".into())
        }
        e => e,
    }
}

/// The session of the browser's cookie; `None` without a cookie or with a session that is no
/// longer valid. With `allow_must_change` false an account that must change its password has
/// none (it is sent to the change form).
pub async fn signed_in(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    allow_must_change: bool,
) -> Result<Option<Authenticated>, PortalError> {
    let Some(token) = pages::read_cookie(headers, SESSION_COOKIE).map(str::to_owned) else { return Ok(None) };
    match crate::http::run(state, false, move |p| p.authenticate(&token, allow_must_change)).await {
        Ok(auth) => Ok(Some(auth)),
        Err(crate::http::ApiError(e)) => match e {
            PortalError::Unauthenticated { .. } | PortalError::Refused { .. } => Ok(None),
            e => Err(e),
        },
    }
}

/// A redirect after a form (303: the browser follows with GET).
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// After a login: the session cookie and on to the start page, or to the password change form
/// when the password must be changed first.
pub fn signed_in_redirect(grant: &SessionGrant) -> Response {
    let to = if grant.must_change_password { "/password/change" } else { "/" };
    let mut response = see_other(to);
    response.headers_mut().append(header::SET_COOKIE, pages::cookie(SESSION_COOKIE, &grant.token, None));
    response
}

/// Removes the session cookie (logout).
pub fn signed_out(mut response: Response) -> Response {
    response.headers_mut().append(header::SET_COOKIE, pages::removed_cookie(SESSION_COOKIE));
    response
}

/// The scripts and the style sheet, compiled in.
async fn static_file(Path(name): Path<String>) -> Response {
    let (content_type, body) = match name.as_str() {
        "portal.css" => ("text/css; charset=utf-8", include_str!("../../static/portal.css")),
        "signer.js" => ("text/javascript; charset=utf-8", http_common::pages::SIGNER_JS),
        "account.js" => ("text/javascript; charset=utf-8", include_str!("../../static/account.js")),
        "phone-binding.js" => ("text/javascript; charset=utf-8", include_str!("../../static/phone-binding.js")),
        "access.js" => ("text/javascript; charset=utf-8", include_str!("../../static/access.js")),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    let mut response = pages::asset(content_type, body);
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Every page, behind the guard. The CSRF key is derived from the challenge key (kept in the
/// store), so every instance on one database accepts the others' tokens.
pub fn routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let secret = aws_lc_rs::hmac::sign(&state.portal.challenge_key, b"portal pages csrf key v1");
    let signer_url = state.portal.pages.signer_url.as_str();
    // The configuration was validated; a URL that still cannot go into the CSP only loses the
    // signing client (the pages cannot reach it), never the pages.
    let security = PageSecurity::new(secret.as_ref(), SESSION_COOKIE, &[signer_url]).unwrap_or_else(|e| {
        tracing::error!(error = %e, "[pages] signer_url left out of the Content-Security-Policy");
        PageSecurity::new(secret.as_ref(), SESSION_COOKIE, &[]).expect("no extra source is always valid")
    });
    Router::new()
        .route("/static/{name}", get(static_file))
        .merge(account::routes())
        .merge(cabinet::routes())
        .merge(documents::routes())
        .layer(axum::middleware::from_fn_with_state(Arc::new(security), pages::guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signer_url_must_be_a_websocket_that_fits_the_csp() {
        assert!(PagesConfig::default().validate().is_ok());
        assert!(PagesConfig { signer_url: "wss://signer.example.kz:13579".into() }.validate().is_ok());
        for bad in ["http://127.0.0.1:13579", "ws://x; script-src *", "ws://a b", "ws://ключ"] {
            assert!(PagesConfig { signer_url: bad.into() }.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_form_error_belongs_to_its_field_or_to_the_form() {
        let e = PortalError::invalid("invalid-email", "Адрес электронной почты введен неверно");
        let at = FormError::at("email", &e);
        assert!(at.is("email") && !at.is("password") && !at.is_general());
        assert!(FormError::general(&e).is_general());
        assert!(!FormError::none().is_general());
        assert_eq!(status_of(&e), StatusCode::BAD_REQUEST);
        assert_eq!(shown(PortalError::internal("disk full at /var/x")).to_string(), "internal error");
    }
}
