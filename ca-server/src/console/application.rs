//! An application: the applicant, the state, the history with each step's time against its
//! budget, and the operator's actions. Each action is a form whose statement the page signs in
//! the signing client (SIGN key, the statement attached); the CMS goes to the administration
//! API's own handler ([`crate::api::admin`]), which authenticates the signer, checks the role,
//! the statement, the age and single use, and journals. The console adds its CSRF check in
//! front and shows the outcome.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine;
use ca_core::ra::{
    Application, ApplicationNumber, ApplicationState, Expectation, SignatureCheck, SignatureProblem, SignedPayload,
    SignerFacts, StoreRegistry,
};
use ca_core::serial::SerialNumber;

use super::{message, render, span, when, Chrome, ConsoleUser};
use crate::api::admin;
use crate::Services;

/// One event of the history.
pub(crate) struct EventRow {
    pub at: String,
    pub step: String,
    pub to: String,
    pub actor: String,
    pub took: String,
    pub budget: String,
    pub breached: bool,
    pub note: String,
}

/// What the page offers to sign: the action's path, its button, and the bytes to sign (base64).
pub(crate) struct Action {
    pub action: &'static str,
    pub label: &'static str,
    pub statement: String,
}

#[derive(Template)]
#[template(path = "console/application.html")]
struct ApplicationPage {
    chrome: Chrome,
    a: Application,
    applicant: String,
    serials: Vec<String>,
    events: Vec<EventRow>,
    actions: Vec<Action>,
    /// Refusing is offered while the application is open (the reason is typed, so the page
    /// builds that statement itself).
    can_refuse: bool,
}

/// The page only builds statements; nothing is verified through this.
struct StatementsOnly;

