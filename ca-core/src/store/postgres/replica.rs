//! Reading status from a streaming replica, and saying how current it is.
//!
//! A replica replays the primary's WAL in commit order, so everything committed on the primary
//! before some instant is on the replica once its replay position has passed the primary's WAL
//! insert position of that instant. The store probes both (at most once per
//! [`ReplicaPolicy::probe_every`]): the primary's `pg_current_wal_insert_lsn()` and `now()`, then
//! the replica's `pg_last_wal_replay_lsn()`. If the replica has replayed up to that position, its
//! data is complete as of the primary's `now()` of the probe; if not, as of the commit time of the
//! last transaction it replayed (`pg_last_xact_replay_timestamp()`). Replay only moves forward,
//! so a status read after the probe is at least that complete: that time is what OCSP puts in
//! `thisUpdate`. The lag is the primary's time minus that time (both on the primary's clock);
//! over [`ReplicaPolicy::max_lag`] the read goes to the primary, or is refused
//! ([`StoreError::ReplicaBehind`], OCSP `tryLater`) when configured so.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::pool::Pool;
use super::{Context, PostgresStore};
use crate::store::{StatusAsOf, StoreError};

/// What to do when the replica is further behind than `[store] max_replica_lag_secs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenReplicaBehind {
    /// Read the primary instead (the default: answers stay current, the primary takes the load).
    #[default]
    Primary,
    /// Refuse the read: OCSP answers `tryLater`, so the primary is never loaded by reads.
    TryLater,
}

/// How reads use the replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaPolicy {
    /// The most a status read from the replica may be behind the primary.
    pub max_lag: Duration,
    pub when_behind: WhenReplicaBehind,
    /// How long one probe of the replica's position is used before the next.
    pub probe_every: Duration,
}

impl ReplicaPolicy {
    /// `[store] max_replica_lag_secs` when not given.
    pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(5);
    /// Two small queries per second per server process.
    pub const DEFAULT_PROBE_EVERY: Duration = Duration::from_secs(1);
}

impl Default for ReplicaPolicy {
    fn default() -> Self {
        Self {
            max_lag: Self::DEFAULT_MAX_LAG,
            when_behind: WhenReplicaBehind::Primary,
            probe_every: Self::DEFAULT_PROBE_EVERY,
        }
    }
}

/// What one probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaProbe {
    /// The replica holds everything the primary committed before this time (whole seconds,
    /// rounded down); `None` when it has replayed nothing that tells.
    pub complete_as_of: Option<OffsetDateTime>,
    /// The primary's time of the probe minus `complete_as_of` (`Duration::MAX` when unknown).
    pub lag: Duration,
    /// The primary answered the probe (if not, the lag is measured on the replica's clock).
    pub primary_seen: bool,
}

/// The replica's pool, its policy and the last probe.
pub(super) struct Replica {
    pub(super) pool: Pool,
    pub(super) policy: ReplicaPolicy,
    last: Mutex<Option<(Instant, ReplicaProbe)>>,
}

impl Replica {
    pub(super) fn new(pool: Pool) -> Self {
        Self { pool, policy: ReplicaPolicy::default(), last: Mutex::new(None) }
    }
}

fn time(epoch: f64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(epoch.floor() as i64).ok()
}

fn lag(at: f64, complete: Option<f64>) -> Duration {
    complete.map_or(Duration::MAX, |c| Duration::try_from_secs_f64((at - c).max(0.0)).unwrap_or(Duration::MAX))
}

impl PostgresStore {
    /// Read status from the replica under `policy` (the default: at most 5 s behind, else the
    /// primary; probed once a second).
    pub fn set_replica_policy(&mut self, policy: ReplicaPolicy) {
        if let Some(replica) = &mut self.replica {
            replica.policy = policy;
            *replica.last.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }

    /// Connections this process keeps open at most to each database, the primary and the
    /// replica (`[store] pool_size`; default [`super::pool::MAX_OPEN`]). Callers beyond wait.
    pub fn set_pool_size(&mut self, connections: std::num::NonZeroUsize) {
        self.primary.set_max_open(connections.get());
        if let Some(replica) = &mut self.replica {
            replica.pool.set_max_open(connections.get());
        }
    }

    /// Probe the replica now (see the module documentation); `None` without a replica.
    pub fn replica_probe(&self) -> Result<Option<ReplicaProbe>, StoreError> {
        let Some(replica) = &self.replica else { return Ok(None) };
        let primary = self.primary.get().and_then(|mut c| {
            let row = c
                .query_one("SELECT pg_current_wal_insert_lsn()::TEXT, EXTRACT(EPOCH FROM now())::DOUBLE PRECISION", &[])
                .context("reading the primary's WAL position")?;
            let lsn: String = row.try_get(0).context("reading the primary's WAL position")?;
            let at: f64 = row.try_get(1).context("reading the primary's time")?;
            Ok((lsn, at))
        });
        let mut conn = replica.pool.get()?;
        let probe = match primary {
            Ok((lsn, at)) => {
                let row = conn
                    .query_one(
                        "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::TEXT::pg_lsn, FALSE),
                                EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp())::DOUBLE PRECISION",
                        &[&lsn],
                    )
                    .context("reading the replica's replay position")?;
                let caught_up: bool = row.try_get(0).context("reading the replica's replay position")?;
                let replayed: Option<f64> = row.try_get(1).context("reading the replica's replay time")?;
                let complete = if caught_up { Some(at) } else { replayed };
                ReplicaProbe { complete_as_of: complete.and_then(time), lag: lag(at, complete), primary_seen: true }
            }
            Err(e) => {
                tracing::warn!(error = %e, "replica probe: the primary did not answer; lag measured on the replica");
                let row = conn
                    .query_one(
                        "SELECT EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp())::DOUBLE PRECISION,
                                EXTRACT(EPOCH FROM now())::DOUBLE PRECISION",
                        &[],
                    )
                    .context("reading the replica's replay time")?;
                let replayed: Option<f64> = row.try_get(0).context("reading the replica's replay time")?;
                let at: f64 = row.try_get(1).context("reading the replica's time")?;
                ReplicaProbe { complete_as_of: replayed.and_then(time), lag: lag(at, replayed), primary_seen: false }
            }
        };
        *replica.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), probe));
        Ok(Some(probe))
    }

    /// Where status reads go now, and how current they are.
    pub(super) fn status_reader(&self) -> Result<(&Pool, StatusAsOf), StoreError> {
        let Some(replica) = &self.replica else { return Ok((&self.primary, StatusAsOf::Current)) };
        let recent = *replica.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let probe = match recent {
            Some((at, probe)) if at.elapsed() < replica.policy.probe_every => Ok(probe),
            _ => self.replica_probe().map(|p| p.expect("a replica")),
        };
        let probe = match probe {
            Ok(probe) => probe,
            Err(e) => {
                // The replica is unreachable: the primary answers, current.
                tracing::warn!(error = %e, "replica probe failed; reading the primary");
                return Ok((&self.primary, StatusAsOf::Current));
            }
        };
        match probe.complete_as_of {
            Some(at) if probe.lag <= replica.policy.max_lag => Ok((&replica.pool, StatusAsOf::Replica(at))),
            _ => match replica.policy.when_behind {
                WhenReplicaBehind::Primary => Ok((&self.primary, StatusAsOf::Current)),
                WhenReplicaBehind::TryLater => Err(StoreError::ReplicaBehind {
                    lag_secs: probe.lag.as_secs(),
                    max_secs: replica.policy.max_lag.as_secs(),
                }),
            },
        }
    }
}
