//! The event store's benchmark, one run on one machine: appends per second at one event per
//! commit and batches of 10 and 100, under `synchronous = FULL` and `NORMAL`, against a bare
//! rusqlite insert loop on the same table (the floor) and, when they are there, Python's
//! `eventsourcing` 9.5 with its SQLite recorder (installed into a virtualenv by
//! `benches/peer.sh`) and NATS JetStream (`NATS_URL`); then replay in events per second, and
//! the load time of one stream of 10k, 100k and 1M events with and without a snapshot.
//!
//! Run with `cargo xtask bench event-sourcing`. `ES_BENCH_SIZES` (default
//! `10000,100000,1000000`) sets the stream lengths loaded; `ES_BENCH_SCALE` (default 1)
//! multiplies the number of commits measured per append configuration.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_sourcing_core::{Event, ExpectedVersion, NewEvent, Snapshot, encode, fold};
use event_sourcing_store::load::decode_all;
use event_sourcing_store::sqlite::{SCHEMA, append_in};
use event_sourcing_store::{Durability, EventStore, JetStream, Sqlite, load, load_at};

fn scratch(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("es-bench-{name}-{}.db", std::process::id()));
    remove(&path);
    path
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The workload: a valid order stream, created, one item, then its quantity going 2, 3, 2…
fn event(version: u64) -> Event {
    match version {
        1 => Event::OrderCreated {
            order_id: "bench".into(),
            customer: "ada".into(),
        },
        2 => Event::ItemAdded {
            sku: "TEA".into(),
            quantity: 1,
            unit_price_cents: 300,
        },
        v => Event::QuantityUpdated {
            sku: "TEA".into(),
            quantity: 2 + (v % 2) as u32,
        },
    }
}

fn batch(first_version: u64, size: u64) -> Vec<NewEvent> {
    (first_version..first_version + size)
        .map(|v| encode(&event(v), format!("e{v}")))
        .collect()
}

fn open(path: &Path, durability: Durability) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).expect("open");
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .unwrap();
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    connection.pragma_update(None, "synchronous", sync).unwrap();
    connection.execute_batch(SCHEMA).unwrap();
    connection
}

/// Commits measured per configuration (FULL waits for the disk at every commit).
fn commits(durability: Durability, size: u64) -> u64 {
    let scale: u64 = std::env::var("ES_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let base = match (durability, size) {
        (Durability::Full, 1) => 1_000,
        (Durability::Full, _) => 500,
        (Durability::Normal, 1) => 10_000,
        (Durability::Normal, 10) => 3_000,
        (Durability::Normal, _) => 500,
    };
    base * scale
}

