//! Which store a CA directory uses, and opening it: the embedded SQLite file `ca.db` by default,
//! or a PostgreSQL database named in `ca.toml`:
//!
//! ```toml
//! [store]
//! url = "postgres://ca@db.internal:5432/ca"
//! # read_url = "postgres://ca@replica.internal:5432/ca"   # ca-server's read-only look-ups
//! # max_replica_lag_secs = 5                               # read the replica only this far behind
//! # when_replica_behind = "primary"                        # or "try-later" (OCSP tryLater)
//! # pool_size = 16                                        # connections per process and database
//! # password_env = "CA_STORE_PASSWORD"                     # the default
//! # password_file = "/run/secrets/ca-store"
//! ```
//!
//! The password never sits in `ca.toml` or on a command line: it is read from the environment
//! variable (`CA_STORE_PASSWORD` unless `password_env` names another), or from `password_file`
//! or `CA_STORE_PASSWORD_FILE`; a URL carrying a password is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::postgres::{ReplicaPolicy, WhenReplicaBehind};
use super::{NonceStore, PostgresStore, SqliteStore, Store, StoreError};
use crate::ra::store::RaStore;

/// The environment variable the store password is read from unless `password_env` says otherwise.
pub const PASSWORD_ENV: &str = "CA_STORE_PASSWORD";
/// The environment variable naming a file that holds the store password.
pub const PASSWORD_FILE_ENV: &str = "CA_STORE_PASSWORD_FILE";

/// `[store]` in `ca.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `postgres://user@host:port/database`; absent for the embedded SQLite store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A streaming replica for `ca-server`'s read-only look-ups (OCSP, verification, downloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_url: Option<String>,
    /// How far behind the primary the replica may be for status reads (default 5 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replica_lag_secs: Option<u64>,
    /// What a status read does when the replica is further behind (default: read the primary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_replica_behind: Option<WhenReplicaBehind>,
    /// Connections each process keeps open at most to each database (primary, replica); callers
    /// beyond wait for one. Default 16. Size it so that every process's pools together stay
    /// under the server's `max_connections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<std::num::NonZeroUsize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl StoreSection {
    pub fn is_embedded(&self) -> bool {
        self.url.is_none()
    }

    /// How status reads use `read_url`.
    pub fn replica_policy(&self) -> ReplicaPolicy {
        let default = ReplicaPolicy::default();
        ReplicaPolicy {
            max_lag: self.max_replica_lag_secs.map_or(default.max_lag, std::time::Duration::from_secs),
            when_behind: self.when_replica_behind.unwrap_or_default(),
            ..default
        }
    }

    /// The password from the environment or a file; `None` when none is given (a unix socket
    /// with peer authentication, or a `.pgpass` file, needs none).
    pub fn password(&self) -> Result<Option<String>, StoreError> {
        read_password(
            self.password_env.as_deref().unwrap_or(PASSWORD_ENV),
            self.password_file.as_deref(),
            PASSWORD_FILE_ENV,
        )
    }
}

/// A database password from the environment variable `var`, else from `file` or the file the
/// variable `file_var` names; `None` when none is given. The password never comes from a
/// configuration file or a command line (shared with the portal's `[store]`).
pub fn read_password(var: &str, file: Option<&Path>, file_var: &str) -> Result<Option<String>, StoreError> {
    if let Ok(password) = std::env::var(var) {
        return Ok(Some(password));
    }
    let file = file.map(Path::to_path_buf).or_else(|| std::env::var_os(file_var).map(PathBuf::from));
    match file {
        Some(path) => std::fs::read_to_string(&path)
            .map(|p| Some(p.trim_end_matches(['\r', '\n']).to_owned()))
            .map_err(|e| StoreError::Database(format!("reading the store password from {}: {e}", path.display()))),
        None => Ok(None),
    }
}

/// Every store trait a CA directory needs, on one database.
pub trait CaStore: Store + RaStore + NonceStore + std::fmt::Debug {
    /// `sqlite` or `postgres`, for messages.
    fn kind(&self) -> &'static str;
    /// Time application steps by `timing` (ca.toml's `[regulation]`) from now on.
    fn set_timing(&self, timing: crate::ra::regulation::Timing);
    /// The budgets and calendar application events are timed by.
    fn timing(&self) -> Arc<crate::ra::regulation::Timing>;
    /// The SQLite store, for what only a file can do (`ca backup`).
    fn as_sqlite(&self) -> Option<&SqliteStore> {
        None
    }
    /// The PostgreSQL store, for replica freshness.
    fn as_postgres(&self) -> Option<&PostgresStore> {
        None
    }
}

impl CaStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
    fn set_timing(&self, timing: crate::ra::regulation::Timing) {
        SqliteStore::set_timing(self, timing);
    }
    fn timing(&self) -> Arc<crate::ra::regulation::Timing> {
        SqliteStore::timing(self)
    }
    fn as_sqlite(&self) -> Option<&SqliteStore> {
        Some(self)
    }
}

impl CaStore for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }
    fn set_timing(&self, timing: crate::ra::regulation::Timing) {
        PostgresStore::set_timing(self, timing);
    }
    fn timing(&self) -> Arc<crate::ra::regulation::Timing> {
        PostgresStore::timing(self)
    }
    fn as_postgres(&self) -> Option<&PostgresStore> {
        Some(self)
    }
}

/// Whether the read-only look-ups may go to `[store] read_url`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Everything on the primary: what the CLI needs, since it reads what it just wrote.
    Primary,
    /// Status and certificate look-ups on the replica, when one is configured (`ca-server`).
    Replica,
}

/// Open the store of a CA directory whose SQLite file would be `sqlite_path`.
pub fn open(sqlite_path: &Path, section: &StoreSection, reads: Reads) -> Result<Arc<dyn CaStore>, StoreError> {
    match &section.url {
        None => Ok(Arc::new(SqliteStore::open(sqlite_path)?)),
        Some(url) => {
            let password = section.password()?;
            let mut store = match (&section.read_url, reads) {
                (Some(read_url), Reads::Replica) => {
                    let mut store = PostgresStore::connect_with_replica(url, read_url, password.as_deref())?;
                    store.set_replica_policy(section.replica_policy());
                    store
                }
                _ => PostgresStore::connect(url, password.as_deref())?,
            };
            if let Some(connections) = section.pool_size {
                store.set_pool_size(connections);
            }
            Ok(Arc::new(store))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::postgres::PgCluster;

    #[test]
    fn pool_size_bounds_the_connections_of_a_process() {
        let cluster = PgCluster::start().unwrap();
        let db = cluster.create_database(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, cluster.password()).unwrap();
        let section: StoreSection = toml::from_str(&format!(
            "url = {:?}\npool_size = 3\npassword_env = \"CA_TEST_UNSET_PASSWORD\"\npassword_file = {:?}",
            cluster.url(&db),
            password
        ))
        .unwrap();
        let store = open(&dir.path().join("unused.db"), &section, Reads::Primary).unwrap();
        let serial = crate::serial::SerialNumber::random();
        std::thread::scope(|s| {
            for _ in 0..24 {
                s.spawn(|| {
                    for _ in 0..20 {
                        store.states(std::slice::from_ref(&serial)).unwrap();
                    }
                });
            }
        });
        let open: i64 = cluster
            .psql(&db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ca'")
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3).contains(&open), "{open} connections for pool_size = 3");

        let zero = toml::from_str::<StoreSection>("url = \"postgres://ca@db/ca\"\npool_size = 0");
        assert!(zero.is_err(), "a pool of no connections is refused when ca.toml is read");
    }
}
