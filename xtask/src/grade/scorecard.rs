//! Renders the scorecard: one block per test, hints in steps, the score and a next step.
//!
//! Every function here is pure (text in, text out, colors passed as a [`Style`]) so the
//! unit tests can pin the exact wording a learner sees. The grader prints the blocks as
//! the results come in, in manifest order.

use std::path::Path;
use std::time::Duration;

use super::manifest::{GradedTest, Manifest};
use super::runner::Outcome;
use super::style::Style;
use super::tamper::{Change, TamperCheck};

/// How much help a failing test gets, from the number of times it failed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintStep {
    /// First failure: only the nudge, so the learner can still find the answer alone.
    Nudge,
    /// Failed before: the nudge and the book section that explains it.
    NudgeAndPointer,
}

impl HintStep {
    /// The step for a test that failed `failures_before` times in earlier runs.
    pub fn for_failures_before(failures_before: u32) -> Self {
        if failures_before == 0 {
            HintStep::Nudge
        } else {
            HintStep::NudgeAndPointer
        }
    }
}

/// One test's result, with what the scorecard needs to know from saved progress.
#[derive(Debug, Clone)]
pub struct ScoredTest<'a> {
    /// The manifest entry.
    pub test: &'a GradedTest,
    /// The verdict.
    pub outcome: &'a Outcome,
    /// Failures recorded before this run (selects the hint step).
    pub failures_before: u32,
    /// True when it passed now and never before.
    pub first_pass: bool,
}

/// The title line of a lab's scorecard.
pub fn render_header(manifest: &Manifest, style: Style) -> String {
    style.strong(&format!(
        "Grading lab `{}`: {}",
        manifest.lab, manifest.title
    ))
}

/// One test's block: a verdict line, then for a failure the excerpt and the hints.
pub fn render_test(scored: &ScoredTest<'_>, style: Style) -> String {
    let test = scored.test;
    let label = format!("{}  {}", style.dim(&test.id), test.sentence());
    let mut lines = Vec::new();
    match scored.outcome {
        Outcome::Passed => {
            let mut line = format!("  {}  {label}", style.good("PASS "));
            if scored.first_pass {
                line.push_str(&format!(
                    "  {}",
                    style.good("new: passed for the first time")
                ));
            }
            lines.push(line);
        }
        Outcome::Failed { excerpt } => {
            lines.push(format!("  {}  {label}", style.bad("FAIL ")));
            lines.extend(
                excerpt
                    .iter()
                    .map(|line| format!("        {}", style.dim(line))),
            );
        }
        Outcome::TimedOut { limit } => {
            lines.push(format!(
                "  {}  {label}  {}",
                style.warn("TIME "),
                style.warn(&format!(
                    "timed out after {} — an infinite loop?",
                    seconds(*limit)
                ))
            ));
        }
        Outcome::Crashed {
            description,
            excerpt,
        } => {
            lines.push(format!("  {}  {label}  {description}", style.bad("CRASH")));
            lines.extend(
                excerpt
                    .iter()
                    .map(|line| format!("        {}", style.dim(line))),
            );
        }
    }
    if !scored.outcome.passed() {
        lines.push(format!("      {} {}", style.hint("hint:"), test.nudge));
        if HintStep::for_failures_before(scored.failures_before) == HintStep::NudgeAndPointer {
            lines.push(format!(
                "      {} {}",
                style.hint("read:"),
                book_link(&test.pointer)
            ));
        }
    }
    lines.join("\n")
}

