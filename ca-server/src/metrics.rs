//! Prometheus metrics: requests and latency per route and status, OCSP and time-stamp outcomes, the age of
//! the published CRLs (so an alert fires when publication stops), and the seconds left on the
//! CA's own certificates (so one fires before the OCSP responder's or a CA's expires).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Services;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// Counters shared by all requests.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
    /// (endpoint, verdict, first fatal reason) → count.
    verdicts: Mutex<BTreeMap<(&'static str, &'static str, String), u64>>,
    /// (signer: anonymous | known, reason) → refused administration requests.
    admin_refusals: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    pub ocsp_good: AtomicU64,
    pub ocsp_revoked: AtomicU64,
    pub ocsp_never_issued: AtomicU64,
    pub ocsp_malformed: AtomicU64,
    pub ocsp_unauthorized: AtomicU64,
    pub ocsp_internal_error: AtomicU64,
    /// Time-stamp responses by outcome: `granted` or the failInfo of a rejection.
    tsa: Mutex<BTreeMap<&'static str, u64>>,
    /// tryLater: the read replica was too far behind (`[store] when_replica_behind = "try-later"`).
    pub ocsp_try_later: AtomicU64,
    /// Reloads of renewed keys that failed (the running keys stayed).
    pub reload_failures: AtomicU64,
    /// The RA worker's counters, when it runs inside the server (`ca serve --worker`).
    pub worker: std::sync::OnceLock<std::sync::Arc<ca_core::ra::worker::WorkerMetrics>>,
}

