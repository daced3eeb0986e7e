//! The publisher: reads the store's `$all` after its checkpoint, publishes every event in
//! position order, and saves its checkpoint only after the transport holds what it sent. A
//! publisher killed between publishing and saving publishes those events again when it
//! restarts; JetStream drops the copies by `Nats-Msg-Id` and the projections' checkpoints
//! absorb any that get through. It reads pages while there are any, then waits for the
//! store's live notification (same process) or a short poll (the store is another process's).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use event_sourcing_store::EventStore;
use lab_telemetry::messages::TraceHeaders;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::watch;

use crate::telemetry::TraceLog;
use crate::transport::{Envelope, Transport};
use crate::viewdb::wall_ms;

/// Events read from `$all` per page.
pub const PAGE: usize = 512;
/// How long an idle publisher waits before reading again without a notification.
pub const POLL: Duration = Duration::from_millis(20);

/// The publisher's own checkpoint, in its own SQLite file.
pub struct Checkpoint {
    connection: Connection,
}

impl Checkpoint {
    /// Opens (or creates) the checkpoint file.
    pub fn open(path: &Path) -> anyhow::Result<Checkpoint> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS publisher (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL);",
        )?;
        Ok(Checkpoint { connection })
    }

    /// The last position published and saved (0: none).
    pub fn get(&self) -> anyhow::Result<u64> {
        let position: Option<u64> = self
            .connection
            .query_row("SELECT position FROM publisher WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(position.unwrap_or(0))
    }

    /// Saves `position` as published.
    pub fn set(&self, position: u64) -> anyhow::Result<()> {
        self.connection.execute(
            "INSERT INTO publisher (id, position) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET position = excluded.position",
            [position],
        )?;
        Ok(())
    }
}

// ANCHOR: publish_loop
/// Publishes `$all` after `after` for ever, saving each page's last position to `checkpoint`
/// (when given) once the transport holds the page. `published` follows the last position sent;
/// each message carries the context `traces` recorded for its event.
pub async fn run(
    store: Arc<dyn EventStore>,
    transport: Transport,
    mut after: u64,
    checkpoint: Option<Checkpoint>,
    published: watch::Sender<u64>,
    traces: Option<Arc<TraceLog>>,
) -> anyhow::Result<()> {
    let mut live = store.live();
    loop {
        let page = store.read_all(after, PAGE).await?;
        if page.is_empty() {
            tokio::select! {
                _ = live.recv() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            continue;
        }
        for recorded in page {
            let position = recorded.position;
            let trace = match &traces {
                Some(traces) => traces.get(&recorded.stream, recorded.version)?,
                None => TraceHeaders::default(),
            };
            let envelope = Envelope {
                recorded,
                published_ms: wall_ms(),
                traceparent: trace.traceparent().map(str::to_owned),
                tracestate: trace.tracestate().map(str::to_owned),
            };
            transport.publish(&envelope).await?;
            after = position;
        }
        if let Some(checkpoint) = &checkpoint {
            checkpoint.set(after)?;
        }
        published.send_replace(after);
    }
}
// ANCHOR_END: publish_loop
