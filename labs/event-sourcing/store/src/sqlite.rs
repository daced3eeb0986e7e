//! The SQLite backend: one `events` table whose rowid is the `$all` position, `(stream,
//! version)` and `(stream, event_id)` unique, WAL, and each append one `BEGIN IMMEDIATE`
//! transaction. SQLite commits a transaction whole or not at all, so a writer killed
//! mid-append leaves no torn batch; writers are serialised by the write lock and a rolled-back
//! transaction's rowids are not kept, so positions have no gap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use event_sourcing_core::{
    Appended, ExpectedVersion, NewEvent, Plan, Recorded, Snapshot, plan_append,
};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::broadcast;

use super::{BoxFuture, EventStore, LIVE_CHANNEL, StoreError};

// ANCHOR: schema
/// The store's tables.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position   INTEGER PRIMARY KEY,  -- the $all position: 1, 2, 3...
    stream     TEXT    NOT NULL,
    version    INTEGER NOT NULL,     -- 1, 2, 3... within the stream
    event_id   TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    schema     INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    UNIQUE (stream, version),
    UNIQUE (stream, event_id)
);
CREATE TABLE IF NOT EXISTS snapshots (
    stream  TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    schema  INTEGER NOT NULL,
    state   TEXT    NOT NULL
);
";
// ANCHOR_END: schema

/// How hard a commit waits for the disk (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `FULL`: a commit survives a power cut.
    Full,
    /// `NORMAL`: in WAL mode a commit survives a process crash, not necessarily a power cut.
    Normal,
}

/// How long a writer waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Streams in one SQLite file.
pub struct Sqlite {
    connection: Arc<Mutex<Connection>>,
    live: broadcast::Sender<Recorded>,
    path: PathBuf,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl Sqlite {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Sqlite, StoreError> {
        let connection = Connection::open(path).map_err(backend)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        connection
            .pragma_update(None, "synchronous", synchronous)
            .map_err(backend)?;
        connection.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Sqlite {
            connection: Arc::new(Mutex::new(connection)),
            live: broadcast::channel(LIVE_CHANNEL).0,
            path: path.to_owned(),
        })
    }

    /// The file it keeps its streams in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || work(&mut connection.lock()))
            .await
            .map_err(backend)?
    }
}

// ANCHOR: append
/// One append, in one transaction: read the stream's version and the batch's ids, plan, insert.
pub fn append_in(
    connection: &mut Connection,
    stream: &str,
    expected: ExpectedVersion,
    batch: &[NewEvent],
) -> Result<(Appended, Vec<Recorded>), StoreError> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let current: u64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1",
            [stream],
            |row| row.get(0),
        )
        .map_err(backend)?;
    let mut seen = tx
        .prepare_cached("SELECT version FROM events WHERE stream = ?1 AND event_id = ?2")
        .map_err(backend)?;
    let mut versions = std::collections::HashMap::new();
    for event in batch {
        let version: Option<u64> = seen
            .query_row(params![stream, event.event_id], |row| row.get(0))
            .optional()
            .map_err(backend)?;
        if let Some(version) = version {
            versions.insert(event.event_id.as_str(), version);
        }
    }
    drop(seen);
    let ids: Vec<&str> = batch.iter().map(|event| event.event_id.as_str()).collect();
    let plan = plan_append(expected, current, &ids, |id| versions.get(id).copied())?;
    let first_version = match plan {
        Plan::AlreadyThere { version } => {
            let position: u64 = tx
                .query_row(
                    "SELECT position FROM events WHERE stream = ?1 AND version = ?2",
                    params![stream, version],
                    |row| row.get(0),
                )
                .map_err(backend)?;
            let appended = Appended {
                first_version: (version + 1).saturating_sub(batch.len() as u64),
                version,
                position,
                already_appended: true,
            };
            return Ok((appended, Vec::new()));
        }
        Plan::Write { first_version } => first_version,
    };
    let mut recorded = Vec::with_capacity(batch.len());
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (stream, version, event_id, event_type, schema, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(backend)?;
        for (offset, event) in batch.iter().enumerate() {
            let version = first_version + offset as u64;
            let data = event.data.to_string();
            insert
                .execute(params![
                    stream,
                    version,
                    event.event_id,
                    event.event_type,
                    event.schema,
                    data
                ])
                .map_err(backend)?;
            recorded.push(Recorded {
                position: tx.last_insert_rowid() as u64,
                stream: stream.to_owned(),
                version,
                event_id: event.event_id.clone(),
                event_type: event.event_type.clone(),
                schema: event.schema,
                data: event.data.clone(),
            });
        }
    }
    tx.commit().map_err(backend)?;
    let last = recorded.last().map_or(0, |event| event.position);
    Ok((
        Appended {
            first_version,
            version: first_version + batch.len() as u64 - 1,
            position: last,
            already_appended: false,
        },
        recorded,
    ))
}
// ANCHOR_END: append

