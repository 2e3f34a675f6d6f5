//! What the cabinet's and the documents' pages share: the signed-in account or the way to the
//! login page, the operations on the blocking pool, times as people in
//! Kazakhstan read them, and the page shown when something cannot be done.

use std::sync::Arc;

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use http_common::pages::{render, PageContext};
use time::{OffsetDateTime, UtcOffset};

use super::{see_other, shown, signed_in, status_of, Page};
use crate::http::AppState;
use crate::login::session::Authenticated;
use crate::{Portal, PortalError};

/// Why a page could not be shown as asked.
#[derive(Debug)]
pub enum PageError {
    /// No session, or it ended: to the login page.
    SignedOut,
    /// A refusal of the person's own input that the page shows next to the field or above the
    /// form (a wrong code, a number bound elsewhere, an expired access).
    Refused(PortalError),
    /// Anything else: the error page.
    Failed(PortalError),
}

impl From<PortalError> for PageError {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::Unauthenticated { kind, .. } if kind.starts_with("session") => Self::SignedOut,
            PortalError::Invalid { .. }
            | PortalError::Unauthenticated { .. }
            | PortalError::Refused { .. }
            | PortalError::Limited { .. }
            | PortalError::TooSoon { .. }
            | PortalError::Locked { .. }
            | PortalError::Duplicate(_) => Self::Refused(e),
            e => Self::Failed(e),
        }
    }
}

#[derive(Template)]
#[template(path = "cabinet/error.html")]
struct ErrorPage {
    page: Page,
    t: &'static crate::web::i18n::cabinet::CabinetText,
    status: u16,
    message: String,
    back: String,
}

impl PageError {
    /// The answer: a redirect to the login page, or the error page with a way `back`.
    pub fn into_page(self, state: &AppState, ctx: &PageContext, back: &str) -> Response {
        let e = match self {
            Self::SignedOut => return see_other("/login"),
            Self::Refused(e) | Self::Failed(e) => shown(e),
        };
        let status = status_of(&e);
        let page = ErrorPage {
            page: Page::new(state, ctx, None),
            t: crate::web::i18n::cabinet::text(ctx.lang),
            status: status.as_u16(),
            message: e.to_string(),
            back: back.to_owned(),
        };
        render(status, &page)
    }
}

/// The page answer of `result`.
pub fn respond<T: Template>(state: &AppState, ctx: &PageContext, result: Result<T, PageError>, back: &str) -> Response {
    respond_as(state, ctx, result.map(|page| (StatusCode::OK, page)), back)
}

/// [`respond`] for a page that may show a refusal of its form (with the API's status for it).
pub fn respond_as<T: Template>(
    state: &AppState,
    ctx: &PageContext,
    result: Result<(StatusCode, T), PageError>,
    back: &str,
) -> Response {
    match result {
        Ok((status, page)) => render(status, &page),
        Err(e) => e.into_page(state, ctx, back),
    }
}

/// The refusal a form shows next to its field, if `e` is one: a refusal of the input, or
/// "not found" for what the person typed (a code that opens nothing).
pub fn form_refusal(e: PageError) -> Result<PortalError, PageError> {
    match e {
        PageError::Refused(e) | PageError::Failed(e @ PortalError::NotFound { .. }) => Ok(e),
        e => Err(e),
    }
}

/// The signed-in account of the browser's session cookie (an account that must change its
/// password has none here: the login sends it to the change form).
pub async fn account_of(state: &Arc<AppState>, headers: &HeaderMap) -> Result<Authenticated, PageError> {
    signed_in(state, headers, false).await.map_err(PageError::Failed)?.ok_or(PageError::SignedOut)
}

/// Run a portal operation on the blocking pool.
pub async fn run_page<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Portal) -> Result<T, PortalError> + Send + 'static,
) -> Result<T, PageError> {
    crate::http::run(state, false, f).await.map_err(|crate::http::ApiError(e)| PageError::from(e))
}

/// Kazakhstan's time (UTC+5 since 2024-03-01 for the whole country).
const KAZAKHSTAN: UtcOffset = match UtcOffset::from_hms(5, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// A time as people in Kazakhstan read it: `30.11.2026 14:41`.
pub fn local_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(KAZAKHSTAN);
    format!("{:02}.{:02}.{} {:02}:{:02}", at.day(), u8::from(at.month()), at.year(), at.hour(), at.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_kazakhstan() {
        let at = time::macros::datetime!(2026-11-30 21:05:59 UTC);
        assert_eq!(local_time(at), "01.12.2026 02:05");
    }

    #[test]
    fn a_session_refusal_goes_to_the_login_and_a_wrong_code_stays_on_the_form() {
        let e = PageError::from(PortalError::unauthenticated("session-expired", "x"));
        assert!(matches!(e, PageError::SignedOut));
        let e = PageError::from(PortalError::unauthenticated("wrong-otp", "x"));
        assert!(matches!(e, PageError::Refused(_)));
        let e = PageError::from(PortalError::not_found("document-not-found", "Документ не найден"));
        assert!(matches!(e, PageError::Failed(_)));
    }
}
