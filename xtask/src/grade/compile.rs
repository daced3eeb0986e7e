//! Builds a lab's graded test binary and turns a failed build into readable compiler errors.
//!
//! Cargo is asked for JSON messages so the grader can find the test executable's path
//! (from the `compiler-artifact` message) and show exactly the compiler's errors when the
//! learner's code does not build, without cargo's progress lines around them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::excerpt;
use super::manifest::Manifest;
use super::runner::{TestBinary, package_dir_of};

/// Which copy of the graded module to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The learner's copy: the manifest's feature is on.
    Exercise,
    /// The worked example: the feature is off.
    Reference,
}

/// The result of building a test binary.
#[derive(Debug)]
pub enum Build {
    /// The binary, ready to list and run tests.
    Built(TestBinary),
    /// The code did not compile; `errors` are the compiler's diagnostics, ready to print.
    Failed {
        /// One entry per error diagnostic.
        errors: Vec<String>,
        /// Cargo's own error output, for failures that are not compiler errors.
        cargo_stderr: String,
    },
}

/// A build and how long it took.
#[derive(Debug)]
pub struct TimedBuild {
    /// What came out.
    pub build: Build,
    /// Wall time of the cargo invocation.
    pub elapsed: Duration,
}

/// Runs `cargo test --no-run` for the lab's graded target and reads the outcome.
///
/// `colored` asks rustc for ANSI-rendered diagnostics; files in `hidden_files` (the
/// reference solution) are never quoted, only located.
pub fn build(
    root: &Path,
    manifest: &Manifest,
    variant: Variant,
    colored: bool,
) -> anyhow::Result<TimedBuild> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).args([
        "test",
        "--package",
        &manifest.package,
        "--test",
        &manifest.test_target,
        "--no-run",
    ]);
    if variant == Variant::Exercise {
        command.args(["--features", &manifest.feature]);
    }
    command.arg(if colored {
        "--message-format=json-diagnostic-rendered-ansi"
    } else {
        "--message-format=json"
    });
    let started = Instant::now();
    let output = command.output().context("cannot run cargo")?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let messages = parse_messages(
        &stdout,
        &manifest.test_target,
        root,
        &manifest.reference_files,
    );
    let build = match (output.status.success(), messages.binary) {
        (true, Some(binary)) => Build::Built(binary),
        (true, None) => bail!(
            "cargo built {} but reported no executable for test target `{}`",
            manifest.package,
            manifest.test_target
        ),
        (false, _) => Build::Failed {
            errors: messages.errors,
            cargo_stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
    };
    Ok(TimedBuild { build, elapsed })
}

/// What the grader needs from cargo's JSON message stream.
#[derive(Debug, Default)]
struct Messages {
    binary: Option<TestBinary>,
    errors: Vec<String>,
}

fn parse_messages(stream: &str, test_target: &str, root: &Path, hidden: &[PathBuf]) -> Messages {
    let mut messages = Messages::default();
    for line in stream.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match message["reason"].as_str() {
            Some("compiler-artifact") => {
                let is_graded_test =
                    message["target"]["name"] == test_target && message["profile"]["test"] == true;
                if let (true, Some(executable)) = (is_graded_test, message["executable"].as_str()) {
                    let manifest_path = message["manifest_path"].as_str().unwrap_or_default();
                    messages.binary = Some(TestBinary {
                        executable: PathBuf::from(executable),
                        package_dir: package_dir_of(Path::new(manifest_path)),
                    });
                }
            }
            Some("compiler-message") => {
                if let Some(error) = render_error(&message["message"], root, hidden) {
                    messages.errors.push(error);
                }
            }
            _ => {}
        }
    }
    messages
}