fn row_to_recorded(row: &rusqlite::Row<'_>) -> rusqlite::Result<Recorded> {
    let data: String = row.get(6)?;
    Ok(Recorded {
        position: row.get(0)?,
        stream: row.get(1)?,
        version: row.get(2)?,
        event_id: row.get(3)?,
        event_type: row.get(4)?,
        schema: row.get(5)?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
    })
}

const COLUMNS: &str = "position, stream, version, event_id, event_type, schema, data";

impl EventStore for Sqlite {
    fn append<'a>(
        &'a self,
        stream: &'a str,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<Appended, StoreError>> {
        Box::pin(async move {
            let stream = stream.to_owned();
            let (appended, recorded) = self
                .with(move |connection| append_in(connection, &stream, expected, &batch))
                .await?;
            for event in recorded {
                let _ = self.live.send(event);
            }
            Ok(appended)
        })
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a str,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Recorded>, StoreError>> {
        let stream = stream.to_owned();
        Box::pin(self.with(move |connection| {
            let mut query = connection
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM events WHERE stream = ?1 AND version >= ?2 \
                     ORDER BY version LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = query
                .query_map(
                    params![stream, from, limit.min(i64::MAX as usize) as i64],
                    row_to_recorded,
                )
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        }))
    }

    fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Recorded>, StoreError>> {
        Box::pin(self.with(move |connection| {
            let mut query = connection
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
                ))
                .map_err(backend)?;
            let rows = query
                .query_map(
                    params![after, limit.min(i64::MAX as usize) as i64],
                    row_to_recorded,
                )
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        }))
    }

    fn version<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        let stream = stream.to_owned();
        Box::pin(self.with(move |connection| {
            connection
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1",
                    [stream],
                    |row| row.get(0),
                )
                .map_err(backend)
        }))
    }

    fn live(&self) -> broadcast::Receiver<Recorded> {
        self.live.subscribe()
    }

    fn snapshot<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        let stream = stream.to_owned();
        Box::pin(self.with(move |connection| {
            let row: Option<(u64, u32, String)> = connection
                .query_row(
                    "SELECT version, schema, state FROM snapshots WHERE stream = ?1",
                    [stream],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(backend)?;
            // A state that no longer parses is as good as a stale schema: no snapshot.
            Ok(row.and_then(|(version, schema, state)| {
                Some(Snapshot {
                    version,
                    schema,
                    state: serde_json::from_str(&state).ok()?,
                })
            }))
        }))
    }

    fn save_snapshot<'a>(
        &'a self,
        stream: &'a str,
        snapshot: Snapshot,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let stream = stream.to_owned();
        Box::pin(self.with(move |connection| {
            let state = serde_json::to_string(&snapshot.state).map_err(backend)?;
            connection
                .execute(
                    "INSERT INTO snapshots (stream, version, schema, state) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (stream) DO UPDATE SET version = ?2, schema = ?3, state = ?4 \
                     WHERE excluded.version >= snapshots.version",
                    params![stream, snapshot.version, snapshot.schema, state],
                )
                .map_err(backend)?;
            Ok(())
        }))
    }
}
