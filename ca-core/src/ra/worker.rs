//! The automatic worker: what an operator would otherwise do by hand after a confirmation.
//!
//! One round ([`Worker::round`]):
//! 1. recovers applications (of any kind) a dead worker left `issuing`/`revoking` once their
//!    claim is stale (what `ca application recover` does; a key-store issuance made into another
//!    directory than the worker's is reported, for `ca application recover --p12-dir`);
//! 2. carries out confirmed applications that need nobody at a counter: repeat issuance,
//!    revocations (signed by the applicant, or confirmed by an operator at a counter), and new
//!    applications a State Corporation operator confirmed (issued within a working day), and
//!    new applications that came with the applicant's own keys (his certificate requests);
//! 3. publishes a delta CRL after revocations (at most every `delta_after_revocation`), a delta
//!    on its own schedule, and a full CRL on its schedule;
//! 4. delivers the due notices of the outbox.
//!
//! Several workers may run on one store: every application is claimed (`confirmed` →
//! `issuing`/`revoking` in one `BEGIN IMMEDIATE` transaction) before anything is signed, so
//! a worker that loses the race skips the job, and no job is done twice. New certificates
//! are the worker's when the application carries the applicant's own keys (his certificate
//! requests, sent with it); without them (keys made on the applicant's computer at issuance,
//! flow 1) and for cards (flow 3) they need the applicant or the card at the counter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spki::SubjectPublicKeyInfoOwned;
use time::{Duration, OffsetDateTime};

use super::application::{Application, ApplicationKind, ApplicationState};
use super::outbox::{send_due, Transport};
use super::recover::KeyStoreDelivery;
use super::service::RegistrationAuthority;
use super::store::ApplicationQuery;
use super::RaError;
use crate::issuer::Issuer;

/// The public keys of a repeat issuance and where their key stores go.
pub struct NewKeys<'k> {
    pub auth: SubjectPublicKeyInfoOwned,
    pub sign: SubjectPublicKeyInfoOwned,
    pub delivery: Box<dyn KeyStoreDelivery + 'k>,
}

/// Where the keys of a repeat issuance come from (the applicant's requests, or keys generated
/// for him); implemented by the caller, which alone may hold private keys.
pub trait RepeatKeys {
    fn keys_for(&self, application: &Application) -> Result<NewKeys<'_>, String>;
    /// Where interrupted issuances delivered their key stores, for recovery (no keys needed).
    fn recovery(&self) -> Box<dyn KeyStoreDelivery + '_>;
}

/// When CRLs were last published (as the store recorded them), and whether certificates were
/// revoked since the last delta (by this worker, another one, or an operator's `ca revoke`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrlTimes {
    pub full: Option<OffsetDateTime>,
    pub delta: Option<OffsetDateTime>,
    pub revocations_pending: bool,
}

/// Publishes this CA's CRLs (the caller holds the CA key).
pub trait CrlPublication {
    fn last_published(&self) -> Result<CrlTimes, String>;
    /// `full`: a full CRL and a delta on it; otherwise a delta on the last full CRL. Returns
    /// what was published, for the log.
    fn publish(&self, full: bool) -> Result<Vec<String>, String>;
}

/// The worker's schedule (`[worker]` in ca.toml).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Seconds between rounds when there was nothing to do.
    pub poll_seconds: u32,
    /// A delta CRL follows revocations, at most this often (minutes; 0: after every round
    /// that revoked).
    pub delta_after_revocation_minutes: u32,
    /// A delta CRL at least this often (minutes; 0: only after revocations).
    pub delta_every_minutes: u32,
    /// A full CRL this often (minutes; 0: never from the worker).
    pub full_every_minutes: u32,
    /// A claim older than this is a dead worker's (minutes; longer than the longest issuance).
    pub stale_minutes: u32,
    /// At most this many applications and notices per round.
    pub batch: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            poll_seconds: 10,
            delta_after_revocation_minutes: 5,
            delta_every_minutes: 30,
            full_every_minutes: 12 * 60,
            stale_minutes: 10,
            batch: 100,
        }
    }
}

