//! The event sourcing lab's demo: `cargo run -p lab-event-sourcing`.
//!
//! It narrates an order's life as events in a real SQLite store: the state after each
//! event, two clerks who conflict (one reloads and retries), the order at version 3 beside
//! now, an old schema-1 event upcast on read, a long stream loaded with and without a
//! snapshot, and a writer process killed mid-batch with the store checked afterwards.
//! `--role store --port N` serves the store's HTTP API alone. Output has colours only on a
//! terminal and never with `NO_COLOR`.

mod demo;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use event_sourcing_core::SnapshotPolicy;
use event_sourcing_store::{Durability, EventStore, JetStream, Sqlite};
use lab_event_sourcing::AppState;
use lab_runtime::Narrator;
use lab_runtime::cli::{Role as LabRole, RoleArgs};

/// Which part of the lab to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    /// The narrated demo (the default).
    #[default]
    Demo,
    /// The store's HTTP API alone, on `--port`, keeping its streams in `--data` (or in NATS
    /// JetStream when `NATS_URL` is set).
    Store,
    /// Appends batches straight to `--data` until killed (the demo's crash).
    Writer,
}

impl LabRole for Role {}

/// The lab's command line.
#[derive(Parser, Debug)]
#[command(about = "The event sourcing lab")]
struct Args {
    #[command(flatten)]
    run: RoleArgs<Role>,
    /// The SQLite file of `--role store` and `--role writer`.
    #[arg(long, default_value = "event-sourcing.db")]
    data: PathBuf,
    /// Snapshot a stream every this many events (`--role store`).
    #[arg(long, default_value_t = 100)]
    snapshot_every: u64,
    /// `synchronous=NORMAL` instead of `FULL` (`--role store`).
    #[arg(long)]
    normal: bool,
    /// The demo's long stream, in events.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// The first stream number `--role writer` writes.
    #[arg(long, default_value_t = 1)]
    from: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lab_runtime::logging::init("warn");
    let args = Args::parse();
    match args.run.role() {
        Role::Demo => demo::run(Narrator::detect(), args.events).await,
        Role::Store => serve(&args).await,
        Role::Writer => lab_event_sourcing::writer::run(&args.data, args.from).await,
    }
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let durability = if args.normal {
        Durability::Normal
    } else {
        Durability::Full
    };
    // NATS JetStream when NATS_URL is set, else the SQLite file.
    let (store, kept_in): (Arc<dyn EventStore>, String) = match std::env::var("NATS_URL") {
        Ok(url) => (
            Arc::new(JetStream::connect(&url, "EVENT_SOURCING_LAB", "event_sourcing_lab").await?),
            format!("NATS JetStream at {url}"),
        ),
        Err(_) => (
            Arc::new(Sqlite::open(&args.data, durability)?),
            args.data.display().to_string(),
        ),
    };
    let listener = match lab_runtime::serve::bind_loopback(args.run.port()).await {
        Ok(listener) => listener,
        Err(error) => anyhow::bail!("cannot listen on port {}: {error}", args.run.port()),
    };
    println!(
        "event store on http://{} (streams in {kept_in})",
        listener.local_addr()?
    );
    let state = AppState {
        store,
        snapshots: SnapshotPolicy {
            every: args.snapshot_every.max(1),
        },
    };
    lab_runtime::serve::serve(
        listener,
        lab_event_sourcing::router(state),
        lab_runtime::serve::ctrl_c(),
    )
    .await?;
    Ok(())
}
