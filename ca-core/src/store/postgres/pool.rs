//! A small connection pool: idle clients in a `Mutex<Vec<_>>`, a new connection when none is
//! idle. The store's traits are synchronous and every call holds one connection for one short
//! transaction, so this is all the pooling they need; `r2d2` would add a thread and a second
//! configuration surface for nothing the CA uses. A client that saw a broken connection is
//! dropped instead of being returned.
//!
//! **Prepared statements.** `postgres::Client::execute("…")` parses the SQL text on the server in
//! one round trip and runs it in a second. Each pooled connection therefore keeps the statements
//! it has prepared, by SQL text ([`Statements`]): a store call prepares its statements once per
//! connection and afterwards every statement is one round trip. Prepared statements are not
//! transactional (a rollback keeps them) and live as long as the connection; the store's SQL is a
//! fixed set of texts, so the cache stays small ([`MAX_STATEMENTS`] bounds it anyway).
//!
//! **Transactions.** [`Conn::begin`] opens a transaction and takes its first lock in one round
//! trip (`BEGIN; SELECT pg_advisory_xact_lock(…)` as one simple query); [`Tx`] rolls back when it
//! is dropped uncommitted, and a connection whose rollback failed is not reused.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};

use crate::store::StoreError;

/// Idle connections kept for reuse; more may be open at once while callers are busy.
const MAX_IDLE: usize = 16;
/// Prepared statements kept per connection (the store uses a few dozen distinct texts).
const MAX_STATEMENTS: usize = 256;

pub struct Pool {
    config: Config,
    idle: Mutex<Vec<Session>>,
    /// Where the pool points, for messages (host, port, database; never the password).
    pub(super) location: String,
}

/// A connection and the statements prepared on it.
struct Session {
    client: Client,
    statements: Statements,
}

/// Statements prepared on one connection, by SQL text.
#[derive(Default)]
pub struct Statements(HashMap<String, Statement>);

impl Statements {
    fn get(&mut self, client: &mut Client, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        if self.0.len() >= MAX_STATEMENTS {
            // Dropping a `Statement` closes it on the server.
            self.0.clear();
        }
        self.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Pool {
    pub fn new(config: Config, location: String) -> Self {
        Self { config, idle: Mutex::new(Vec::new()), location }
    }

    /// Where the pool points (host, port, database; never the password), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// An idle connection, or a new one.
    pub fn get(&self) -> Result<Conn<'_>, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let session = match idle {
            Some(session) if !session.client.is_closed() => session,
            _ => Session {
                client: self
                    .config
                    .connect(NoTls)
                    .map_err(|e| StoreError::Database(format!("connecting to {}: {e}", self.location)))?,
                statements: Statements::default(),
            },
        };
        Ok(Conn { pool: self, session: Some(session), reusable: true })
    }
}

/// A pooled connection, returned to the pool when dropped.
pub struct Conn<'a> {
    pool: &'a Pool,
    session: Option<Session>,
    /// False once a transaction on it could not be rolled back.
    reusable: bool,
}

impl Conn<'_> {
    fn session(&mut self) -> &mut Session {
        self.session.as_mut().expect("present until drop")
    }

    /// Open a transaction and take the transaction-scoped advisory lock `lock`, in one round trip.
    pub fn begin(&mut self, lock: i64) -> Result<Tx<'_>, postgres::Error> {
        let reusable = &mut self.reusable;
        let Session { client, statements } = self.session.as_mut().expect("present until drop");
        // A constant from this crate, not input: formatting it into the text is safe.
        client.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({lock})"))?;
        Ok(Tx { client, statements, reusable, open: true })
    }
}

impl Deref for Conn<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.session.as_ref().expect("present until drop").client
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.session().client
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else { return };
        // A `postgres::Transaction` or [`Tx`] dropped by a panic or an early return has been
        // rolled back by its own drop, so an open connection is clean to reuse unless that
        // rollback failed.
        if self.reusable && !session.client.is_closed() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(session);
            }
        }
    }
}

/// A transaction opened by [`Conn::begin`]. Derefs to the client for statements that are not
/// worth caching; rolled back on drop unless committed.
pub struct Tx<'a> {
    client: &'a mut Client,
    statements: &'a mut Statements,
    reusable: &'a mut bool,
    open: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<(), postgres::Error> {
        self.open = false;
        let committed = self.client.batch_execute("COMMIT");
        if committed.is_err() {
            *self.reusable = false;
        }
        committed
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open && self.client.batch_execute("ROLLBACK").is_err() {
            *self.reusable = false;
        }
    }
}