/// The floor: the same rows inserted in the same transactions, with nothing read first.
fn floor(durability: Durability, size: u64) -> f64 {
    let path = scratch("floor");
    let mut connection = open(&path, durability);
    let batches: Vec<Vec<NewEvent>> = (0..commits(durability, size))
        .map(|i| batch(i * size + 1, size))
        .collect();
    let started = Instant::now();
    for events in &batches {
        let tx = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (stream, version, event_id, event_type, schema, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .unwrap();
            let first = events[0].event_id[1..].parse::<u64>().unwrap();
            for (offset, event) in events.iter().enumerate() {
                insert
                    .execute(rusqlite::params![
                        "order-bench",
                        first + offset as u64,
                        event.event_id,
                        event.event_type,
                        event.schema,
                        event.data.to_string()
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let rate = (batches.len() as u64 * size) as f64 / started.elapsed().as_secs_f64();
    remove(&path);
    rate
}

/// The store's own append: version read, ids looked up, plan, insert, commit.
fn store_append(durability: Durability, size: u64) -> f64 {
    let path = scratch("store");
    let mut connection = open(&path, durability);
    let batches: Vec<Vec<NewEvent>> = (0..commits(durability, size))
        .map(|i| batch(i * size + 1, size))
        .collect();
    let started = Instant::now();
    for (i, events) in batches.iter().enumerate() {
        append_in(
            &mut connection,
            "order-bench",
            ExpectedVersion::Exact(i as u64 * size),
            events,
        )
        .unwrap();
    }
    let rate = (batches.len() as u64 * size) as f64 / started.elapsed().as_secs_f64();
    remove(&path);
    rate
}

async fn jetstream_append(url: &str, size: u64) -> Option<f64> {
    let unique = format!("{}_{size}", std::process::id());
    let name = format!("ES_BENCH_{unique}");
    let store = JetStream::connect(url, &name, &format!("es_bench_{unique}"))
        .await
        .ok()?;
    let commits = 500.max(2_000 / size);
    let started = Instant::now();
    for i in 0..commits {
        store
            .append(
                "order-bench",
                ExpectedVersion::Exact(i * size),
                batch(i * size + 1, size),
            )
            .await
            .ok()?;
    }
    let rate = (commits * size) as f64 / started.elapsed().as_secs_f64();
    let context = async_nats::jetstream::new(async_nats::connect(url).await.ok()?);
    let _ = context.delete_stream(&name).await;
    let _ = context.delete_stream(format!("{name}_SNAPSHOTS")).await;
    Some(rate)
}

/// Python's `eventsourcing` on the same workload, if `benches/peer.sh` can install it.
fn python_peer() -> Option<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer.sh");
    let output = Command::new("sh").arg(script).output().ok()?;
    if !output.status.success() {
        eprintln!(
            "eventsourcing (Python) not measured: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1_000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    println!("appends per second (events/s), one stream, WAL");
    println!("| durability | batch | bare rusqlite (floor) | lab store | store / floor |");
    println!("|---|---:|---:|---:|---:|");
    for durability in [Durability::Full, Durability::Normal] {
        for size in [1, 10, 100] {
            let floor = floor(durability, size);
            let store = store_append(durability, size);
            println!(
                "| {durability:?} | {size} | {floor:.0} | {store:.0} | {:.2} |",
                store / floor
            );
        }
    }
    if let Ok(url) = std::env::var("NATS_URL") {
        for size in [1, 10, 100] {
            match jetstream_append(&url, size).await {
                Some(rate) => {
                    println!("| JetStream (expected sequence) | {size} | | {rate:.0} | |")
                }
                None => println!("JetStream at {url}: not measured"),
            }
        }
    } else {
        println!("JetStream: not measured (NATS_URL is not set)");
    }
    if let Some(figures) = python_peer() {
        print!("{figures}");
    }

    let sizes: Vec<u64> = std::env::var("ES_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("\nload and replay (synchronous = NORMAL; streams appended in batches of 1000)");
    println!(
        "| events | load without snapshot | load with snapshot (10 events of tail) | replay, read + decode + fold | fold only |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for n in sizes {
        let path = scratch(&format!("load-{n}"));
        let store = Arc::new(Sqlite::open(&path, Durability::Normal)?);
        let mut version = 0;
        while version < n {
            let size = 1_000.min(n - version);
            store
                .append(
                    "order-long",
                    ExpectedVersion::Exact(version),
                    batch(version + 1, size),
                )
                .await?;
            version += size;
        }
        let started = Instant::now();
        let full = load(store.as_ref(), "order-long").await?;
        let without = started.elapsed();
        store
            .save_snapshot(
                "order-long",
                Snapshot::of(&load_at(store.as_ref(), "order-long", n - 10).await?),
            )
            .await?;
        let started = Instant::now();
        let fast = load(store.as_ref(), "order-long").await?;
        let with = started.elapsed();
        assert_eq!(fast, full, "snapshot + tail = full fold");
        let recorded = store.read_stream("order-long", 1, usize::MAX).await?;
        let events = decode_all(recorded)?;
        let started = Instant::now();
        let state = fold(None, &events);
        let fold_only = started.elapsed();
        assert_eq!(state, full.state);
        println!(
            "| {n} | {} | {} | {:.0} events/s | {:.0} events/s |",
            millis(without),
            millis(with),
            n as f64 / without.as_secs_f64(),
            n as f64 / fold_only.as_secs_f64()
        );
        drop(store);
        remove(&path);
    }
    Ok(())
}
