//! Connecting: the URL and its password, the pools of the primary and of a replica, migrations
//! on connect, and the replica's freshness.

use postgres::Config;
use time::OffsetDateTime;

use super::pool::Pool;
use super::{migrations, Context, PostgresStore, CONNECT_TIMEOUT};
use crate::store::chain::now;
use crate::store::StoreError;

/// Parse a `postgres://` URL (or a libpq key=value string) and add the password. A URL that
/// carries a password itself is refused: passwords come from the environment or a file, never
/// from a command line or `ca.toml`.
pub fn parse_url(url: &str, password: Option<&str>) -> Result<(Config, String), StoreError> {
    let mut config: Config =
        url.parse().map_err(|e| StoreError::Configuration(format!("the store URL is not a PostgreSQL URL: {e}")))?;
    if config.get_password().is_some() {
        return Err(StoreError::Configuration(
            "the store URL carries a password: remove it and give the password in CA_STORE_PASSWORD or \
             CA_STORE_PASSWORD_FILE"
                .into(),
        ));
    }
    if let Some(password) = password {
        config.password(password);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("ca");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let location =
        format!("postgres://{}/{} (port {:?})", hosts.join(","), config.get_dbname().unwrap_or(""), config.get_ports());
    Ok((config, location))
}

impl PostgresStore {
    /// Connect to the database at `url` and bring its schema up to date.
    pub fn connect(url: &str, password: Option<&str>) -> Result<Self, StoreError> {
        let store = Self::connect_unmigrated(url, password)?;
        store.migrate()?;
        Ok(store)
    }

    /// [`PostgresStore::connect`], with read-only status and certificate look-ups sent to the
    /// streaming replica at `read_url` (same password).
    pub fn connect_with_replica(url: &str, read_url: &str, password: Option<&str>) -> Result<Self, StoreError> {
        let mut store = Self::connect(url, password)?;
        let (config, location) = parse_url(read_url, password)?;
        let replica = Pool::new(config, location);
        replica.get()?;
        store.replica = Some(super::replica::Replica::new(replica));
        Ok(store)
    }

    /// Connect without migrating (for `ca store migrate`, which reports what it did).
    pub fn connect_unmigrated(url: &str, password: Option<&str>) -> Result<Self, StoreError> {
        let (config, location) = parse_url(url, password)?;
        let primary = Pool::new(config, location);
        // Fail now, with the location in the message, rather than at the first query.
        primary.get()?;
        Ok(Self { primary, replica: None, timing: Default::default() })
    }

    /// Apply the migrations this program knows; returns the schema version now in place.
    pub fn migrate(&self) -> Result<i64, StoreError> {
        let mut client = self.primary.get()?;
        let version = migrations::migrate(&mut client, &self.primary.location, now()?.secs)?;
        index_certificate_keys(&mut client)?;
        Ok(version)
    }

    /// Time application steps by `timing` (ca.toml's `[regulation]`) from now on; until then,
    /// by the document's budgets and Kazakhstan's fixed-date holidays.
    pub fn set_timing(&self, timing: crate::ra::regulation::Timing) {
        *self.timing.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(timing);
    }

    /// The budgets and calendar application events are timed by.
    pub fn timing(&self) -> std::sync::Arc<crate::ra::regulation::Timing> {
        self.timing.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::current_version(&mut *self.primary.get()?)
    }

    /// How far the replica's replay is behind its last received change, and when it last
    /// replayed one; `None` without a replica. (`pg_last_xact_replay_timestamp`: on an idle
    /// primary the replica is current even though the timestamp is old.)
    pub fn replica_lag(&self) -> Result<Option<ReplicaFreshness>, StoreError> {
        let Some(replica) = &self.replica else { return Ok(None) };
        let row = replica
            .pool
            .get()?
            .query_one(
                "SELECT pg_is_in_recovery(),
                        pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(),
                        EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp())::DOUBLE PRECISION",
                &[],
            )
            .context("reading the replica's replay position")?;
        let replayed_at: Option<f64> = row.try_get(2).context("reading the replay time")?;
        Ok(Some(ReplicaFreshness {
            in_recovery: row.try_get(0).context("reading the recovery state")?,
            caught_up: row.try_get::<_, Option<bool>>(1).context("reading the replay position")?.unwrap_or(false),
            last_replayed: replayed_at.and_then(|s| OffsetDateTime::from_unix_timestamp(s.floor() as i64).ok()),
        }))
    }
}

/// What the replica says about its freshness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaFreshness {
    /// The server is a standby (a primary answering here would be a configuration mistake).
    pub in_recovery: bool,
    /// Everything received from the primary has been replayed.
    pub caught_up: bool,
    /// When the last replayed transaction committed on the primary.
    pub last_replayed: Option<OffsetDateTime>,
}

/// Give the certificates recorded before schema version 2 the key digest that finds them by key
/// (a key already certified is refused on a new application). A no-op once done: the partial
/// index holds only the rows still to do.
fn index_certificate_keys(client: &mut postgres::Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().context("starting to index certificate keys")?;
    let rows = tx
        .query("SELECT serial, der FROM certificates WHERE spki_sha256 IS NULL AND der IS NOT NULL FOR UPDATE", &[])
        .context("finding certificates without a key digest")?;
    for row in &rows {
        let serial: String = row.try_get(0).context("reading certificates")?;
        let der: Vec<u8> = row.try_get(1).context("reading certificates")?;
        if let Some(sha) = crate::store::chain::certificate_key_sha256(&der) {
            tx.execute("UPDATE certificates SET spki_sha256 = $2 WHERE serial = $1", &[&serial, &sha])
                .with_context(|| format!("indexing the key of certificate {serial}"))?;
        }
    }
    tx.commit().context("committing the key digests")
}
