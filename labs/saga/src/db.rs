//! Opening a service's own SQLite database: a file by default, in memory in tests.
//!
//! Every service owns its data (no other service reads its tables), so each one opens its
//! own database. WAL mode lets readers (the outbox relay, `/state`) proceed while a writer
//! commits, and `synchronous = NORMAL` keeps commits durable across a process crash, which
//! is what the saga log needs (a power cut may lose the last commits; see the book).

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;

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
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.execute_batch(schema)?;
    Ok(Arc::new(Mutex::new(connection)))
}
