//! The Discovery lab's demo: `cargo run -p lab-discovery`.
//!
//! It drives the core through a short script on a simulated clock and narrates each step, so
//! a reader sees the machine work before reading its code. `--role service --port N` serves
//! the lab's router instead. Output has colours only on a terminal and never with `NO_COLOR`.

use clap::{Parser, ValueEnum};
use discovery_core::{Config, Millis, Registry};
use lab_runtime::cli::{Role as LabRole, RoleArgs};
use lab_runtime::{Narrator, Palette};

/// Which part of the lab to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Role {
    /// The narrated demo (the default).
    #[default]
    Demo,
    /// The lab's HTTP service alone, on `--port`.
    Service,
}

impl LabRole for Role {}

/// The lab's command line.
#[derive(Parser, Debug)]
#[command(about = "The Discovery lab")]
struct Args {
    #[command(flatten)]
    run: RoleArgs<Role>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(Palette::detect_stderr().color)
        .init();
    let args = Args::parse();
    match args.run.role() {
        Role::Demo => demo(Narrator::detect()),
        Role::Service => serve(args.run.port()).await,
    }
}

fn demo(narrator: Narrator) -> anyhow::Result<()> {
    let registry = Registry::new(Config::default());
    println!("{}", narrator.step("A service registry"));
    println!(
        "{}",
        narrator.at(
            Millis(0),
            "registry",
            &format!("{} instances", registry.len())
        )
    );
    Ok(())
}

async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = lab_runtime::serve::bind_loopback(port).await?;
    println!("discovery on http://{}", listener.local_addr()?);
    lab_runtime::serve::serve(
        listener,
        {
            let settings = lab_discovery::Settings::default();
            lab_discovery::RegistryService::start(&settings, lab_runtime::TokioClock::new())?
                .router(&settings)
        },
        lab_runtime::serve::ctrl_c(),
    )
    .await?;
    Ok(())
}
