//! Refused anonymous requests to the administration endpoints. Anyone can send junk there, so
//! a refusal that no valid signature of ours stands behind is not worth an audit row of its own
//! (3,000 junk requests were 3,000 rows): it is counted in `/metrics` and summed into one
//! `admin.refused.anonymous` journal entry per interval — written by the first refusal after the
//! interval is over, with the counts since the previous entry. Refusals of requests that a
//! certificate of this CA signed are journaled one by one, with the signer as actor.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;

use ca_core::store::AuditEvent;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// How often at most an aggregated entry is written.
pub const AGGREGATION_INTERVAL: Duration = Duration::minutes(1);
/// Distinct client addresses listed in one entry at most; beyond, only counted.
const MAX_LISTED_CLIENTS: usize = 100;

/// Why an anonymous request was refused (the `reason` label of the metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnonymousReason {
    /// No body.
    Empty,
    /// Not a CMS SignedData.
    NotCms,
    /// Not one signer whose signature verifies with a certificate that chains to this CA.
    NotSigned,
    /// Too many refused requests from this client: turned away before any verification.
    RateLimited,
}

impl AnonymousReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotCms => "not-cms",
            Self::NotSigned => "not-signed",
            Self::RateLimited => "rate-limited",
        }
    }
}

#[derive(Default)]
struct Pending {
    since: Option<OffsetDateTime>,
    by_reason: BTreeMap<AnonymousReason, u64>,
    clients: HashSet<IpAddr>,
    more_clients: bool,
}

/// Sums anonymous refusals into one journal entry per [`AGGREGATION_INTERVAL`].
#[derive(Default)]
pub struct AnonymousRefusals {
    pending: Mutex<Pending>,
}

impl AnonymousRefusals {
    /// Count one refusal at `now`; when the interval since the first uncounted refusal is over,
    /// the entry to append to the journal (the caller appends it).
    pub fn record(&self, reason: AnonymousReason, client: IpAddr, now: OffsetDateTime) -> Option<AuditEvent> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let since = *p.since.get_or_insert(now);
        *p.by_reason.entry(reason).or_default() += 1;
        if p.clients.len() < MAX_LISTED_CLIENTS {
            p.clients.insert(client);
        } else if !p.clients.contains(&client) {
            p.more_clients = true;
        }
        if now - since < AGGREGATION_INTERVAL {
            return None;
        }
        let done = std::mem::take(&mut *p);
        let count: u64 = done.by_reason.values().sum();
        let by_reason: BTreeMap<&str, u64> = done.by_reason.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        let mut clients: Vec<String> = done.clients.iter().map(IpAddr::to_string).collect();
        clients.sort();
        Some(AuditEvent::new("api", "admin.refused.anonymous").target("/api/v1/admin").details(serde_json::json!({
            "count": count,
            "by_reason": by_reason,
            "since": since.format(&Rfc3339).unwrap_or_default(),
            "until": now.format(&Rfc3339).unwrap_or_default(),
            "clients": clients,
            "more_clients": done.more_clients,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_summed_into_one_entry_per_interval() {
        let sums = AnonymousRefusals::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..1000 {
            let reason = if i % 2 == 0 { AnonymousReason::NotCms } else { AnonymousReason::Empty };
            assert!(sums.record(reason, a, t0 + Duration::milliseconds(i)).is_none());
        }
        let entry = sums.record(AnonymousReason::RateLimited, a, t0 + AGGREGATION_INTERVAL).expect("interval over");
        assert_eq!(entry.action, "admin.refused.anonymous");
        assert_eq!(entry.details["count"], 1001);
        assert_eq!(entry.details["by_reason"]["not-cms"], 500);
        assert_eq!(entry.details["by_reason"]["rate-limited"], 1);
        assert_eq!(entry.details["clients"], serde_json::json!(["192.0.2.1"]));
        // The next interval starts afresh.
        assert!(sums.record(AnonymousReason::Empty, a, t0 + AGGREGATION_INTERVAL * 2).is_none());
    }

    #[test]
    fn listed_clients_are_bounded() {
        let sums = AnonymousRefusals::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        for i in 0..10_000u32 {
            let _ = sums.record(AnonymousReason::NotCms, IpAddr::from(i.to_be_bytes()), t0);
        }
        let entry = sums.record(AnonymousReason::NotCms, "192.0.2.1".parse().unwrap(), t0 + Duration::hours(1));
        let entry = entry.unwrap();
        assert_eq!(entry.details["clients"].as_array().unwrap().len(), MAX_LISTED_CLIENTS);
        assert_eq!(entry.details["more_clients"], true);
    }
}