impl WorkerSettings {
    /// A worker that never pauses would hammer the store, one that takes nothing does nothing,
    /// and one that thinks a claim is stale at once would recover (revoke) the jobs other
    /// workers are still carrying out.
    pub fn validate(&self) -> Result<(), String> {
        if self.poll_seconds == 0 {
            return Err("[worker] poll_seconds = 0: the worker would never pause".into());
        }
        if self.batch == 0 {
            return Err("[worker] batch = 0: the worker would take no job".into());
        }
        if self.stale_minutes == 0 {
            return Err(
                "[worker] stale_minutes = 0: running jobs would be recovered; make it longer than the longest issuance"
                    .into(),
            );
        }
        Ok(())
    }
}

fn minutes(m: u32) -> Duration {
    Duration::minutes(i64::from(m))
}

/// Counters of everything the worker did since it started, for `/metrics` and the log.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    pub rounds: AtomicU64,
    pub issued: AtomicU64,
    pub revoked: AtomicU64,
    pub recovered: AtomicU64,
    /// Jobs another worker had claimed first.
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    pub crls_published: AtomicU64,
    pub notices_sent: AtomicU64,
    pub notices_failed: AtomicU64,
    /// Unix time of the end of the last round.
    pub last_round: AtomicU64,
}

impl WorkerMetrics {
    /// Prometheus text exposition of the counters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters: [(&str, &AtomicU64, &str); 9] = [
            ("rounds", &self.rounds, "Rounds of the RA worker"),
            ("issued", &self.issued, "Applications issued by the RA worker"),
            ("revoked", &self.revoked, "Revocation applications carried out by the RA worker"),
            ("recovered", &self.recovered, "Stale claims recovered by the RA worker"),
            ("skipped", &self.skipped, "Jobs the RA worker found claimed by another worker"),
            ("failed", &self.failed, "Jobs of the RA worker that failed (retried later)"),
            ("crls_published", &self.crls_published, "CRLs published by the RA worker"),
            ("notices_sent", &self.notices_sent, "Notices delivered by the RA worker"),
            ("notices_failed", &self.notices_failed, "Failed notice deliveries (retried later)"),
        ];
        for (name, value, help) in counters {
            out.push_str(&format!(
                "# HELP ca_worker_{name}_total {help}\n# TYPE ca_worker_{name}_total counter\nca_worker_{name}_total {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!(
            "# HELP ca_worker_last_round_timestamp_seconds End of the RA worker's last round\n\
             # TYPE ca_worker_last_round_timestamp_seconds gauge\nca_worker_last_round_timestamp_seconds {}\n",
            self.last_round.load(Ordering::Relaxed)
        ));
        out
    }
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Round {
    pub recovered: Vec<String>,
    pub issued: Vec<String>,
    pub revoked: Vec<String>,
    /// Claimed by another worker first.
    pub skipped: Vec<String>,
    /// `number: error`; the application stays confirmed and is tried again next round.
    pub failed: Vec<String>,
    /// `number: why`: confirmed, but left for the staff (a repeat without the applicant's own
    /// keys, and this worker does not generate keys); nothing was claimed.
    pub held: Vec<String>,
    pub crls: Vec<String>,
    pub notices_sent: u32,
    pub notices_failed: u32,
    /// The round stopped early because a stop was asked for.
    pub stopped: bool,
}

impl Round {
    /// Whether the round found work (the next round follows without a pause).
    pub fn busy(&self) -> bool {
        !(self.recovered.is_empty() && self.issued.is_empty() && self.revoked.is_empty())
    }
}

/// The automatic worker over one store.
pub struct Worker<'a> {
    pub ra: RegistrationAuthority<'a>,
    pub issuer: &'a Issuer<'a>,
    pub keys: &'a dyn RepeatKeys,
    pub crls: Option<&'a dyn CrlPublication>,
    pub transport: Option<&'a dyn Transport>,
    pub settings: WorkerSettings,
    /// This worker's name in events and the audit journal (`worker:<host>:<pid>`).
    pub actor: &'a str,
    pub metrics: &'a WorkerMetrics,
    /// Set from a signal handler: the current job is finished, then the worker stops.
    pub stop: &'a AtomicBool,
}

