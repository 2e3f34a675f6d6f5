//! The two backends the suite runs on. Each test gets a database of its own: a new SQLite file,
//! or a new PostgreSQL database created from a migrated template in the one cluster this test
//! binary starts.

use std::path::PathBuf;
use std::sync::OnceLock;

use fixtures::postgres::PgCluster;
use portal::store::{PgPortalStore, PortalStore, SqlitePortalStore};

/// A store under test, and the database behind it.
pub trait Backend: Sync {
    type Store: PortalStore + 'static;
    /// The store every test works on.
    fn store(&self) -> &Self::Store;
    /// Another handle on the same database, with connections of its own (another process).
    fn open(&self) -> Self::Store;
    /// Run SQL behind the store's back, as someone with database access would.
    fn raw(&self, sql: &str) -> Result<(), String>;
    /// The one integer a query behind the store's back answers (a count).
    fn scalar(&self, sql: &str) -> i64;
    /// The schema version of the database.
    fn schema_version(&self) -> i64;
}

pub struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: SqlitePortalStore,
}

impl Sqlite {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal.db");
        let store = SqlitePortalStore::open(&path).unwrap();
        Self { _dir: dir, path, store }
    }
}

impl Backend for Sqlite {
    type Store = SqlitePortalStore;

    fn store(&self) -> &SqlitePortalStore {
        &self.store
    }

    fn open(&self) -> SqlitePortalStore {
        SqlitePortalStore::open(&self.path).unwrap()
    }

    fn raw(&self, sql: &str) -> Result<(), String> {
        rusqlite::Connection::open(&self.path).unwrap().execute_batch(sql).map_err(|e| e.to_string())
    }

    fn scalar(&self, sql: &str) -> i64 {
        rusqlite::Connection::open(&self.path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn schema_version(&self) -> i64 {
        self.store.schema_version().unwrap()
    }
}

const TEMPLATE: &str = "portal_template";

/// The cluster of this test binary, with a migrated template database.
pub fn cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = PgCluster::start().expect("starting a PostgreSQL test cluster (scripts/setup.sh installs it)");
        cluster.create_named_database(TEMPLATE, None).unwrap();
        drop(PgPortalStore::connect(&cluster.url(TEMPLATE), Some(cluster.password())).unwrap());
        cluster
    })
}

/// A new database, migrated, in the shared cluster; returns its URL.
pub fn new_database() -> String {
    let cluster = cluster();
    cluster.url(&cluster.create_database_from(TEMPLATE).expect("creating a test database"))
}

pub struct Postgres {
    url: String,
    store: PgPortalStore,
}

impl Postgres {
    pub fn new() -> Self {
        let url = new_database();
        let store = PgPortalStore::connect(&url, Some(cluster().password())).unwrap();
        Self { url, store }
    }
}

impl Postgres {
    fn client(&self) -> Result<postgres::Client, String> {
        let mut config: postgres::Config = self.url.parse().unwrap();
        config.password(cluster().password());
        config.connect(postgres::NoTls).map_err(|e| e.to_string())
    }
}

impl Backend for Postgres {
    type Store = PgPortalStore;

    fn store(&self) -> &PgPortalStore {
        &self.store
    }

    fn open(&self) -> PgPortalStore {
        PgPortalStore::connect(&self.url, Some(cluster().password())).unwrap()
    }

    fn raw(&self, sql: &str) -> Result<(), String> {
        self.client()?
            .batch_execute(sql)
            .map_err(|e| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned()))
    }

    fn scalar(&self, sql: &str) -> i64 {
        self.client().unwrap().query_one(sql, &[]).unwrap().get(0)
    }

    fn schema_version(&self) -> i64 {
        self.store.schema_version().unwrap()
    }
}
