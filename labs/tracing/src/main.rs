//! The Tracing lab's demo: `cargo run -p lab-tracing`.
//!
//! Runs the guide's flow with every service exporting to the lab's collector and narrates
//! what the collector makes of it. `--role collector --port N` serves the collector alone, so
//! any OpenTelemetry SDK can send to it (`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:N`).
//! Output has colours only on a terminal and never with `NO_COLOR`.

use clap::{Parser, ValueEnum};
use lab_runtime::cli::{Role as LabRole, RoleArgs};
use lab_runtime::{Narrator, TokioClock};
use lab_tracing::collector::{CollectorHandle, router};
use lab_tracing::store::Store;

/// Which part of the lab to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    /// The narrated demo (the default).
    #[default]
    Demo,
    /// The collector alone, on `--port`, its spans in `--db` (memory if not given).
    Collector,
}

impl LabRole for Role {}

/// The lab's command line.
#[derive(Parser, Debug)]
#[command(about = "The Tracing lab")]
struct Args {
    #[command(flatten)]
    run: RoleArgs<Role>,
    /// The collector's SQLite file.
    #[arg(long)]
    db: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lab_runtime::logging::init("warn");
    let args = Args::parse();
    match args.run.role() {
        Role::Demo => lab_tracing::demo::run(&mut std::io::stdout(), Narrator::detect()).await,
        Role::Collector => {
            let store = Store::open(args.db.as_deref())?;
            let handle =
                CollectorHandle::start(lab_tracing::demo::demo_config(), store, TokioClock::new());
            let listener = lab_runtime::serve::bind_loopback(args.run.port()).await?;
            println!("collector on http://{}", listener.local_addr()?);
            lab_runtime::serve::serve(listener, router(handle), lab_runtime::serve::ctrl_c())
                .await?;
            Ok(())
        }
    }
}
