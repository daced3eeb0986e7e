//! `cargo xtask fuzz <lab>`: run every cargo-fuzz target of a lab for a while.
//!
//! cargo-fuzz builds with libFuzzer's coverage instrumentation and AddressSanitizer, whose
//! flags (`-Zsanitizer=address` and friends) stable rustc refuses. The sanitizer runtimes do
//! ship with stable toolchains, so `RUSTC_BOOTSTRAP=1` lets the stable compiler accept the
//! flags instead of requiring a nightly toolchain (which this project cannot download). The
//! corpus each run grows stays in `labs/<lab>/fuzz/corpus/` (ignored by git) and seeds the
//! next run; a crash leaves its input in `labs/<lab>/fuzz/artifacts/` and fails the command.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{step, tools};

/// Runs each fuzz target of `lab` for `seconds`.
pub fn run(lab: &str, seconds: u64) -> Result<()> {
    let dir = Path::new("labs").join(lab);
    if !dir.join("fuzz").join("Cargo.toml").is_file() {
        bail!("labs/{lab}/fuzz/Cargo.toml not found: lab {lab:?} has no fuzz targets");
    }
    tools::ensure_cargo_fuzz()?;
    let listed = Command::new(tools::cargo())
        .args(["fuzz", "list"])
        .current_dir(&dir)
        .output()
        .context("running cargo fuzz list")?;
    let targets: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!("cargo fuzz list found no targets in labs/{lab}/fuzz");
    }
    for target in &targets {
        step::step(&format!("fuzz {lab}/{target} for {seconds} s"), || {
            let mut cmd = Command::new(tools::cargo());
            cmd.args(["fuzz", "run", target, "--"])
                .arg(format!("-max_total_time={seconds}"))
                .current_dir(&dir)
                .env("RUSTC_BOOTSTRAP", "1");
            step::run_checked(&mut cmd, &format!("cargo fuzz run {target}")).with_context(|| {
                format!("{target} found a crash: see labs/{lab}/fuzz/artifacts/{target}/")
            })
        })?;
    }
    Ok(())
}
