//! `cargo xtask test`: everything CI checks, as named phases with the time each took.
//!
//! The order puts cheap checks first (format, tidy) so a mistake fails in seconds, then builds the
//! book, because the browser tests in the workspace test suite read the built book.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{book, grade, mutants, needs, step, tidy, tools, wasm};

type Phase<'a> = (&'static str, Box<dyn FnOnce() -> Result<()> + 'a>);

/// Run every phase in order, stopping at the first failure, then print the timings.
pub fn run(root: &Path) -> Result<()> {
    let started = Instant::now();
    let cargo =
        |args: &'static [&'static str], what: &'static str| -> Box<dyn FnOnce() -> Result<()>> {
            Box::new(move || {
                let mut cmd = Command::new(tools::cargo());
                cmd.args(args);
                step::run_checked(&mut cmd, what)
            })
        };
    let mut phases: Vec<Phase> = vec![
        (
            "install test tools (Chromium, chromedriver)",
            Box::new(tools::ensure_browser),
        ),
        (
            "format (cargo fmt --check)",
            cargo(
                &["fmt", "--all", "--check"],
                "cargo fmt --check (run `cargo fmt --all` to fix)",
            ),
        ),
        (
            "tidy (doc comments, pure cores, pins, book includes)",
            Box::new(|| tidy::run(root)),
        ),
        (
            "mutation-test survivors (each lab's accepted list matches its reference files)",
            Box::new(|| mutants::check_lists_are_current(root)),
        ),
        (
            "book (playground WASM + mdbook build)",
            Box::new(|| book::build(root)),
        ),
        (
            "lints (cargo clippy --workspace --all-targets -D warnings)",
            cargo(
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--quiet",
                    "--",
                    "-D",
                    "warnings",
                ],
                "cargo clippy",
            ),
        ),
        (
            "tests (cargo test --workspace, browser tests included)",
            Box::new(move || {
                let mut cmd = Command::new(tools::cargo());
                cmd.args(["test", "--workspace"])
                    .env("BOOK_DIR", root.join("target/book"));
                step::run_checked(&mut cmd, "cargo test --workspace")
            }),
        ),
        (
            "playground bindings (wasm-bindgen-test under Node)",
            Box::new(|| wasm::test(root)),
        ),
        (
            "grader (reference scores 100%, untouched exercises 0%)",
            Box::new(|| {
                grade::run(&grade::GradeArgs {
                    lab: None,
                    watch: false,
                    reference: true,
                    timeout: 30,
                    jobs: 2,
                    card: grade::CardArgs::default(),
                })
            }),
        ),
    ];
    let labs = needs::read(root)?;
    if needs::any_wants_nats(&labs) {
        phases.push((
            "tests that need NATS JetStream (one nats-server -js, labs' lab.toml)",
            Box::new(move || needs::run_nats_tests(root, &labs)),
        ));
    }
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut failed = None;
    for (name, body) in phases {
        match step::step(name, body) {
            Ok(((), elapsed)) => timings.push((name, elapsed)),
            Err(error) => {
                failed = Some((name, error));
                break;
            }
        }
    }
    eprintln!("\nPhase timings:");
    for (name, elapsed) in &timings {
        eprintln!("  {:>8}  {name}", step::seconds(*elapsed));
    }
    eprintln!("  {:>8}  total", step::seconds(started.elapsed()));
    if let Some((name, error)) = failed {
        bail!("phase \"{name}\" failed: {error:#}");
    }
    eprintln!("All checks passed.");
    Ok(())
}