/// A book reference as a path into the built book.
pub fn book_link(page: &str) -> String {
    format!("target/book/{page}")
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

/// The score, the timings and the next step.
pub fn render_summary(
    manifest: &Manifest,
    outcomes: &[&Outcome],
    timings: Timings,
    style: Style,
) -> String {
    let total = outcomes.len();
    let passed = outcomes.iter().filter(|outcome| outcome.passed()).count();
    let percent = percent(passed, total);
    let score = format!("score: {passed}/{total} ({percent}%)");
    let score = if passed == total {
        style.good(&score)
    } else if passed == 0 {
        style.bad(&score)
    } else {
        style.warn(&score)
    };
    let timing = style.dim(&format!(
        "build {} · tests {} · verdict after {}",
        seconds(timings.build),
        seconds(timings.tests),
        seconds(timings.total)
    ));
    let first_failing = manifest
        .tests
        .iter()
        .zip(outcomes)
        .find(|(_, outcome)| !outcome.passed());
    let next = match first_failing {
        Some((test, _)) => format!(
            "next: make `{}` pass ({}) in {}",
            test.name,
            test.id,
            list_files(&manifest.exercise_files)
        ),
        None => format!(
            "next: all {total} tests pass. Read \"In production\" in {}",
            book_link(&manifest.book_page)
        ),
    };
    format!("\n{score}   {timing}\n{}", style.strong(&next))
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

fn list_files(files: &[impl AsRef<Path>]) -> String {
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

    fn failed(message: &str) -> Outcome {
        Outcome::Failed {
            excerpt: vec![message.to_owned()],
        }
    }

    #[test]
    fn hints_come_in_steps() {
        assert_eq!(HintStep::for_failures_before(0), HintStep::Nudge);
        assert_eq!(HintStep::for_failures_before(1), HintStep::NudgeAndPointer);
        assert_eq!(HintStep::for_failures_before(7), HintStep::NudgeAndPointer);
    }

    #[test]
    fn a_first_failure_shows_the_excerpt_and_only_the_nudge() {
        let manifest = sample_manifest();
        let outcome = failed("not yet implemented: state");
        let block = render_test(
            &ScoredTest {
                test: &manifest.tests[0],
                outcome: &outcome,
                failures_before: 0,
                first_pass: false,
            },
            Style::PLAIN,
        );
        assert_eq!(
            block,
            "  FAIL   breaker-01  starts closed\n\
             \x20       not yet implemented: state\n\
             \x20     hint: What state is a fresh breaker in?"
        );
    }

    #[test]
    fn a_repeated_failure_adds_the_book_pointer() {
        let manifest = sample_manifest();
        let outcome = failed("boom");
        let block = render_test(
            &ScoredTest {
                test: &manifest.tests[0],
                outcome: &outcome,
                failures_before: 2,
                first_pass: false,
            },
            Style::PLAIN,
        );
        assert!(
            block.contains("hint: What state is a fresh breaker in?"),
            "{block}"
        );
        assert!(
            block.ends_with("read: target/book/patterns/circuit-breaker.html#states"),
            "{block}"
        );
    }

    #[test]
    fn a_first_pass_is_marked_new_and_a_timeout_suspects_a_loop() {
        let manifest = sample_manifest();
        let passed = Outcome::Passed;
        let block = render_test(
            &ScoredTest {
                test: &manifest.tests[0],
                outcome: &passed,
                failures_before: 3,
                first_pass: true,
            },
            Style::PLAIN,
        );
        assert_eq!(
            block,
            "  PASS   breaker-01  starts closed  new: passed for the first time"
        );

        let timed_out = Outcome::TimedOut {
            limit: Duration::from_secs(10),
        };
        let block = render_test(
            &ScoredTest {
                test: &manifest.tests[1],
                outcome: &timed_out,
                failures_before: 0,
                first_pass: false,
            },
            Style::PLAIN,
        );
        assert!(
            block.starts_with("  TIME   breaker-02  opens after failure rate crosses threshold  timed out after 10 s — an infinite loop?"),
            "{block}"
        );
        assert!(block.contains("hint: Count failures"), "{block}");
    }

    #[test]
    fn the_summary_scores_and_points_at_the_first_failing_test() {
        let manifest = sample_manifest();
        let (passed, failure) = (Outcome::Passed, failed("x"));
        let summary = render_summary(
            &manifest,
            &[&passed, &failure],
            Timings {
                build: Duration::from_millis(840),
                tests: Duration::from_millis(120),
                total: Duration::from_millis(1_010),
            },
            Style::PLAIN,
        );
        assert_eq!(
            summary,
            "\nscore: 1/2 (50%)   build 0.84 s · tests 0.12 s · verdict after 1.01 s\n\
             next: make `window::opens_after_failure_rate_crosses_threshold` pass (breaker-02) \
             in labs/breaker/exercise/machine.rs"
        );
    }

    #[test]
    fn a_full_score_points_at_the_book() {
        let manifest = sample_manifest();
        let passed = Outcome::Passed;
        let summary = render_summary(
            &manifest,
            &[&passed, &passed],
            Timings::default(),
            Style::PLAIN,
        );
        assert!(summary.contains("score: 2/2 (100%)"), "{summary}");
        assert!(summary.contains("all 2 tests pass"), "{summary}");
        assert_eq!(percent(14, 15), 93, "rounded down: 100% means every test");
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
