//! Opening a service's own SQLite database: a file by default, in memory in tests.
//!
//! Every service owns its data (no other service reads its tables), so each one opens its
//! own database. WAL mode lets readers (the outbox relay, `/state`) proceed while a writer
//! commits, and `synchronous = NORMAL` keeps commits durable across a process crash, which
//! is what the saga log needs (a power cut may lose the last commits; see the book).

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, Transaction, TransactionBehavior};

/// How long a statement waits for another connection's write lock before failing with
/// "database is locked". Only a write transaction that asks for the lock up front
/// ([`write_transaction`]) is sure to wait: a deferred one that has already read fails at once.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A service's database connection, shared by its handlers.
///
/// One connection behind a mutex: SQLite serialises writers anyway, and a single connection
/// keeps in-memory databases (one per connection) working in tests.
pub type Db = Arc<Mutex<Connection>>;

/// Where a service keeps its data.
#[derive(Clone, Debug)]
pub enum Storage {
    /// A private in-memory database (tests, benchmarks).
    Memory,
    /// A file, created if missing (the demo; survives restarts).
    File(std::path::PathBuf),
}

impl Storage {
    /// `dir/<service>.db`.
    pub fn file_in(dir: &Path, service: &str) -> Storage {
        Storage::File(dir.join(format!("{service}.db")))
    }
}

/// Opens the database and applies `schema` (idempotent `CREATE TABLE IF NOT EXISTS`).
pub fn open(storage: &Storage, schema: &str) -> rusqlite::Result<Db> {
    let connection = match storage {
        Storage::Memory => Connection::open_in_memory()?,
        Storage::File(path) => Connection::open(path)?,
    };
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.execute_batch(schema)?;
    Ok(Arc::new(Mutex::new(connection)))
}

// ANCHOR: write_transaction
/// Starts a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`).
///
/// SQLite's default (`BEGIN DEFERRED`) takes the lock at the first write. If another writer
/// holds it by then, the transaction has already read a snapshot and cannot wait: it fails
/// with "database is locked" at once, whatever the busy timeout. Asking first makes the
/// busy timeout apply, and what the transaction reads is current when it writes.
pub fn write_transaction(connection: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    connection.transaction_with_behavior(TransactionBehavior::Immediate)
}
// ANCHOR_END: write_transaction
