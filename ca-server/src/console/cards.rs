//! Card personalization: the card applications and where each stands — waiting for the
//! operator, ready to be written at the counter (`ca card personalize`), being written, written
//! (with the serials), or interrupted (a wrong PIN, a card pulled out: the error the counter
//! recorded; it resumes with the same card).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ca_core::ra::store::ApplicationQuery;
use ca_core::ra::{ApplicationKind, ApplicationState, Step};
use ca_core::serial::SerialNumber;

use super::{message, render, when, Chrome, ConsoleUser};
use crate::Services;

/// How many card applications the page lists (newest first).
const LIMIT: u32 = 200;

pub(crate) struct CardRow {
    pub number: String,
    pub iin: String,
    pub state: String,
    pub status: String,
    /// The last interruption the counter recorded, if the card is not written yet.
    pub interrupted: String,
    pub serials: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/cards.html")]
struct CardsPage {
    chrome: Chrome,
    rows: Vec<CardRow>,
}

fn status(state: ApplicationState, interrupted: bool) -> &'static str {
    match state {
        ApplicationState::AwaitingOperator | ApplicationState::Verified => "ждёт подтверждения оператора",
        ApplicationState::Confirmed if interrupted => "запись прервана, можно продолжить с той же картой",
        ApplicationState::Confirmed => "готово к записи на карту",
        ApplicationState::Issuing => "идёт запись на карту",
        ApplicationState::Issued => "записано на карту",
        ApplicationState::Refused => "отказано",
        _ => "—",
    }
}

/// `GET /console/cards`.
pub(crate) async fn page(State(svc): State<Arc<Services>>, user: ConsoleUser) -> Response {
    let Some(store) = svc.ra_store.clone() else {
        return message(&svc, Some(&user), StatusCode::SERVICE_UNAVAILABLE, "Недоступно", "Нет хранилища РЦ.");
    };
    let loaded = tokio::task::spawn_blocking(move || {
        let query = ApplicationQuery { kind: Some(ApplicationKind::Card), limit: Some(LIMIT), ..Default::default() };
        let mut rows = Vec::new();
        for a in store.applications(&query)? {
            let events = store.application_events(Some(&a.number))?;
            // A release after the last claim is an interruption not yet resumed.
            let last = events.iter().rev().find(|e| matches!(e.step, Step::Release | Step::Claim | Step::Issue));
            let interrupted = match last {
                Some(e) if e.step == Step::Release && a.state == ApplicationState::Confirmed => {
                    e.details.get("error").and_then(|v| v.as_str()).unwrap_or("без пояснения").to_owned()
                }
                _ => String::new(),
            };
            rows.push(CardRow {
                number: a.number.to_string(),
                iin: a.iin.to_string(),
                state: a.state.to_string(),
                status: status(a.state, !interrupted.is_empty()).to_owned(),
                interrupted,
                serials: a.serials.iter().map(SerialNumber::to_hex).collect::<Vec<_>>().join(", "),
                updated: when(a.updated_at),
            });
        }
        Ok::<_, ca_core::store::StoreError>(rows)
    })
    .await;
    match loaded {
        Ok(Ok(rows)) => {
            render(StatusCode::OK, &CardsPage { chrome: Chrome::of(&svc, &user, "Персонализация карт", "cards"), rows })
        }
        Ok(Err(e)) => message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка хранилища", e.to_string()),
        Err(e) => message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка", e.to_string()),
    }
}
