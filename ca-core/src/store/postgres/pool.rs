//! A small connection pool: idle clients in a `Mutex<Vec<_>>`, a new connection when none is
//! idle, at most [`MAX_OPEN`] open at once. The store's traits are synchronous and every call
//! holds one connection for one short transaction, so this is all the pooling they need; `r2d2`
//! would add a thread and a second configuration surface for nothing the CA uses. A client that
//! saw a broken connection is dropped instead of being returned.
//!
//! **Bounded.** `ca-server` answers OCSP and verification on tokio's blocking pool (hundreds of
//! threads). An unbounded pool opened a connection for every caller beyond the idle ones and
//! closed it afterwards: under load every such request paid a TCP connect, SCRAM authentication
//! and a server process fork (milliseconds, on the same cores), which is what drives the tail
//! latency up. Now a caller that finds all [`MAX_OPEN`] connections busy waits for one to come
//! back (FIFO is not promised; the wait is bounded by [`CHECKOUT_TIMEOUT`], after which the call
//! fails with a clear error rather than hanging).
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
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};

use crate::store::StoreError;

/// Connections open at once per pool (so per process and database): enough to keep a
/// PostgreSQL server's cores busy from one process, far below its default `max_connections`
/// (100) for a few processes.
pub(in crate::store) const MAX_OPEN: usize = 16;
/// How long a caller waits for a busy pool before its call fails.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Prepared statements kept per connection (the store uses a few dozen distinct texts).
const MAX_STATEMENTS: usize = 256;

pub struct Pool {
    config: Config,
    state: Mutex<State>,
    /// Signalled when a connection comes back or a slot frees up.
    returned: Condvar,
    max_open: usize,
    /// Where the pool points, for messages (host, port, database; never the password).
    pub(super) location: String,
}

#[derive(Default)]
struct State {
    idle: Vec<Session>,
    /// Connections open (idle, lent out, or being connected).
    open: usize,
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
        Self::with_max_open(config, location, MAX_OPEN)
    }

    pub(super) fn with_max_open(config: Config, location: String, max_open: usize) -> Self {
        Self { config, state: Mutex::new(State::default()), returned: Condvar::new(), max_open, location }
    }

    /// At most `max_open` connections open at once (at least one).
    pub fn set_max_open(&mut self, max_open: usize) {
        self.max_open = max_open.max(1);
    }

    /// Where the pool points (host, port, database; never the password), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, or a new one while fewer than the pool's maximum are open, or else
    /// the first one returned.
    pub fn get(&self) -> Result<Conn<'_>, StoreError> {
        let deadline = Instant::now() + CHECKOUT_TIMEOUT;
        let mut state = self.state();
        loop {
            if let Some(session) = state.idle.pop() {
                if !session.client.is_closed() {
                    return Ok(Conn { pool: self, session: Some(session), reusable: true });
                }
                // The server closed it while idle: its slot is free again.
                state.open -= 1;
                continue;
            }
            if state.open < self.max_open {
                state.open += 1;
                break;
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return Err(StoreError::Database(format!(
                    "all {} connections to {} stayed busy for {} s",
                    self.max_open,
                    self.location,
                    CHECKOUT_TIMEOUT.as_secs()
                )));
            }
            state = self.returned.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0;
        }
        drop(state);
        // Connect outside the lock: other callers may take idle connections meanwhile.
        match self.config.connect(NoTls) {
            Ok(client) => Ok(Conn {
                pool: self,
                session: Some(Session { client, statements: Statements::default() }),
                reusable: true,
            }),
            Err(e) => {
                self.release_slot();
                Err(StoreError::Database(format!("connecting to {}: {e}", self.location)))
            }
        }
    }

    /// A connection was closed or never opened: one more may be.
    fn release_slot(&self) {
        self.state().open -= 1;
        self.returned.notify_one();
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
            self.pool.state().idle.push(session);
            self.pool.returned.notify_one();
        } else {
            drop(session);
            self.pool.release_slot();
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

    /// Many more callers at once than the pool holds (as on `ca-server`'s blocking pool): they
    /// share at most `MAX_OPEN` connections instead of each opening (and closing) its own.
    #[test]
    fn concurrent_callers_share_a_bounded_set_of_connections() {
        let cluster = PgCluster::start().unwrap();
        let pool = pool(&cluster);
        let backends = Mutex::new(std::collections::HashSet::new());
        std::thread::scope(|s| {
            for _ in 0..3 * MAX_OPEN {
                s.spawn(|| {
                    for _ in 0..5 {
                        let mut conn = pool.get().unwrap();
                        // Held a moment, so the callers overlap.
                        let row = conn.query_one_cached("SELECT pg_backend_pid(), pg_sleep(0.002)::TEXT", &[]).unwrap();
                        backends.lock().unwrap().insert(row.get::<_, i32>(0));
                    }
                });
            }
        });
        let opened = backends.into_inner().unwrap().len();
        assert!(opened <= MAX_OPEN, "{opened} connections opened for {} callers", 3 * MAX_OPEN);
        let state = pool.state();
        assert!(state.open <= MAX_OPEN && state.idle.len() == state.open, "every connection back and counted");
    }

    #[test]
    fn a_caller_waits_for_a_connection_when_all_are_lent_out() {
        let cluster = PgCluster::start().unwrap();
        let db = cluster.create_database(None).unwrap();
        let (config, location) =
            crate::store::postgres::parse_url(&cluster.url(&db), Some(cluster.password())).unwrap();
        let pool = Pool::with_max_open(config, location, 1);
        let first = pool.get().unwrap();
        let pid = |conn: &mut Conn<'_>| conn.query_one_cached("SELECT pg_backend_pid()", &[]).unwrap().get::<_, i32>(0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut second = pool.get().unwrap();
                tx.send(pid(&mut second)).unwrap();
            });
            // Not answered while the only connection is lent out.
            assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
            let mut first = first;
            let first_pid = pid(&mut first);
            drop(first);
            assert_eq!(rx.recv().unwrap(), first_pid, "the same connection, handed over");
        });
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
