//! Runs the graded tests, each in its own process with a time limit.
//!
//! A learner's code can panic, loop forever or overflow its stack. Running every test as a
//! separate process (`<binary> <name> --exact`) means one bad test can only fail itself:
//! a panic is that process's exit code, an infinite loop is killed when its time is up,
//! and the grader carries on and reports every test on its own.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::excerpt::failure_excerpt;

/// How one graded test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The test ran and passed.
    Passed,
    /// The test ran and failed; `excerpt` is the useful part of its output.
    Failed {
        /// Panic message and, for property tests, the minimal input and seed.
        excerpt: Vec<String>,
    },
    /// The test was still running when its time was up and was killed.
    TimedOut {
        /// The time limit it exceeded.
        limit: Duration,
    },
    /// The process died without a test verdict (a signal, an abort, a stack overflow).
    Crashed {
        /// What happened, in words.
        description: String,
        /// The last lines it printed.
        excerpt: Vec<String>,
    },
}

impl Outcome {
    /// True only for a pass.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }
}

/// One test's outcome.
#[derive(Debug, Clone)]
pub struct TestRun {
    #[allow(missing_docs)]
    pub outcome: Outcome,
}

/// A built graded test binary and the folder to run it in.
#[derive(Debug, Clone)]
pub struct TestBinary {
    /// The executable cargo produced.
    pub executable: PathBuf,
    /// The package's folder: `cargo test` runs tests there, so relative paths behave the same.
    pub package_dir: PathBuf,
}

impl TestBinary {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.executable);
        command
            .current_dir(&self.package_dir)
            .env("CARGO_MANIFEST_DIR", &self.package_dir)
            // Short panic messages: the excerpt stops where a backtrace would begin anyway.
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null());
        command
    }

    /// The names of the tests in the binary, as libtest lists them.
    pub fn list(&self) -> anyhow::Result<Vec<String>> {
        let output = self
            .command()
            .args(["--list", "--format", "terse"])
            .output()
            .with_context(|| format!("cannot run {}", self.executable.display()))?;
        if !output.status.success() {
            bail!(
                "{} --list failed: {}",
                self.executable.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(parse_list(&String::from_utf8_lossy(&output.stdout)))
    }

    /// Runs one test by exact name in a fresh process, killing it after `limit`.
    pub fn run_one(&self, name: &str, limit: Duration) -> anyhow::Result<TestRun> {
        let started = Instant::now();
        let mut child = self
            .command()
            .args([
                name,
                "--exact",
                "--test-threads=1",
                "--nocapture",
                "--color",
                "never",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", self.executable.display()))?;
        // Drain both pipes on their own threads: a chatty test would otherwise block on a
        // full pipe and look like an infinite loop.
        let stdout_reader = drain(child.stdout.take());
        let stderr_reader = drain(child.stderr.take());
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() >= limit {
                // Kill may fail only if it exited in the meantime; either way, reap it.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = stdout_reader.join().unwrap_or_default();
        let stderr = stderr_reader.join().unwrap_or_default();
        let outcome = match status {
            None => Outcome::TimedOut { limit },
            Some(status) => classify(status, &stdout, &stderr),
        };
        Ok(TestRun { outcome })
    }

    /// Runs `names` with up to `jobs` at a time, reporting each in the given order.
    ///
    /// Results arrive in any order; `report` still sees them in manifest order, so the
    /// scorecard streams top to bottom while the next tests are already running.
    pub fn run_all(
        &self,
        names: &[String],
        jobs: usize,
        limit: Duration,
        mut report: impl FnMut(usize, TestRun),
    ) -> anyhow::Result<()> {
        let next = AtomicUsize::new(0);
        let (sender, receiver) = mpsc::channel();
        std::thread::scope(|scope| -> anyhow::Result<()> {
            for _ in 0..jobs.clamp(1, names.len().max(1)) {
                let sender = sender.clone();
                let next = &next;
                scope.spawn(move || {
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(name) = names.get(index) else { break };
                        if sender.send((index, self.run_one(name, limit))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            let mut waiting = BTreeMap::new();
            let mut next_to_report = 0;
            for (index, run) in receiver {
                waiting.insert(index, run?);
                while let Some(run) = waiting.remove(&next_to_report) {
                    report(next_to_report, run);
                    next_to_report += 1;
                }
            }
            Ok(())
        })
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Turns an exit status and output into a verdict.
///
/// Exit code 0 alone is not a pass: libtest also exits 0 when no test matched the name, so
/// a pass needs "1 passed" in the summary line.
fn classify(status: ExitStatus, stdout: &str, stderr: &str) -> Outcome {
    let passed_count = passed_count(stdout);
    match status.code() {
        Some(0) if passed_count == Some(1) => Outcome::Passed,
        Some(0) => Outcome::Failed {
            excerpt: vec![
                "the test did not run (is it marked #[ignore], or was it renamed?)".to_owned(),
            ],
        },
        Some(101) => Outcome::Failed {
            excerpt: failure_excerpt(stderr, stdout),
        },
        Some(code) => Outcome::Crashed {
            description: format!("the test process exited with code {code}"),
            excerpt: failure_excerpt(stderr, stdout),
        },
        None => Outcome::Crashed {
            description: signal_description(status),
            excerpt: failure_excerpt(stderr, stdout),
        },
    }
}

#[cfg(unix)]
fn signal_description(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(6) => {
            "the test process aborted (SIGABRT: a stack overflow or a panic while panicking?)"
                .to_owned()
        }
        Some(11) => "the test process crashed (SIGSEGV)".to_owned(),
        Some(signal) => format!("the test process was killed by signal {signal}"),
        None => "the test process ended without an exit code".to_owned(),
    }
}

#[cfg(not(unix))]
fn signal_description(_status: ExitStatus) -> String {
    "the test process ended without an exit code".to_owned()
}

/// The `N passed` count of libtest's `test result:` line.
fn passed_count(stdout: &str) -> Option<u32> {
    let summary = stdout
        .lines()
        .rfind(|line| line.starts_with("test result:"))?;
    summary.split(';').find_map(|part| {
        let part = part.trim();
        let part = part.rsplit(". ").next().unwrap_or(part);
        part.strip_suffix(" passed")?.trim().parse().ok()
    })
}

/// Test names from `--list --format terse` (`name: test` lines; benches are skipped).
pub fn parse_list(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// The binary's package folder from its manifest path (`…/core/Cargo.toml` → `…/core`).
pub fn package_dir_of(manifest_path: &Path) -> PathBuf {
    manifest_path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_terse_listing_and_skips_benches() {
        let listing = "starts_closed: test\nwindow::opens_when_rate_crosses: test\nfast: bench\n";
        assert_eq!(
            parse_list(listing),
            vec![
                "starts_closed".to_owned(),
                "window::opens_when_rate_crosses".to_owned()
            ]
        );
    }

    #[test]
    fn reads_the_passed_count_from_the_summary() {
        let ok = "running 1 test\ntest a ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 14 filtered out; finished in 0.00s\n";
        assert_eq!(passed_count(ok), Some(1));
        let none = "running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 15 filtered out\n";
        assert_eq!(passed_count(none), Some(0));
        assert_eq!(passed_count("garbage"), None);
    }
}
