//! A view's own SQLite file: its rows by generation, each generation's checkpoint, and which
//! generation answers reads. A projection commits the rows an event changed and the new
//! checkpoint in ONE transaction, so after a crash the file holds both or neither: an event
//! is counted exactly once however often it is delivered.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use cqrs_core::{RowKey, View};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

// ANCHOR: schema
/// The view file's tables.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rows (
    generation INTEGER NOT NULL,
    tbl        TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    json       TEXT    NOT NULL,
    PRIMARY KEY (generation, tbl, key)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    generation   INTEGER PRIMARY KEY,
    position     INTEGER NOT NULL,  -- the last $all position applied
    delay_ms     INTEGER NOT NULL,  -- publish to commit, of the last event applied
    committed_ms INTEGER NOT NULL,  -- wall clock of the last commit
    applied      INTEGER NOT NULL   -- events applied into this generation, each counted once
);
CREATE TABLE IF NOT EXISTS active (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO active (id, generation) VALUES (1, 1);
";
// ANCHOR_END: schema

/// A generation's checkpoint row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last position applied.
    pub position: u64,
    /// Publish to commit, in ms, of the last event applied.
    pub delay_ms: u64,
    /// Wall-clock ms of the last commit.
    pub committed_ms: u64,
    /// How many events this generation has applied: the position, less any declared gaps,
    /// if every event was applied exactly once.
    pub applied: u64,
}

/// Opens (or creates) a view file.
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    let connection =
        Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(SCHEMA)?;
    Ok(connection)
}

/// The generation answering reads.
pub fn active(connection: &Connection) -> anyhow::Result<u32> {
    Ok(
        connection.query_row("SELECT generation FROM active WHERE id = 1", [], |row| {
            row.get(0)
        })?,
    )
}

/// A generation's checkpoint (zeros when it has none).
pub fn checkpoint(connection: &Connection, generation: u32) -> anyhow::Result<Checkpoint> {
    let row = connection
        .query_row(
            "SELECT position, delay_ms, committed_ms, applied FROM checkpoints WHERE generation = ?1",
            [generation],
            |row| {
                Ok(Checkpoint {
                    position: row.get(0)?,
                    delay_ms: row.get(1)?,
                    committed_ms: row.get(2)?,
                    applied: row.get(3)?,
                })
            },
        )
        .optional()?;
    Ok(row.unwrap_or_default())
}

/// The active generation's checkpoint.
pub fn active_checkpoint(connection: &Connection) -> anyhow::Result<Checkpoint> {
    checkpoint(connection, active(connection)?)
}

/// A generation's view, read back from its rows, and its checkpoint.
pub fn load<V: View>(connection: &Connection, generation: u32) -> anyhow::Result<(V, Checkpoint)> {
    let mut view = V::default();
    let mut query = connection.prepare("SELECT tbl, key, json FROM rows WHERE generation = ?1")?;
    let rows = query.query_map([generation], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (table, key, json) = row?;
        let Some(table) = cqrs_core::view::table_named(V::TABLES, &table) else {
            anyhow::bail!("{}: a row of an unknown table {table}", V::NAME);
        };
        view.restore(RowKey { table, key }, serde_json::from_str(&json)?)?;
    }
    Ok((view, checkpoint(connection, generation)?))
}

// ANCHOR: commit
/// Writes the rows an event (or a batch) changed and the generation's checkpoint, in one
/// transaction: both are in the file afterwards, or neither.
pub fn commit(
    connection: &mut Connection,
    generation: u32,
    rows: &[(RowKey, Option<Value>)],
    checkpoint: Checkpoint,
) -> anyhow::Result<()> {
    let tx = connection.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO rows (generation, tbl, key, json) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (generation, tbl, key) DO UPDATE SET json = excluded.json",
        )?;
        let mut delete =
            tx.prepare_cached("DELETE FROM rows WHERE generation = ?1 AND tbl = ?2 AND key = ?3")?;
        for (key, row) in rows {
            match row {
                Some(row) => {
                    put.execute(params![generation, key.table, key.key, row.to_string()])?
                }
                None => delete.execute(params![generation, key.table, key.key])?,
            };
        }
        tx.execute(
            "INSERT INTO checkpoints (generation, position, delay_ms, committed_ms, applied) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (generation) DO UPDATE SET \
             position = excluded.position, delay_ms = excluded.delay_ms, \
             committed_ms = excluded.committed_ms, applied = excluded.applied",
            params![
                generation,
                checkpoint.position,
                checkpoint.delay_ms,
                checkpoint.committed_ms,
                checkpoint.applied
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}
// ANCHOR_END: commit

/// Points reads at `generation`.
pub fn switch(connection: &Connection, generation: u32) -> anyhow::Result<()> {
    connection.execute(
        "UPDATE active SET generation = ?1 WHERE id = 1",
        [generation],
    )?;
    Ok(())
}

/// Drops a generation's rows and checkpoint.
pub fn drop_generation(connection: &mut Connection, generation: u32) -> anyhow::Result<()> {
    let tx = connection.transaction()?;
    tx.execute("DELETE FROM rows WHERE generation = ?1", [generation])?;
    tx.execute(
        "DELETE FROM checkpoints WHERE generation = ?1",
        [generation],
    )?;
    tx.commit()?;
    Ok(())
}

/// One row of the active generation, as JSON.
pub fn row(connection: &Connection, table: &str, key: &str) -> anyhow::Result<Option<Value>> {
    let json: Option<String> = connection
        .query_row(
            "SELECT json FROM rows WHERE generation = (SELECT generation FROM active WHERE id = 1) \
             AND tbl = ?1 AND key = ?2",
            params![table, key],
            |row| row.get(0),
        )
        .optional()?;
    Ok(json.map(|json| serde_json::from_str(&json)).transpose()?)
}

/// Wall-clock milliseconds since the Unix epoch: the lag's measure across processes.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
