//! Read-only health pages: the audit journal (the latest entries and the verification of its
//! whole hash chain, as `ca audit verify` walks it) and the publication of status (the last full
//! and delta CRL of the issuing CA: number, thisUpdate, nextUpdate, age; the OCSP responder's
//! certificate and its validity).

use std::collections::VecDeque;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ca_core::store::{AuditQuery, CrlKind, CrlRecord};
use time::OffsetDateTime;

use super::{message, render, span, when, Chrome, ConsoleUser};
use crate::Services;

/// How many of the latest journal entries the page shows.
const RECENT: usize = 50;

pub(crate) struct EntryRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: u64,
    head: String,
    problems: Vec<(i64, String)>,
    intact: bool,
    recent: Vec<EntryRow>,
}

/// `GET /console/audit`.
pub(crate) async fn audit(State(svc): State<Arc<Services>>, user: ConsoleUser) -> Response {
    let Some(store) = svc.store.clone() else {
        return message(&svc, Some(&user), StatusCode::SERVICE_UNAVAILABLE, "Недоступно", "Нет хранилища.");
    };
    let loaded = tokio::task::spawn_blocking(move || {
        let verification = store.verify_audit()?;
        // The journal streams oldest first: keep the last entries only.
        let mut recent = VecDeque::with_capacity(RECENT);
        store.audit_entries(&AuditQuery::default(), &mut |e| {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(e);
            Ok(())
        })?;
        Ok::<_, ca_core::store::StoreError>((verification, recent))
    })
    .await;
    let (verification, recent) = match loaded {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка хранилища", e.to_string())
        }
        Err(e) => return message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка", e.to_string()),
    };
    let page = AuditPage {
        chrome: Chrome::of(&svc, &user, "Журнал аудита", "audit"),
        entries: verification.entries,
        head: verification.head.clone(),
        intact: verification.is_intact(),
        problems: verification.problems.iter().map(|p| (p.seq, p.problem.clone())).collect(),
        recent: recent
            .into_iter()
            .rev()
            .map(|e| EntryRow {
                seq: e.seq,
                at: when(e.at),
                actor: e.event.actor,
                action: e.event.action,
                target: e.event.target.unwrap_or_default(),
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

/// One published CRL as the page shows it.
pub(crate) struct CrlRow {
    pub kind: &'static str,
    pub number: u64,
    pub base: String,
    pub this_update: String,
    pub next_update: String,
    pub age: String,
    /// Past its nextUpdate: relying parties will refuse it.
    pub stale: bool,
}

fn crl_row(kind: &'static str, crl: &CrlRecord, now: OffsetDateTime) -> CrlRow {
    CrlRow {
        kind,
        number: crl.number,
        base: crl.base_number.map(|n| n.to_string()).unwrap_or_default(),
        this_update: when(crl.this_update),
        next_update: when(crl.next_update),
        age: span(now - crl.this_update),
        stale: now > crl.next_update,
    }
}

/// The OCSP responder's certificate.
pub(crate) struct Responder {
    pub subject: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub left: String,
    pub valid: bool,
}

#[derive(Template)]
#[template(path = "console/health.html")]
struct HealthPage {
    chrome: Chrome,
    ca: String,
    crls: Vec<CrlRow>,
    ocsp: Option<Responder>,
    now: String,
}

fn responder(svc: &Services, now: OffsetDateTime) -> Option<Responder> {
    let responder = svc.ocsp.get()?;
    let tbs = &responder.certificate().tbs_certificate;
    let at = |t: &x509_cert::time::Time| OffsetDateTime::UNIX_EPOCH + t.to_unix_duration();
    let (not_before, not_after) = (at(&tbs.validity.not_before), at(&tbs.validity.not_after));
    Some(Responder {
        subject: tbs.subject.to_string(),
        serial: hex::encode(tbs.serial_number.as_bytes()),
        not_before: when(not_before),
        not_after: when(not_after),
        left: span(not_after - now),
        valid: not_before <= now && now <= not_after,
    })
}

/// `GET /console/health`.
pub(crate) async fn page(State(svc): State<Arc<Services>>, user: ConsoleUser) -> Response {
    let Some(store) = svc.store.clone() else {
        return message(&svc, Some(&user), StatusCode::SERVICE_UNAVAILABLE, "Недоступно", "Нет хранилища.");
    };
    let now = svc.clock.now();
    let ca = svc.ca_name.clone();
    let issuer = ca.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let full = store.last_crl(&issuer, None, CrlKind::Full)?;
        let delta = store.last_crl(&issuer, None, CrlKind::Delta)?;
        Ok::<_, ca_core::store::StoreError>((full, delta))
    })
    .await;
    let (full, delta) = match loaded {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка хранилища", e.to_string())
        }
        Err(e) => return message(&svc, Some(&user), StatusCode::INTERNAL_SERVER_ERROR, "Ошибка", e.to_string()),
    };
    let crls = [("полный", full), ("дельта", delta)]
        .into_iter()
        .filter_map(|(kind, crl)| crl.map(|c| crl_row(kind, &c, now)))
        .collect();
    let page = HealthPage {
        chrome: Chrome::of(&svc, &user, "CRL и OCSP", "health"),
        ca,
        crls,
        ocsp: responder(&svc, now),
        now: when(now),
    };
    render(StatusCode::OK, &page)
}
