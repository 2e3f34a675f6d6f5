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
    /// (channel, outcome) → count of phone binding attempts.
    phone: Mutex<BTreeMap<(String, String), u64>>,
    /// (channel, within the 10-minute budget) → bindings.
    phone_service: Mutex<BTreeMap<(String, bool), u64>>,
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
    /// A phone binding attempt: `outcome` is `code-sent`, `bound`, `changed` or the refusal.
    pub fn phone_binding(&self, channel: &str, outcome: &str) {
        bump(&self.phone, (channel.to_owned(), outcome.to_owned()));
    }
    /// A binding done, within its service-time budget or not.
    pub fn phone_service_time(&self, channel: &str, within_budget: bool) {
        bump(&self.phone_service, (channel.to_owned(), within_budget));
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
        let _ =
            writeln!(out, "# HELP portal_phone_binding_attempts_total Phone binding attempts by channel and outcome.");
        let _ = writeln!(out, "# TYPE portal_phone_binding_attempts_total counter");
        for ((channel, outcome), n) in self.phone.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ =
                writeln!(out, "portal_phone_binding_attempts_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP portal_phone_bindings_total Bindings by channel and whether they met the 10-minute service budget."
        );
        let _ = writeln!(out, "# TYPE portal_phone_bindings_total counter");
        for ((channel, within), n) in self.phone_service.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ =
                writeln!(out, "portal_phone_bindings_total{{channel=\"{channel}\",within_budget=\"{within}\"}} {n}");
        }
        out
    }
}
