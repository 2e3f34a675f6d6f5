//! A small connection pool: idle clients in a `Mutex<Vec<_>>`, a new connection when none is
//! idle. The store's traits are synchronous and every call holds one connection for one short
//! transaction, so this is all the pooling they need; `r2d2` would add a thread and a second
//! configuration surface for nothing the CA uses. A client that saw a broken connection is
//! dropped instead of being returned.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use postgres::{Client, Config, NoTls};

use crate::store::StoreError;

/// Idle connections kept for reuse; more may be open at once while callers are busy.
const MAX_IDLE: usize = 16;

pub(in crate::store) struct Pool {
    config: Config,
    idle: Mutex<Vec<Client>>,
    /// Where the pool points, for messages (host, port, database; never the password).
    pub(super) location: String,
}

impl Pool {
    pub(super) fn new(config: Config, location: String) -> Self {
        Self { config, idle: Mutex::new(Vec::new()), location }
    }

    /// An idle connection, or a new one.
    pub(in crate::store) fn get(&self) -> Result<Conn<'_>, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => self
                .config
                .connect(NoTls)
                .map_err(|e| StoreError::Database(format!("connecting to {}: {e}", self.location)))?,
        };
        Ok(Conn { pool: self, client: Some(client) })
    }
}

/// A pooled connection, returned to the pool when dropped.
pub(in crate::store) struct Conn<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl Deref for Conn<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        // A transaction dropped by a panic or an early return has been rolled back by
        // `postgres::Transaction`'s own drop, so an open connection is clean to reuse.
        if !client.is_closed() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(client);
            }
        }
    }
}
