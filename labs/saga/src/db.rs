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

/// Opens the database and applies `schema` (idempotent `CREATE TABLE IF NOT EXISTS`, and the
/// rows a service starts with as `INSERT OR IGNORE`).
///
/// A file remembers which schema it was given (a hash of the text in SQLite's `user_version`),
/// so reopening it only reads: a service restarted while another writer holds its file starts,
/// and then waits for the lock where it writes, saying so, instead of failing on start-up.
pub fn open(storage: &Storage, schema: &str) -> rusqlite::Result<Db> {
    let mut connection = match storage {
        Storage::Memory => Connection::open_in_memory()?,
        Storage::File(path) => Connection::open(path)?,
    };
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let version = schema_version(schema);
    let applied: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if applied != version {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        let tx = write_transaction(&mut connection)?;
        tx.execute_batch(schema)?;
        add_missing_columns(&tx)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(Arc::new(Mutex::new(connection)))
}

// ANCHOR: migrations
/// Columns added to a table after files with the table already existed: `CREATE TABLE IF
/// NOT EXISTS` leaves an old table as it was, so an old file gets them here (as NULL in the
/// rows it has). `(table, column, declaration)`.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    // The outbox keeps the trace context of the write that produced each event.
    ("outbox", "traceparent", "TEXT"),
    ("outbox", "tracestate", "TEXT"),
    // A dead letter keeps its message's, so a re-drive continues the message's trace.
    ("dead_letter", "traceparent", "TEXT"),
    ("dead_letter", "tracestate", "TEXT"),
];

/// Adds every [`ADDED_COLUMNS`] column missing from a table the database has.
fn add_missing_columns(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for (table, column, declaration) in ADDED_COLUMNS {
        let columns: Vec<String> = tx
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([table], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if !columns.is_empty() && !columns.iter().any(|name| name == column) {
            tx.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
            ))?;
        }
    }
    Ok(())
}
// ANCHOR_END: migrations

/// The `user_version` that marks a file as holding `schema`: a hash of its text (FNV-1a),
/// positive and never 0, which is a new file's version.
fn schema_version(schema: &str) -> i64 {
    let hash = schema.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    i64::from((hash & 0x7fff_ffff).max(1))
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