impl SignatureCheck for StatementsOnly {
    fn check(&self, _: &SignedPayload, _: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        Err(SignatureProblem::Unavailable("the console does not verify signatures itself".into()))
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What an operator may sign on `a` now, with the exact bytes the administration API expects.
fn actions(svc: &Services, store: &dyn ca_core::store::open::CaStore, a: &Application) -> Vec<Action> {
    let step = |action: &str| {
        // The same JSON the API parses (`{"action":…,"application":…}`).
        b64(&serde_json::to_vec(&serde_json::json!({ "action": action, "application": a.number.as_str() }))
            .unwrap_or_default())
    };
    let mut actions = Vec::new();
    if a.state == ApplicationState::AwaitingOperator {
        actions.push(Action {
            action: "verify",
            label: "Личность и форма проверены",
            statement: step("operator-verify"),
        });
    }
    if matches!(a.state, ApplicationState::AwaitingOperator | ApplicationState::Verified) {
        let registry = StoreRegistry(store);
        let ra = crate::api::applications::registration_authority(svc, store, &registry, &StatementsOnly);
        actions.push(Action {
            action: "confirm",
            label: "Подтвердить заявление",
            statement: b64(&ra.statement("operator-confirm", a).canonical()),
        });
    }
    actions
}

fn not_a_number(svc: &Services, user: &ConsoleUser, number: &str) -> Response {
    let text = format!("«{number}» — не номер заявления.");
    message(svc, Some(user), StatusCode::NOT_FOUND, "Заявление не найдено", text)
}

/// `GET /console/applications/{number}`.
pub(crate) async fn page(State(svc): State<Arc<Services>>, user: ConsoleUser, Path(number): Path<String>) -> Response {
    let Ok(number) = number.parse::<ApplicationNumber>() else {
        return not_a_number(&svc, &user, &number);
    };
    let Some(store) = svc.ra_store.clone() else {
        return message(&svc, Some(&user), StatusCode::SERVICE_UNAVAILABLE, "Недоступно", "Нет хранилища РЦ.");
    };
    let services = svc.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let Some(a) = store.application(&number)? else { return Ok(None) };
        let events = store.application_events(Some(&number))?;
        let person = store.registry_person(&a.iin)?;
        let actions = actions(&services, store.as_ref(), &a);
        Ok::<_, ca_core::store::StoreError>(Some((a, events, person, actions)))
    })
    .await;
    let (a, events, person, actions) = match loaded {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => {
            return message(&svc, Some(&user), StatusCode::NOT_FOUND, "Заявление не найдено", "Такого заявления нет.")
        }
        Ok(Err(e)) => {
            return message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка хранилища", e.to_string())
        }
        Err(e) => return message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка", e.to_string()),
    };
    let applicant = person.map_or_else(
        || "нет в реестре".to_owned(),
        |p| [Some(p.surname), Some(p.given_name), p.patronymic].into_iter().flatten().collect::<Vec<_>>().join(" "),
    );
    let events = events
        .iter()
        .map(|e| EventRow {
            at: when(e.at),
            step: e.step.name().to_owned(),
            to: e.to.to_string(),
            actor: format!("{}: {}", e.actor_role.name(), e.actor),
            took: span(e.at - e.started_at),
            budget: e.budget.map_or_else(|| "—".into(), |b| b.describe()),
            breached: e.breached,
            note: e
                .details
                .get("error")
                .or_else(|| e.details.get("reason"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    let page = ApplicationPage {
        chrome: Chrome::of(&svc, &user, format!("Заявление {}", a.number), "queue"),
        serials: a.serials.iter().map(SerialNumber::to_hex).collect(),
        can_refuse: !a.state.is_final() && !matches!(a.state, ApplicationState::Issuing | ApplicationState::Revoking),
        applicant,
        actions,
        events,
        a,
    };
    render(StatusCode::OK, &page)
}

/// A signed action's form (its CSRF token was checked by the guard).
#[derive(serde::Deserialize)]
pub(crate) struct SignedForm {
    /// Base64 of the CMS the signing client made.
    #[serde(default)]
    pub cms: String,
}

impl SignedForm {
    /// The CMS, or what to tell the operator.
    pub fn cms(&self) -> Result<Bytes, String> {
        let text: String = self.cms.chars().filter(|c| !c.is_whitespace()).collect();
        if text.is_empty() {
            return Err("подпись не получена: подпишите действие в программе для подписи".into());
        }
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(|_| "подпись повреждена (не base64)".into())
    }
}

/// What the administration API answered, in the operator's words.
pub(crate) async fn outcome(response: Response, done: &str) -> (bool, String) {
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status.is_success() {
        (true, done.to_owned())
    } else {
        let why = json["message"].as_str().unwrap_or("без пояснения");
        (false, format!("Не выполнено ({}): {why}", status.as_u16()))
    }
}

/// `POST /console/applications/{number}/{verify|confirm|refuse}`.
pub(crate) async fn act(
    State(svc): State<Arc<Services>>,
    Path((number, action)): Path<(String, String)>,
    user: ConsoleUser,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<SignedForm>,
) -> Response {
    let number = match number.parse::<ApplicationNumber>() {
        Ok(n) => n.to_string(),
        Err(_) => return not_a_number(&svc, &user, &number),
    };
    let back = Redirect::to(&format!("/console/applications/{number}")).into_response();
    let body = match form.cms() {
        Ok(b) => b,
        Err(why) => {
            user.flash(&svc, false, format!("Не выполнено: {why}."));
            return back;
        }
    };
    let s = State(svc.clone());
    let n = Path(number.clone());
    let (response, done) = match action.as_str() {
        "verify" => (admin::verify_identity(s, n, headers, extensions, body).await, "проверка личности отмечена"),
        "confirm" => (admin::confirm(s, n, headers, extensions, body).await, "заявление подтверждено"),
        "refuse" => (admin::refuse(s, n, headers, extensions, body).await, "в заявлении отказано"),
        _ => return message(&svc, Some(&user), StatusCode::NOT_FOUND, "Нет такого действия", action),
    };
    let (ok, text) = outcome(response, &format!("Заявление {number}: {done}.")).await;
    user.flash(&svc, ok, text);
    back
}