impl Worker<'_> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Applications in `state`, oldest first: of every kind (recovery), or of the kinds the
    /// worker carries out — and the new applications a State Corporation operator confirmed,
    /// which the information system issues by itself (document 004, section 8).
    fn queue(&self, state: ApplicationState, every_kind: bool) -> Result<Vec<Application>, RaError> {
        use ApplicationKind as K;
        let query = ApplicationQuery { state: Some(state), ..Default::default() };
        let mut list = Vec::new();
        for a in self.ra.store.applications(&query)? {
            let the_workers = every_kind
                || matches!(a.kind, K::Repeat | K::RevokeSigned | K::RevokeCounter)
                || (matches!(a.kind, K::NewIndividual | K::NewEmployee)
                    && (a.channel == super::Channel::StateCorporation
                        // The applicant's own keys came with the application: nothing
                        // is left that needs him or the counter.
                        || !self.ra.store.application_keys(&a.number)?.is_empty()));
            if the_workers {
                list.push(a);
            }
        }
        list.reverse();
        list.truncate(self.settings.batch as usize);
        Ok(list)
    }

    /// One round: recover, carry out, publish CRLs, deliver notices.
    pub fn round(&self) -> Result<Round, RaError> {
        let mut round = Round::default();
        self.recover_stale(&mut round)?;
        for a in self.queue(ApplicationState::Confirmed, false)? {
            if self.stopping() {
                round.stopped = true;
                break;
            }
            self.carry_out(&a, &mut round);
        }
        if let Some(crls) = self.crls {
            self.publish_crls(crls, &mut round);
        }
        if let Some(transport) = self.transport {
            let sent = send_due(self.ra.store, transport, self.ra.clock, self.settings.batch)?;
            for f in &sent.failures {
                tracing::warn!(failure = %f, "notice not delivered; retried later");
            }
            round.notices_sent = sent.sent;
            round.notices_failed = sent.failed;
        }
        let m = self.metrics;
        m.rounds.fetch_add(1, Ordering::Relaxed);
        m.issued.fetch_add(round.issued.len() as u64, Ordering::Relaxed);
        m.revoked.fetch_add(round.revoked.len() as u64, Ordering::Relaxed);
        m.recovered.fetch_add(round.recovered.len() as u64, Ordering::Relaxed);
        m.skipped.fetch_add(round.skipped.len() as u64, Ordering::Relaxed);
        m.failed.fetch_add(round.failed.len() as u64, Ordering::Relaxed);
        m.crls_published.fetch_add(round.crls.len() as u64, Ordering::Relaxed);
        m.notices_sent.fetch_add(u64::from(round.notices_sent), Ordering::Relaxed);
        m.notices_failed.fetch_add(u64::from(round.notices_failed), Ordering::Relaxed);
        let now = self.ra.clock.now().unix_timestamp();
        m.last_round.store(u64::try_from(now).unwrap_or_default(), Ordering::Relaxed);
        Ok(round)
    }

    /// Rounds until a stop is asked for, pausing `poll_seconds` after a round without work.
    /// A failing round (the store unreachable) is logged and retried after the pause.
    pub fn run(&self) {
        tracing::info!(actor = self.actor, "RA worker started");
        while !self.stopping() {
            let busy = match self.round() {
                Ok(r) => {
                    log_round(&r);
                    r.busy()
                }
                Err(e) => {
                    tracing::error!(error = %e, "RA worker round failed");
                    false
                }
            };
            if !busy {
                self.pause();
            }
        }
        tracing::info!(actor = self.actor, "RA worker stopped");
    }

    fn pause(&self) {
        let step = std::time::Duration::from_millis(100);
        let mut left = std::time::Duration::from_secs(u64::from(self.settings.poll_seconds));
        while !self.stopping() && !left.is_zero() {
            let nap = left.min(step);
            std::thread::sleep(nap);
            left -= nap;
        }
    }

    fn recover_stale(&self, round: &mut Round) -> Result<(), RaError> {
        let stale = minutes(self.settings.stale_minutes);
        let now = self.ra.clock.now();
        for state in [ApplicationState::Issuing, ApplicationState::Revoking] {
            for a in self.queue(state, true)? {
                if self.stopping() {
                    round.stopped = true;
                    return Ok(());
                }
                if now - a.updated_at < stale {
                    continue;
                }
                let delivery = self.keys.recovery();
                match self.ra.recover(&a.number, self.actor, stale, delivery.as_ref()) {
                    Ok(done) => {
                        tracing::info!(application = %a.number, completed = done.completed,
                            revoked = done.revoked.len(), "recovered a stale claim");
                        round.recovered.push(a.number.to_string());
                    }
                    // Another worker recovered it first, or its worker came back.
                    Err(RaError::InProgress(_) | RaError::WrongState { .. }) => {
                        round.skipped.push(a.number.to_string())
                    }
                    Err(e) => {
                        tracing::error!(application = %a.number, error = %e, "recovery failed");
                        round.failed.push(format!("{}: {e}", a.number));
                    }
                }
            }
        }
        Ok(())
    }

    /// Carry out one confirmed application; a lost race is a skip, a failure is logged (the RA
    /// gave the claim back, so the next round retries).
    fn carry_out(&self, a: &Application, round: &mut Round) {
        let number = a.number.to_string();
        let outcome = if a.kind.is_revocation() {
            self.ra.revoke(&a.number, self.actor).map(|_| false)
        } else {
            match self.ra.store.application_keys(&a.number) {
                // The applicant sent his own keys (CSRs): certificates only, nothing generated here.
                Ok(own) if !own.is_empty() => {
                    self.ra.issue_for_applicant_keys(&a.number, self.issuer, self.actor).map(|_| true)
                }
                Ok(_) => match self.keys.keys_for(a) {
                    Ok(keys) => self
                        .ra
                        .issue(&a.number, self.issuer, keys.auth, keys.sign, self.actor, keys.delivery.as_ref())
                        .map(|_| true),
                    Err(why) => {
                        tracing::warn!(application = %number, reason = %why, "left for the staff");
                        round.held.push(format!("{number}: {why}"));
                        return;
                    }
                },
                Err(e) => Err(RaError::Store(e)),
            }
        };
        match outcome {
            Ok(issued) => {
                tracing::info!(application = %number, kind = %a.kind, "carried out");
                if issued {
                    round.issued.push(number)
                } else {
                    round.revoked.push(number)
                }
            }
            Err(RaError::InProgress(_) | RaError::AlreadyDone(_)) => {
                tracing::debug!(application = %number, "claimed by another worker");
                round.skipped.push(number);
            }
            Err(RaError::WrongState { .. }) => {
                // Refused or carried out between the listing and the claim.
                round.skipped.push(number);
            }
            Err(e) => {
                tracing::error!(application = %number, error = %e, "carrying out failed; retried next round");
                round.failed.push(format!("{number}: {e}"));
            }
        }
    }

    fn publish_crls(&self, crls: &dyn CrlPublication, round: &mut Round) {
        let now = self.ra.clock.now();
        let s = &self.settings;
        let times = match crls.last_published() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the CRL schedule");
                round.failed.push(format!("crl: {e}"));
                return;
            }
        };
        let since = |t: Option<OffsetDateTime>| t.map_or(Duration::MAX, |t| now - t);
        let full_due = s.full_every_minutes > 0 && since(times.full) >= minutes(s.full_every_minutes);
        let delta_due = (times.revocations_pending && since(times.delta) >= minutes(s.delta_after_revocation_minutes))
            || (s.delta_every_minutes > 0 && since(times.delta) >= minutes(s.delta_every_minutes));
        if !(full_due || delta_due) {
            return;
        }
        match crls.publish(full_due) {
            Ok(published) => {
                for p in &published {
                    tracing::info!(crl = %p, "CRL published");
                }
                round.crls.extend(published);
            }
            Err(e) => {
                tracing::error!(error = %e, "CRL publication failed; retried next round");
                round.failed.push(format!("crl: {e}"));
            }
        }
    }
}

/// One line per round that did something.
pub fn log_round(r: &Round) {
    if r.busy() || !r.crls.is_empty() || r.notices_sent > 0 || !r.failed.is_empty() {
        tracing::info!(
            issued = r.issued.len(),
            revoked = r.revoked.len(),
            recovered = r.recovered.len(),
            skipped = r.skipped.len(),
            failed = r.failed.len(),
            crls = r.crls.len(),
            notices = r.notices_sent,
            "RA worker round"
        );
    }
}
