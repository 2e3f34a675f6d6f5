//! Prometheus metrics of the portal: logins by method and outcome, lockouts, registrations by
//! outcome, and requests by route and status.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    /// (method, outcome) → count; outcome `success` or the failure reason.
    logins: Mutex<BTreeMap<(String, String), u64>>,
    registrations: Mutex<BTreeMap<String, u64>>,
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    lockouts: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default() += 1;
}

impl Metrics {
    pub fn login(&self, method: &str, outcome: &str) {
        bump(&self.logins, (method.to_owned(), outcome.to_owned()));
    }
    pub fn registration(&self, outcome: &str) {
        bump(&self.registrations, outcome.to_owned());
    }
    pub fn request(&self, route: &str, status: u16) {
        bump(&self.requests, (route.to_owned(), status));
    }
    /// An IIN/BIN reached the failure limit.
    pub fn lockout(&self) {
        self.lockouts.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP portal_logins_total Login attempts by method and outcome.");
        let _ = writeln!(out, "# TYPE portal_logins_total counter");
        for ((method, outcome), n) in self.logins.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "portal_logins_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP portal_password_lockouts_total Password logins locked after too many failures.");
        let _ = writeln!(out, "# TYPE portal_password_lockouts_total counter");
        let _ = writeln!(out, "portal_password_lockouts_total {}", self.lockouts.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP portal_registrations_total Registrations by outcome.");
        let _ = writeln!(out, "# TYPE portal_registrations_total counter");
        for (outcome, n) in self.registrations.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "portal_registrations_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP portal_http_requests_total Requests by route and status.");
        let _ = writeln!(out, "# TYPE portal_http_requests_total counter");
        for ((route, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "portal_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out
    }
}