/// The printable form of one error diagnostic, or `None` for warnings and the summary line.
fn render_error(diagnostic: &Value, root: &Path, hidden: &[PathBuf]) -> Option<String> {
    let level = diagnostic["level"].as_str()?;
    if !level.starts_with("error") {
        return None;
    }
    let text = diagnostic["message"].as_str().unwrap_or_default();
    let spans = diagnostic["spans"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if spans.is_empty() && text.starts_with("aborting due to") {
        return None;
    }
    let quotes_hidden_file = spans.iter().any(|span| {
        span["file_name"]
            .as_str()
            .is_some_and(|file| is_hidden(Path::new(file), root, hidden))
    });
    if quotes_hidden_file {
        // Say where and what, but never show the reference's lines.
        let location = spans
            .iter()
            .find(|span| span["is_primary"] == true)
            .map(|span| {
                format!(
                    " at {}:{}",
                    span["file_name"].as_str().unwrap_or("?"),
                    span["line_start"]
                )
            })
            .unwrap_or_default();
        return Some(format!("error: {text}{location}"));
    }
    diagnostic["rendered"]
        .as_str()
        .map(|rendered| excerpt::tidy_paths(rendered.trim_end()))
}

fn is_hidden(file: &Path, root: &Path, hidden: &[PathBuf]) -> bool {
    hidden.iter().any(|hidden_file| {
        file == hidden_file || file == root.join(hidden_file) || file.ends_with(hidden_file)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = r#"{"reason":"compiler-message","package_id":"x","message":{"level":"warning","message":"unused variable","spans":[],"rendered":"warning: unused variable"}}
{"reason":"compiler-message","package_id":"x","message":{"level":"error","message":"mismatched types","spans":[{"file_name":"labs/breaker/exercise/machine.rs","line_start":12,"is_primary":true}],"rendered":"error[E0308]: mismatched types\n --> labs/breaker/exercise/machine.rs:12:5\n"}}
{"reason":"compiler-message","package_id":"x","message":{"level":"error","message":"cannot find value `secret`","spans":[{"file_name":"labs/breaker/core/src/machine.rs","line_start":7,"is_primary":true}],"rendered":"error: cannot find value\n7 | let secret = reference_code();\n"}}
{"reason":"compiler-message","package_id":"x","message":{"level":"error","message":"aborting due to 2 previous errors","spans":[],"rendered":"error: aborting due to 2 previous errors"}}
{"reason":"compiler-artifact","target":{"kind":["test"],"name":"graded"},"profile":{"test":true},"manifest_path":"/w/labs/breaker/core/Cargo.toml","executable":"/w/target/debug/deps/graded-abc"}
{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"breaker_core"},"profile":{"test":false},"manifest_path":"/w/labs/breaker/core/Cargo.toml","executable":null}
{"reason":"build-finished","success":true}
"#;

    #[test]
    fn finds_the_graded_executable_and_its_package_folder() {
        let messages = parse_messages(STREAM, "graded", Path::new("/w"), &[]);
        let binary = messages.binary.expect("the graded test artifact");
        assert_eq!(
            binary.executable,
            PathBuf::from("/w/target/debug/deps/graded-abc")
        );
        assert_eq!(binary.package_dir, PathBuf::from("/w/labs/breaker/core"));
    }

    #[test]
    fn keeps_errors_only_and_drops_the_summary() {
        let messages = parse_messages(STREAM, "graded", Path::new("/w"), &[]);
        assert_eq!(messages.errors.len(), 2, "{:?}", messages.errors);
        assert!(messages.errors[0].starts_with("error[E0308]: mismatched types"));
    }

    #[test]
    fn never_quotes_a_hidden_reference_file() {
        let hidden = [PathBuf::from("labs/breaker/core/src/machine.rs")];
        let messages = parse_messages(STREAM, "graded", Path::new("/w"), &hidden);
        assert_eq!(
            messages.errors[1],
            "error: cannot find value `secret` at labs/breaker/core/src/machine.rs:7"
        );
        assert!(
            messages
                .errors
                .iter()
                .all(|error| !error.contains("reference_code"))
        );
    }
}