impl Deref for Tx<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client
    }
}

impl DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
    }
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// Statements run through the connection's cache of prepared statements: one round trip each.
pub trait Cached {
    /// The client and its statement cache.
    fn parts(&mut self) -> (&mut Client, &mut Statements);

    fn execute_cached(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error> {
        let (client, statements) = self.parts();
        let statement = statements.get(client, sql)?;
        client.execute(&statement, params)
    }

    fn query_cached(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        let (client, statements) = self.parts();
        let statement = statements.get(client, sql)?;
        client.query(&statement, params)
    }

    fn query_one_cached(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error> {
        let (client, statements) = self.parts();
        let statement = statements.get(client, sql)?;
        client.query_one(&statement, params)
    }

    fn query_opt_cached(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, postgres::Error> {
        let (client, statements) = self.parts();
        let statement = statements.get(client, sql)?;
        client.query_opt(&statement, params)
    }
}

impl Cached for Conn<'_> {
    fn parts(&mut self) -> (&mut Client, &mut Statements) {
        let Session { client, statements } = self.session();
        (client, statements)
    }
}

impl Cached for Tx<'_> {
    fn parts(&mut self) -> (&mut Client, &mut Statements) {
        (self.client, self.statements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::postgres::PgCluster;

    fn pool(cluster: &PgCluster) -> Pool {
        let db = cluster.create_database(None).unwrap();
        let (config, location) =
            crate::store::postgres::parse_url(&cluster.url(&db), Some(cluster.password())).unwrap();
        Pool::new(config, location)
    }

    /// Statements this session has prepared at the protocol level (named ones).
    fn prepared_on_server(client: &mut Client) -> usize {
        let rows = client.simple_query("SELECT count(*) FROM pg_prepared_statements").unwrap();
        match &rows[1] {
            postgres::SimpleQueryMessage::Row(row) => row.get(0).unwrap().parse().unwrap(),
            _ => panic!("a row"),
        }
    }

    #[test]
    fn a_statement_is_prepared_once_per_connection_and_survives_rollbacks() {
        let cluster = PgCluster::start().unwrap();
        let pool = pool(&cluster);
        let sql = "SELECT $1::BIGINT + 1";
        {
            let mut conn = pool.get().unwrap();
            for n in 0..3i64 {
                let row = conn.query_one_cached(sql, &[&n]).unwrap();
                assert_eq!(row.get::<_, i64>(0), n + 1);
            }
            assert_eq!(prepared_on_server(&mut conn), 1, "prepared once, reused twice");
            // Prepared inside a transaction that rolls back: still there afterwards.
            let mut tx = conn.begin(1).unwrap();
            tx.query_one_cached("SELECT $1::TEXT", &[&"x"]).unwrap();
            drop(tx);
            assert_eq!(prepared_on_server(&mut conn), 2);
        }
        // The same connection comes back from the pool with its statements.
        let mut conn = pool.get().unwrap();
        assert_eq!(prepared_on_server(&mut conn), 2);
        assert_eq!(conn.query_one_cached("SELECT $1::TEXT", &[&"y"]).unwrap().get::<_, String>(0), "y");
        assert_eq!(prepared_on_server(&mut conn), 2);
    }

    #[test]
    fn a_failed_transaction_is_rolled_back_before_the_connection_is_reused() {
        let cluster = PgCluster::start().unwrap();
        let pool = pool(&cluster);
        pool.get().unwrap().batch_execute("CREATE TABLE t (n BIGINT PRIMARY KEY)").unwrap();
        {
            let mut conn = pool.get().unwrap();
            let mut tx = conn.begin(1).unwrap();
            tx.execute_cached("INSERT INTO t VALUES ($1)", &[&1i64]).unwrap();
            // A failing statement leaves the transaction aborted; dropping it must roll back.
            assert!(tx.execute_cached("INSERT INTO t VALUES ($1)", &[&1i64]).is_err());
        }
        let mut conn = pool.get().unwrap();
        let mut tx = conn.begin(1).unwrap();
        tx.execute_cached("INSERT INTO t VALUES ($1)", &[&2i64]).unwrap();
        tx.commit().unwrap();
        let rows = conn.query_cached("SELECT n FROM t ORDER BY n", &[]).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
            vec![2],
            "the first insert rolled back"
        );
    }
}
