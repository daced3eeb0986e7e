//! Progress output for xtask: named steps with timings, and commands whose failure says how to fix it.
//!
//! Long set-up steps (a cold `cargo install` takes minutes) print a line when they start and a line
//! with the elapsed time when they end, so a reader always knows what is happening and what failed.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use owo_colors::OwoColorize;

/// Whether to color output: only on a terminal, and never when `NO_COLOR` is set (the
/// palette every lab's demo and the grader use).
pub fn color() -> bool {
    lab_runtime::Palette::detect_stderr().color
}

/// Print the start of a step, run it, and print how long it took (or that it failed).
pub fn step<T>(name: &str, body: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    if color() {
        eprintln!("{} {}", "▶".cyan().bold(), name.bold());
    } else {
        eprintln!("▶ {name}");
    }
    let started = Instant::now();
    let result = body();
    let elapsed = started.elapsed();
    match &result {
        Ok(_) if color() => eprintln!("{} {name} ({})", "✔".green().bold(), seconds(elapsed)),
        Ok(_) => eprintln!("✔ {name} ({})", seconds(elapsed)),
        Err(_) if color() => eprintln!("{} {name} ({})", "✘".red().bold(), seconds(elapsed)),
        Err(_) => eprintln!("✘ {name} ({})", seconds(elapsed)),
    }
    result.map(|value| (value, elapsed))
}

/// Print a one-line note under the current step.
pub fn note(message: &str) {
    if color() {
        eprintln!("  {}", message.dimmed());
    } else {
        eprintln!("  {message}");
    }
}

/// A duration as seconds with one decimal, the unit every timing in xtask uses.
pub fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// Run a command with inherited output; a non-zero exit becomes an error naming `what`.
pub fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let status = match cmd.status() {
        Ok(status) => status,
        Err(error) => bail!("could not start {what} ({:?}): {error}", cmd.get_program()),
    };
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Run a command and capture its standard output as text, or `None` if it cannot run or fails.
pub fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The final message for a failed xtask run: the error chain, each cause on its own line.
pub fn failure_banner(error: &anyhow::Error) -> String {
    let mut text = String::new();
    let head = if color() {
        format!("{}", "error:".red().bold())
    } else {
        "error:".to_string()
    };
    text.push_str(&format!("{head} {error}"));
    for cause in error.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    text
}
