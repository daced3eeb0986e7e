//! `cargo xtask`: the project's only build script.
//!
//! Every way into the project goes through here, so a fresh machine needs nothing but a Rust
//! toolchain (and apt for system packages):
//!
//! - `cargo xtask serve` installs what is missing, builds the playground to WebAssembly, builds
//!   the book and serves it with live reload on <http://127.0.0.1:3000>;
//! - `cargo xtask test` runs everything CI checks, phase by phase, with timings;
//! - `cargo xtask book` builds the static book into `target/book` without serving it;
//! - `cargo xtask grade` scores a learner's exercise; `cargo xtask bench` runs the benchmarks;
//! - `cargo xtask fuzz` runs a lab's cargo-fuzz targets for a while;
//! - `cargo xtask mutants` measures how many wrong answers a lab's graded tests catch.
//!
//! Tool versions live in one place, [`tools`]; each step is idempotent so a second run only
//! redoes what changed.

mod book;
mod fuzz;
mod grade;
mod mutants;
mod nats;
mod needs;
mod new_lab;
mod step;
mod test;
mod tidy;
mod tools;
mod wasm;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Command line of `cargo xtask`.
#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    about = "Set up, build, serve, test and grade Microservices in Motion"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Install the pinned tools the book and the tests need (idempotent).
    Setup {
        /// Also install what the browser tests need (Chromium and chromedriver).
        #[arg(long)]
        browser: bool,
    },
    /// Build the playground (WASM) and the book into target/book.
    Book,
    /// Build the book and serve it on http://127.0.0.1:3000 with live reload.
    Serve {
        /// Port to serve on.
        #[arg(long, default_value_t = 3000, env = "BOOK_PORT")]
        port: u16,
    },
    /// Run every check CI runs: fmt, tidy, book, clippy, tests, browser tests, grader.
    Test,
    /// Check the project's invariants (doc comments, pure cores, pinned versions, book includes).
    Tidy,
    /// Grade a learner's exercise against the lab's graded tests.
    Grade(grade::GradeArgs),
    /// Lay out a new lab in the shape every lab has (core, exercise, grading, services, chapter
    /// fragment, solution page), e.g. `cargo xtask new-lab discovery --chapter book/src/patterns/service-discovery.md`.
    NewLab {
        /// The lab's name: lower-case words joined by `-` (crates `lab-NAME` and `NAME-core`).
        name: String,
        /// The book page the lab belongs to; its fragment is included at the end of it.
        #[arg(long)]
        chapter: PathBuf,
        /// The core crate's name when `NAME-core` is taken (it must end in `-core`).
        #[arg(long)]
        core: Option<String>,
    },
    /// Run a lab's cargo-fuzz targets (e.g. `cargo xtask fuzz gateway --seconds 60`).
    Fuzz {
        /// The lab whose `fuzz/` targets to run.
        lab: String,
        /// How long to run each target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Mutation-test a lab's graded modules with its graded tests (e.g. `cargo xtask mutants gateway`).
    Mutants(mutants::MutantsArgs),
    /// Run a lab's benchmarks in release mode (criterion), e.g. `cargo xtask bench breaker`.
    Bench {
        /// The lab whose benchmarks to run (crate `lab-<name>`).
        lab: String,
        /// Extra arguments passed to criterion (after `--`).
        #[arg(last = true)]
        criterion_args: Vec<String>,
    },
}

fn main() {
    if let Err(error) = run() {
        // Failing graded tests are a score, not an error: the scorecard said it all.
        if error.downcast_ref::<grade::NotAllPass>().is_none() {
            eprintln!("{}", step::failure_banner(&error));
        }
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root()?;
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot enter the workspace root {}", root.display()))?;
    match cli.command {
        Command::Setup { browser } => {
            tools::ensure_book_tools()?;
            wasm::ensure_toolchain()?;
            if browser {
                tools::ensure_browser()?;
            }
            Ok(())
        }
        Command::Book => book::build(&root),
        Command::Serve { port } => book::serve(&root, port),
        Command::Test => test::run(&root),
        Command::Tidy => tidy::run(&root),
        Command::Grade(args) => grade::run(&args),
        Command::NewLab {
            name,
            chapter,
            core,
        } => new_lab::run(&root, &name, core.as_deref(), &chapter),
        Command::Fuzz { lab, seconds } => fuzz::run(&lab, seconds),
        Command::Mutants(args) => mutants::run(&root, &args),
        Command::Bench {
            lab,
            criterion_args,
        } => {
            if lab == "discovery" && !tools::apt_has(tools::APT_ETCD[0]) {
                tools::apt_install(tools::APT_ETCD)?;
            }
            let mut cmd = std::process::Command::new(tools::cargo());
            cmd.args(["bench", "-p", &format!("lab-{lab}")]);
            if !criterion_args.is_empty() {
                cmd.arg("--").args(&criterion_args);
            }
            step::run_checked(&mut cmd, &format!("benchmarks of lab-{lab}"))
        }
    }
}

/// The workspace root: xtask lives in `<root>/xtask`, and cargo tells us where that is.
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .context("xtask's manifest has no parent directory")
}
