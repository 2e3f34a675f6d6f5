//! The queue: open applications by state with the deadline of the step each waits for, the
//! overdue ones first — `ca report sla --open` as a page, from the same `ca_core` functions
//! ([`ca_core::ra::regulation::waiting_for`], [`ca_core::ra::regulation::overdue`]).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ca_core::ra::regulation::{overdue, waiting_for, Timing};
use ca_core::ra::store::ApplicationQuery;
use ca_core::ra::{Application, ApplicationEvent, ApplicationState};
use time::OffsetDateTime;

use super::{message, render, span, when, Chrome, ConsoleUser};
use crate::Services;

/// One open application in the queue.
pub(crate) struct Row {
    pub number: String,
    pub kind: String,
    pub channel: String,
    pub state: String,
    pub waiting_for: String,
    pub since: String,
    pub budget: String,
    pub deadline: String,
    /// Past the deadline of the step it waits for.
    pub overdue: bool,
    /// «просрочено на 12 мин» / «осталось 3 ч 05 мин».
    pub left: String,
    /// Steps already done late.
    pub breaches: usize,
    /// For ordering: overdue first, then by deadline, then those without a running clock.
    order: (bool, Option<OffsetDateTime>, OffsetDateTime),
}

/// The open applications (all, or in `state`), overdue first, at `now`.
pub(crate) fn rows(
    timing: &Timing,
    applications: &[Application],
    events: &HashMap<String, Vec<ApplicationEvent>>,
    now: OffsetDateTime,
) -> Vec<Row> {
    let mut rows: Vec<Row> = applications
        .iter()
        .filter(|a| !a.state.is_final())
        .map(|a| {
            let events = events.get(a.number.as_str()).map_or(&[][..], Vec::as_slice);
            let late = overdue(timing, a, events, now);
            let clock = waiting_for(a, events).and_then(|(step, since)| {
                let budget = timing.budget(step, a.kind, a.channel)?;
                Some((step, since, budget, timing.deadline(budget, since)))
            });
            let deadline = clock.map(|(_, _, _, d)| d);
            Row {
                number: a.number.to_string(),
                kind: a.kind.to_string(),
                channel: a.channel.to_string(),
                state: a.state.to_string(),
                waiting_for: clock.map_or_else(|| "—".into(), |(step, ..)| step.name().to_owned()),
                since: clock.map_or_else(|| "—".into(), |(_, since, ..)| when(since)),
                budget: clock.map_or_else(|| "—".into(), |(_, _, budget, _)| budget.describe()),
                deadline: deadline.map_or_else(|| "—".into(), when),
                overdue: late.is_some(),
                left: match deadline {
                    Some(d) if d < now => format!("просрочено на {}", span(now - d)),
                    Some(d) => format!("осталось {}", span(d - now)),
                    None => "срок не идёт".into(),
                },
                breaches: events.iter().filter(|e| e.breached).count(),
                order: (late.is_none(), deadline, a.created_at),
            }
        })
        .collect();
    // `None` sorts before `Some`: put the applications without a clock last among the on-time.
    rows.sort_by(|x, y| {
        let key = |r: &Row| (r.order.0, r.order.1.is_none(), r.order.1, r.order.2);
        key(x).cmp(&key(y))
    });
    rows
}

#[derive(Template)]
#[template(path = "console/queue.html")]
struct QueuePage {
    chrome: Chrome,
    rows: Vec<Row>,
    overdue: usize,
    states: Vec<(String, bool)>,
    now: String,
}

#[derive(serde::Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    state: String,
}

/// The open states an operator filters by.
const OPEN: [ApplicationState; 6] = [
    ApplicationState::AwaitingHead,
    ApplicationState::AwaitingOperator,
    ApplicationState::Verified,
    ApplicationState::Confirmed,
    ApplicationState::Issuing,
    ApplicationState::Revoking,
];

/// `GET /console[?state=…]`.
pub(crate) async fn page(
    State(svc): State<Arc<Services>>,
    user: ConsoleUser,
    Query(filter): Query<Filter>,
) -> Response {
    let Some(store) = svc.ra_store.clone() else {
        return message(&svc, Some(&user), StatusCode::SERVICE_UNAVAILABLE, "Очередь недоступна", "Нет хранилища РЦ.");
    };
    let state = match filter.state.as_str() {
        "" => None,
        s => match ApplicationState::parse(s).filter(|s| !s.is_final()) {
            Some(s) => Some(s),
            None => {
                let text = format!("Нет открытого состояния «{s}».");
                return message(&svc, Some(&user), StatusCode::BAD_REQUEST, "Неверный фильтр", text);
            }
        },
    };
    let now = svc.clock.now();
    let loaded = tokio::task::spawn_blocking(move || {
        let applications = store.applications(&ApplicationQuery { state, ..Default::default() })?;
        let mut events: HashMap<String, Vec<ApplicationEvent>> = HashMap::new();
        for e in store.application_events(None)? {
            events.entry(e.number.to_string()).or_default().push(e);
        }
        Ok::<_, ca_core::store::StoreError>(rows(&store.timing(), &applications, &events, now))
    })
    .await;
    let rows = match loaded {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            return message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка хранилища", e.to_string())
        }
        Err(e) => return message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка", e.to_string()),
    };
    let states = OPEN.iter().map(|s| (s.to_string(), state == Some(*s))).collect();
    let page = QueuePage {
        chrome: Chrome::of(&svc, &user, "Очередь заявлений", "queue"),
        overdue: rows.iter().filter(|r| r.overdue).count(),
        rows,
        states,
        now: when(now),
    };
    render(StatusCode::OK, &page)
}
