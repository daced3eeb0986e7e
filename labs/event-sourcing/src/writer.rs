//! A writer that appends batches of order events straight to the SQLite store as fast as it
//! can, printing each acknowledged batch (`acked <stream> <version> <position>`): the process
//! the demo and the crash test kill mid-batch.

use std::path::Path;

use event_sourcing_core::{Event, ExpectedVersion, encode};
use event_sourcing_store::{Durability, EventStore, Sqlite};

/// Events in each of the writer's batches.
pub const BATCH: usize = 5;

/// One batch for stream `order-<n>`: the order created with four items.
pub fn batch(n: u64) -> Vec<event_sourcing_core::NewEvent> {
    let mut events = vec![encode(
        &Event::OrderCreated {
            order_id: n.to_string(),
            customer: format!("customer-{n}"),
        },
        format!("{n}-0"),
    )];
    for item in 1..BATCH {
        events.push(encode(
            &Event::ItemAdded {
                sku: format!("SKU-{item}"),
                quantity: item as u32,
                unit_price_cents: 100 * item as u64,
            },
            format!("{n}-{item}"),
        ));
    }
    events
}

/// Appends batch after batch (streams `order-<from>`, `order-<from+1>`…) until killed.
pub async fn run(path: &Path, from: u64) -> anyhow::Result<()> {
    let store = Sqlite::open(path, Durability::Full)?;
    println!("writing to {}", path.display());
    for n in from.. {
        let appended = store
            .append(&format!("order-{n}"), ExpectedVersion::NoStream, batch(n))
            .await?;
        println!("acked order-{n} {} {}", appended.version, appended.position);
    }
    Ok(())
}

/// What a store file holds, read straight from SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// Events in `$all`.
    pub events: u64,
    /// The highest position.
    pub last_position: u64,
    /// Streams the writer wrote.
    pub streams: u64,
    /// Streams holding part of a batch (none, if appends are atomic).
    pub torn: Vec<String>,
    /// Streams whose versions are not 1, 2, 3… .
    pub gapped: Vec<String>,
}

/// Reads `path` directly and checks the writer's batches are whole and numbered without gaps.
pub fn inspect(path: &Path) -> rusqlite::Result<FileCheck> {
    let connection = rusqlite::Connection::open(path)?;
    let (events, last_position): (u64, u64) = connection.query_row(
        "SELECT COUNT(*), COALESCE(MAX(position), 0) FROM events",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let mut per_stream = connection.prepare(
        "SELECT stream, COUNT(*), MIN(version), MAX(version) FROM events GROUP BY stream",
    )?;
    let rows = per_stream.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, u64>(1)?,
            row.get::<_, u64>(2)?,
            row.get::<_, u64>(3)?,
        ))
    })?;
    let (mut streams, mut torn, mut gapped) = (0, Vec::new(), Vec::new());
    for row in rows {
        let (stream, count, min, max) = row?;
        streams += 1;
        if count != BATCH as u64 {
            torn.push(stream.clone());
        }
        if min != 1 || max != count {
            gapped.push(stream);
        }
    }
    Ok(FileCheck {
        events,
        last_position,
        streams,
        torn,
        gapped,
    })
}
