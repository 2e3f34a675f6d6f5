//! The two backends the suite runs on. Each test gets a database of its own: a new SQLite file,
//! or a new PostgreSQL database created from a migrated template in the one cluster this test
//! binary starts.

use std::path::PathBuf;
use std::sync::OnceLock;

use ca_core::store::{CaStore, PostgresStore, SqliteStore};
use fixtures::postgres::PgCluster;

/// A store under test, and the database behind it.
pub trait Backend: Sync {
    type Store: CaStore + 'static;
    /// The store every test works on.
    fn store(&self) -> &Self::Store;
    /// Another handle on the same database, with connections of its own (another process).
    fn open(&self) -> Self::Store;
    /// Run SQL behind the store's back, as someone with database access would.
    fn raw(&self, sql: &str) -> Result<(), String>;
    /// SQL that lifts the append-only protection of the audit journal.
    const LIFT_APPEND_ONLY: &'static str;
}

pub struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: SqliteStore,
}

impl Sqlite {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.db");
        let store = SqliteStore::open(&path).unwrap();
        Self { _dir: dir, path, store }
    }
}

impl Backend for Sqlite {
    type Store = SqliteStore;
    const LIFT_APPEND_ONLY: &'static str = "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;";

    fn store(&self) -> &SqliteStore {
        &self.store
    }

    fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).unwrap()
    }

    fn raw(&self, sql: &str) -> Result<(), String> {
        rusqlite::Connection::open(&self.path).unwrap().execute_batch(sql).map_err(|e| e.to_string())
    }
}

const TEMPLATE: &str = "ca_template";

/// The cluster of this test binary, with a migrated template database.
pub fn cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = PgCluster::start().expect("starting a PostgreSQL test cluster (scripts/setup.sh installs it)");
        cluster.create_named_database(TEMPLATE, None).unwrap();
        drop(PostgresStore::connect(&cluster.url(TEMPLATE), Some(cluster.password())).unwrap());
        cluster
    })
}

/// A new database, migrated, in the shared cluster; returns its URL.
pub fn new_database() -> String {
    let cluster = cluster();
    // The template's last connection may still be closing on the server side.
    let mut tries = 0;
    loop {
        match cluster.create_database(Some(TEMPLATE)) {
            Ok(name) => return cluster.url(&name),
            Err(e) if tries < 50 && e.to_string().contains("being accessed by other users") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("creating a test database: {e}"),
        }
    }
}

pub struct Postgres {
    url: String,
    store: PostgresStore,
}

impl Postgres {
    pub fn new() -> Self {
        let url = new_database();
        let store = PostgresStore::connect(&url, Some(cluster().password())).unwrap();
        Self { url, store }
    }
}

impl Backend for Postgres {
    type Store = PostgresStore;
    const LIFT_APPEND_ONLY: &'static str = "ALTER TABLE audit DISABLE TRIGGER USER";

    fn store(&self) -> &PostgresStore {
        &self.store
    }

    fn open(&self) -> PostgresStore {
        PostgresStore::connect(&self.url, Some(cluster().password())).unwrap()
    }

    fn raw(&self, sql: &str) -> Result<(), String> {
        let mut config: postgres::Config = self.url.parse().unwrap();
        config.password(cluster().password());
        let mut client = config.connect(postgres::NoTls).map_err(|e| e.to_string())?;
        client.batch_execute(sql).map_err(|e| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned()))
    }
}
