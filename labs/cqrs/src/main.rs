//! The CQRS lab's binary: `cargo run -p lab-cqrs` runs the narrated demo; `--role all` runs
//! every piece in one process, and `--role write|project|read` one piece each, on the files in
//! `--data` (over NATS JetStream when `NATS_URL` is set). Output has colours only on a
//! terminal and never with `NO_COLOR`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use lab_cqrs::projection::Settings;
use lab_cqrs::system::{self, Pieces};
use lab_cqrs::telemetry::{CqrsTelemetry, SERVICES};
use lab_runtime::Narrator;
use lab_runtime::cli::{Role as LabRole, RoleArgs};

/// Which part of the lab to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    /// The narrated demo (the default).
    #[default]
    Demo,
    /// Every piece in one process.
    All,
    /// The write API (and, over JetStream, the publisher).
    Write,
    /// The projections, `/metrics` and the admin API (and, over the bus, the publisher).
    Project,
    /// The read API and `/metrics`.
    Read,
}

impl LabRole for Role {}

/// The lab's command line.
#[derive(Parser, Debug)]
#[command(about = "The CQRS lab: projections, lag, read-your-writes and rebuilds")]
struct Args {
    #[command(flatten)]
    run: RoleArgs<Role>,
    /// The directory of the store's and the views' SQLite files.
    #[arg(long, default_value = "target/cqrs-lab")]
    data: PathBuf,
    /// NATS server with JetStream; without it, the in-process bus.
    #[arg(long, env = "NATS_URL")]
    nats: Option<String>,
    /// Deliveries per view transaction (1: one transaction per event).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Test hook: the projections stop after committing this position, before acknowledging.
    #[arg(long, env = "CQRS_HALT_AFTER_COMMIT", hide = true)]
    halt_after_commit: Option<u64>,
    /// The demo's pace: 0 runs it without pauses.
    #[arg(long, default_value_t = 1.0)]
    pace: f64,
    /// Trace the write and read APIs to the OTLP/HTTP collector at this base URL (spans go to
    /// `<url>/v1/traces`; `cargo run -p lab-tracing` runs one). Off when not given.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    otlp: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lab_runtime::logging::init("warn");
    let args = Args::parse();
    let pieces = match args.run.role() {
        Role::Demo => {
            let nats = args.nats.clone();
            return lab_cqrs::demo::run(Narrator::detect(), nats.as_deref(), args.pace).await;
        }
        Role::All => Pieces::ALL,
        Role::Write => Pieces {
            write: true,
            project: false,
            read: false,
        },
        Role::Project => Pieces {
            write: false,
            project: true,
            read: false,
        },
        Role::Read => Pieces {
            write: false,
            project: false,
            read: true,
        },
    };
    let settings = Settings {
        batch: args.batch,
        halt_after_commit: args.halt_after_commit,
        ..Settings::default()
    };
    let telemetry = match args.otlp.as_deref().filter(|url| !url.trim().is_empty()) {
        Some(endpoint) => Some(
            CqrsTelemetry::start(endpoint, &SERVICES)
                .await
                .with_context(|| format!("cannot trace to the OTLP endpoint {endpoint}"))?,
        ),
        None => None,
    };
    let started = system::start_traced(
        &args.data,
        pieces,
        args.nats.as_deref(),
        settings,
        telemetry.as_ref(),
    )
    .await?;
    let listener = lab_runtime::serve::bind_loopback(args.run.port()).await?;
    println!(
        "cqrs {:?} on http://{} ({}, data in {})",
        args.run.role(),
        listener.local_addr()?,
        started.transport,
        args.data.display()
    );
    let router = started.router.clone();
    lab_runtime::serve::serve(listener, router, lab_runtime::serve::ctrl_c()).await?;
    drop(started);
    if let Some(telemetry) = telemetry
        && let Err(error) = telemetry.shutdown().await
    {
        tracing::warn!(%error, "could not send the last spans to the collector");
    }
    Ok(())
}
