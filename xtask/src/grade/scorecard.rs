//! Renders the parts of a scorecard around the results: the title, the warning about
//! edited tests, compiler errors, and the numbers (percentages, durations).
//!
//! Every function here is pure (text in, text out, colors passed as a [`Style`]) so the
//! unit tests can pin the exact wording a learner sees; the results themselves are laid
//! out by [`super::card`].

use std::path::Path;
use std::time::Duration;

use super::manifest::Manifest;
use super::tamper::{Change, TamperCheck};
use lab_runtime::Palette as Style;

/// The title line of a lab's scorecard.
pub fn render_header(manifest: &Manifest, style: Style) -> String {
    style.strong(&format!(
        "Grading lab `{}`: {}",
        manifest.lab, manifest.title
    ))
}

/// Timings of one grading run, shown under the score.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// The cargo build (warm: only the learner's crate recompiles).
    pub build: Duration,
    /// Running every test.
    pub tests: Duration,
    /// From the start of grading (or the file change, in watch mode) to the verdict.
    pub total: Duration,
}

/// A whole-number percentage, rounded down so only a full score shows 100%.
pub fn percent(passed: usize, total: usize) -> usize {
    (passed * 100).checked_div(total).unwrap_or(0)
}

/// The warning (or note) about the graded files not matching the committed version.
pub fn render_tamper(check: &TamperCheck, style: Style) -> Option<String> {
    match check {
        TamperCheck::Unchanged => None,
        TamperCheck::Changed(files) => {
            let mut lines = vec![style.warn(
                "WARNING: the graded tests are not the committed ones, so this score does not count.",
            )];
            for (file, change) in files {
                let how = match change {
                    Change::Modified => "differs from the committed version",
                    Change::Untracked => "is not committed",
                };
                lines.push(format!("  {} {how}", file.display()));
            }
            if files.iter().any(|(_, change)| *change == Change::Modified) {
                lines.push("  Restore with `git restore --source=HEAD -- <file>`.".to_owned());
            }
            lines.push("  Progress is not saved until the graded files match the commit.".to_owned());
            Some(lines.join("\n"))
        }
        TamperCheck::Unavailable(reason) => Some(style.dim(&format!(
            "note: could not check the graded tests against git ({reason}), so the score is unverified."
        ))),
    }
}

/// Compiler errors from a build of the learner's code, framed so they read as "fix this first".
pub fn render_build_failure(
    manifest: &Manifest,
    errors: &[String],
    cargo_stderr: &str,
    style: Style,
) -> String {
    if errors.is_empty() {
        // Not the learner's code: cargo itself failed (a broken manifest, a missing file).
        return format!(
            "{}\n\n{}",
            style.bad(&format!(
                "cargo could not build {}'s graded tests:",
                manifest.package
            )),
            cargo_stderr.trim_end()
        );
    }
    let mut text = String::new();
    text.push_str(&style.bad(&format!(
        "The exercise does not compile ({}): no test can run yet.",
        list_files(&manifest.exercise_files)
    )));
    text.push_str("\n\n");
    text.push_str(&errors.join("\n\n"));
    text.push_str(&format!(
        "\n\n{}",
        style.strong(&format!(
            "next: fix the {} above, then grade again",
            if errors.len() == 1 { "error" } else { "errors" }
        ))
    ));
    text
}

/// The files, comma-separated.
pub fn list_files(files: &[impl AsRef<Path>]) -> String {
    files
        .iter()
        .map(|file| file.as_ref().display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration for people: `0.84 s`, `12 s`.
pub fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.2} s")
    } else {
        format!("{secs:.0} s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use super::*;
    use crate::grade::manifest::sample_manifest;

    #[test]
    fn percentages_round_down_and_durations_read_as_seconds() {
        assert_eq!(percent(14, 15), 93, "rounded down: 100% means every test");
        assert_eq!(percent(0, 0), 0);
        assert_eq!(seconds(Duration::from_millis(840)), "0.84 s");
        assert_eq!(seconds(Duration::from_secs(12)), "12 s");
    }

    #[test]
    fn a_changed_test_file_says_the_score_does_not_count() {
        let check = TamperCheck::Changed(vec![(
            PathBuf::from("labs/breaker/core/tests/graded.rs"),
            Change::Modified,
        )]);
        let warning = render_tamper(&check, Style::PLAIN).unwrap();
        assert!(warning.contains("this score does not count"), "{warning}");
        assert!(
            warning.contains("labs/breaker/core/tests/graded.rs differs"),
            "{warning}"
        );
        assert!(render_tamper(&TamperCheck::Unchanged, Style::PLAIN).is_none());
        let note = render_tamper(
            &TamperCheck::Unavailable("git could not run".into()),
            Style::PLAIN,
        )
        .unwrap();
        assert!(note.contains("could not check"), "{note}");
    }

    #[test]
    fn a_build_failure_shows_the_compiler_errors_and_what_to_do() {
        let manifest = sample_manifest();
        let text = render_build_failure(
            &manifest,
            &["error[E0308]: mismatched types".to_owned()],
            "",
            Style::PLAIN,
        );
        assert!(text.starts_with("The exercise does not compile"), "{text}");
        assert!(text.contains("error[E0308]"), "{text}");
        assert!(
            text.ends_with("next: fix the error above, then grade again"),
            "{text}"
        );
    }
}