impl Metrics {
    fn record(&self, route: &str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteStats::default());
        }
        let Some(stats) = routes.get_mut(route) else { return };
        *stats.by_status.entry(status).or_default() += 1;
        stats.count += 1;
        stats.sum_seconds += seconds;
        for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Count a verification verdict, labelled with the first fatal reason when invalid.
    pub fn count_verdict(&self, endpoint: &'static str, valid: bool, first_reason: Option<ca_core::cms::Reason>) {
        let reason = match (valid, first_reason) {
            (true, _) => String::new(),
            (false, Some(r)) => format!("{r:?}"),
            (false, None) => "Unknown".into(),
        };
        let verdict = if valid { "valid" } else { "invalid" };
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        *verdicts.entry((endpoint, verdict, reason)).or_default() += 1;
    }

    /// Count one time-stamp response (every stamp and every refusal).
    pub fn count_tsa(&self, outcome: &ca_core::tsa::Outcome) {
        let label = match outcome {
            ca_core::tsa::Outcome::Granted => "granted",
            ca_core::tsa::Outcome::Rejected(fail) => fail.name(),
        };
        *self.tsa.lock().unwrap_or_else(|p| p.into_inner()).entry(label).or_default() += 1;
    }

    /// The number of time-stamp responses with this outcome label so far.
    pub fn tsa_count(&self, label: &str) -> u64 {
        self.tsa.lock().unwrap_or_else(|p| p.into_inner()).get(label).copied().unwrap_or(0)
    }

    /// Count a refused administration request; `signer` is `anonymous` or `known`.
    pub fn count_admin_refusal(&self, signer: &'static str, reason: &'static str) {
        let mut refusals = self.admin_refusals.lock().unwrap_or_else(|p| p.into_inner());
        *refusals.entry((signer, reason)).or_default() += 1;
    }

    pub fn count_ocsp(&self, outcome: &ca_core::ocsp::Outcome) {
        use ca_core::ocsp::Outcome;
        match *outcome {
            Outcome::Answered { good, revoked, never_issued } => {
                self.ocsp_good.fetch_add(good as u64, Ordering::Relaxed);
                self.ocsp_revoked.fetch_add(revoked as u64, Ordering::Relaxed);
                self.ocsp_never_issued.fetch_add(never_issued as u64, Ordering::Relaxed);
            }
            Outcome::Malformed => _ = self.ocsp_malformed.fetch_add(1, Ordering::Relaxed),
            Outcome::Unauthorized => _ = self.ocsp_unauthorized.fetch_add(1, Ordering::Relaxed),
            Outcome::InternalError => _ = self.ocsp_internal_error.fetch_add(1, Ordering::Relaxed),
            Outcome::TryLater => _ = self.ocsp_try_later.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Middleware: time and count every request by its route pattern (never the raw path, which
/// for OCSP GET carries the request itself).
pub(crate) async fn track(State(services): State<Arc<Services>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    services.metrics.record(route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

pub(crate) async fn render(State(services): State<Arc<Services>>) -> Response {
    let m = &services.metrics;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP ca_http_requests_total HTTP requests by route and status.");
    let _ = writeln!(out, "# TYPE ca_http_requests_total counter");
    let routes = m.routes.lock().unwrap_or_else(|p| p.into_inner());
    for (route, stats) in routes.iter() {
        for (status, n) in &stats.by_status {
            let _ = writeln!(out, "ca_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
    }
    let _ = writeln!(out, "# HELP ca_http_request_duration_seconds Time to answer a request.");
    let _ = writeln!(out, "# TYPE ca_http_request_duration_seconds histogram");
    for (route, stats) in routes.iter() {
        for (bucket, bound) in stats.buckets.iter().zip(BUCKETS) {
            let _ =
                writeln!(out, "ca_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {bucket}");
        }
        let _ =
            writeln!(out, "ca_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", stats.count);
        let _ = writeln!(out, "ca_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", stats.sum_seconds);
        let _ = writeln!(out, "ca_http_request_duration_seconds_count{{route=\"{route}\"}} {}", stats.count);
    }
    drop(routes);
    let _ = writeln!(out, "# HELP ca_ocsp_responses_total OCSP certificate statuses and error responses.");
    let _ = writeln!(out, "# TYPE ca_ocsp_responses_total counter");
    for (label, counter) in [
        ("good", &m.ocsp_good),
        ("revoked", &m.ocsp_revoked),
        ("never_issued", &m.ocsp_never_issued),
        ("malformed_request", &m.ocsp_malformed),
        ("unauthorized", &m.ocsp_unauthorized),
        ("internal_error", &m.ocsp_internal_error),
        ("try_later", &m.ocsp_try_later),
    ] {
        let _ = writeln!(out, "ca_ocsp_responses_total{{outcome=\"{label}\"}} {}", counter.load(Ordering::Relaxed));
    }
    let _ = writeln!(out, "# HELP ca_tsa_responses_total Time-stamp responses: granted, or rejected by failInfo.");
    let _ = writeln!(out, "# TYPE ca_tsa_responses_total counter");
    for (outcome, n) in m.tsa.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(out, "ca_tsa_responses_total{{outcome=\"{outcome}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP ca_verifications_total Verification verdicts by endpoint, verdict and first reason.");
    let _ = writeln!(out, "# TYPE ca_verifications_total counter");
    for ((endpoint, verdict, reason), n) in m.verdicts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(
            out,
            "ca_verifications_total{{endpoint=\"{endpoint}\",verdict=\"{verdict}\",reason=\"{reason}\"}} {n}"
        );
    }
    let _ = writeln!(out, "# HELP ca_admin_refusals_total Refused administration requests by signer and reason.");
    let _ = writeln!(out, "# TYPE ca_admin_refusals_total counter");
    for ((signer, reason), n) in m.admin_refusals.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(out, "ca_admin_refusals_total{{signer=\"{signer}\",reason=\"{reason}\"}} {n}");
    }
    if let Some(verifier) = &services.verifier {
        let stats = verifier.path_cache_stats();
        let _ = writeln!(out, "# HELP ca_path_cache_lookups_total Validated-path cache look-ups by result.");
        let _ = writeln!(out, "# TYPE ca_path_cache_lookups_total counter");
        let _ = writeln!(out, "ca_path_cache_lookups_total{{result=\"hit\"}} {}", stats.hits);
        let _ = writeln!(out, "ca_path_cache_lookups_total{{result=\"miss\"}} {}", stats.misses);
        let _ = writeln!(out, "# HELP ca_path_cache_entries Certificates whose validated path is remembered.");
        let _ = writeln!(out, "# TYPE ca_path_cache_entries gauge");
        let _ = writeln!(out, "ca_path_cache_entries {}", stats.entries);
    }
    let now = services.clock.now();
    let _ =
        writeln!(out, "# HELP ca_certificate_expiry_seconds Seconds until each of the CA's own certificates expires.");
    let _ = writeln!(out, "# TYPE ca_certificate_expiry_seconds gauge");
    for cert in services.own_certificates.get().iter() {
        let _ = writeln!(
            out,
            "ca_certificate_expiry_seconds{{role=\"{}\",name=\"{}\"}} {}",
            cert.role.as_str(),
            cert.name,
            cert.seconds_left(now)
        );
    }
    let _ =
        writeln!(out, "# HELP ca_reload_failures_total Reloads of renewed keys that failed (the running keys stayed).");
    let _ = writeln!(out, "# TYPE ca_reload_failures_total counter");
    let _ = writeln!(out, "ca_reload_failures_total {}", m.reload_failures.load(Ordering::Relaxed));
    if let Some(worker) = m.worker.get() {
        out.push_str(&worker.render());
    }
    let _ = writeln!(out, "# HELP ca_crl_age_seconds Seconds since each published CRL file was written.");
    let _ = writeln!(out, "# TYPE ca_crl_age_seconds gauge");
    if let Ok(entries) = std::fs::read_dir(&services.crl_dir) {
        let mut files: Vec<(String, f64)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let modified = e.metadata().ok()?.modified().ok()?;
                let age = SystemTime::now().duration_since(modified).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                name.ends_with(".crl").then_some((name, age))
            })
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, age) in files {
            let _ = writeln!(out, "ca_crl_age_seconds{{file=\"{name}\"}} {age:.0}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
