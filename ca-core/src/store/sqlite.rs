//! SQLite implementation of the store (to be written).
/// Placeholder until the SQLite store lands.
pub struct SqliteStore;
