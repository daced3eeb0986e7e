//! The learner's saved progress: `<root>/.grade/progress.json` (gitignored).
//!
//! Keyed by lab and by the manifest's stable test id, never by function name, so renaming
//! a test keeps its history. The saved failure count drives the hint steps (a nudge the
//! first time a test fails, the book pointer after that), and "passed ever" lets the
//! scorecard celebrate a test passing for the first time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::runner::Outcome;

/// Folder (under the workspace root) that holds grader state.
pub const STATE_DIR: &str = ".grade";
const PROGRESS_FILE: &str = "progress.json";

/// Everything saved, for all labs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    /// Format version, bumped if the shape ever changes incompatibly.
    pub version: u32,
    /// Progress per lab name.
    pub labs: BTreeMap<String, LabProgress>,
}

/// One lab's progress, per stable test id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabProgress {
    /// Per-test records keyed by stable id (`breaker-01`).
    pub tests: BTreeMap<String, TestProgress>,
}

/// What we remember about one test.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestProgress {
    /// True once the test has passed at least once.
    pub passed_ever: bool,
    /// How many times the test was graded.
    pub attempts: u32,
    /// How many of those attempts failed or timed out.
    pub failures: u32,
    /// When it first passed, as an RFC 3339 UTC timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_passed_at: Option<String>,
}

impl Progress {
    /// The saved record of one test, if any.
    pub fn test(&self, lab: &str, id: &str) -> Option<&TestProgress> {
        self.labs.get(lab)?.tests.get(id)
    }

    /// How many times this test failed before the current run (drives the hint step).
    pub fn failures_before(&self, lab: &str, id: &str) -> u32 {
        self.test(lab, id).map_or(0, |record| record.failures)
    }

    /// Folds one run's outcomes in; returns the ids that passed for the first time.
    pub fn record<'a>(
        &mut self,
        lab: &str,
        outcomes: impl IntoIterator<Item = (&'a str, &'a Outcome)>,
        now: &str,
    ) -> Vec<String> {
        self.version = 1;
        let lab_progress = self.labs.entry(lab.to_owned()).or_default();
        let mut newly_passed = Vec::new();
        for (id, outcome) in outcomes {
            let record = lab_progress.tests.entry(id.to_owned()).or_default();
            record.attempts += 1;
            if outcome.passed() {
                if !record.passed_ever {
                    record.passed_ever = true;
                    record.first_passed_at = Some(now.to_owned());
                    newly_passed.push(id.to_owned());
                }
            } else {
                record.failures += 1;
            }
        }
        newly_passed
    }
}

/// Where the progress file lives under the workspace root.
pub fn progress_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join(PROGRESS_FILE)
}

/// Reads saved progress; a missing file is a fresh start.
///
/// A file that cannot be parsed is moved aside (not overwritten) so a learner's history is
/// never destroyed by a bug or a hand edit, and grading goes on from scratch.
pub fn load(path: &Path) -> anyhow::Result<(Progress, Option<String>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Progress::default(), None));
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    match serde_json::from_str(&text) {
        Ok(progress) => Ok((progress, None)),
        Err(error) => {
            let aside = path.with_extension("json.unreadable");
            std::fs::rename(path, &aside)
                .with_context(|| format!("cannot move {} aside", path.display()))?;
            let warning = format!(
                "{} could not be read ({error}); it was moved to {} and progress starts afresh",
                path.display(),
                aside.display()
            );
            Ok((Progress::default(), Some(warning)))
        }
    }
}

/// Writes progress atomically (temporary file, then rename), so Ctrl-C never leaves half a file.
pub fn save(path: &Path, progress: &Progress) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(progress)?;
    std::fs::write(&temporary, text + "\n")
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The current time as an RFC 3339 UTC timestamp.
pub fn now_rfc3339() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    rfc3339_from_unix(seconds)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
///
/// Uses Howard Hinnant's days-to-civil algorithm, which is exact for the proleptic
/// Gregorian calendar; a date crate would be a dependency for a single line of output.
pub fn rfc3339_from_unix(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let second_of_day = seconds % 86_400;
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pass() -> Outcome {
        Outcome::Passed
    }

    fn fail() -> Outcome {
        Outcome::Failed {
            excerpt: vec!["boom".to_owned()],
        }
    }

    #[test]
    fn formats_unix_times_as_rfc3339() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_unix(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn records_attempts_failures_and_the_first_pass_once() {
        let mut progress = Progress::default();
        let (passed, failed) = (pass(), fail());
        let newly = progress.record("breaker", [("b-01", &failed), ("b-02", &passed)], "T1");
        assert_eq!(newly, vec!["b-02".to_owned()]);

        let newly = progress.record("breaker", [("b-01", &passed), ("b-02", &passed)], "T2");
        assert_eq!(newly, vec!["b-01".to_owned()], "b-02 is not new any more");

        let first = progress.test("breaker", "b-01").unwrap();
        assert_eq!(
            (first.attempts, first.failures, first.passed_ever),
            (2, 1, true)
        );
        assert_eq!(first.first_passed_at.as_deref(), Some("T2"));
        let second = progress.test("breaker", "b-02").unwrap();
        assert_eq!(
            second.first_passed_at.as_deref(),
            Some("T1"),
            "first pass time is kept"
        );
    }

    #[test]
    fn a_later_failure_keeps_passed_ever_and_counts() {
        let mut progress = Progress::default();
        let (passed, failed) = (pass(), fail());
        progress.record("breaker", [("b-01", &passed)], "T1");
        progress.record("breaker", [("b-01", &failed)], "T2");
        let record = progress.test("breaker", "b-01").unwrap();
        assert!(record.passed_ever);
        assert_eq!(progress.failures_before("breaker", "b-01"), 1);
        assert_eq!(progress.failures_before("breaker", "unknown"), 0);
    }

    #[test]
    fn labs_are_kept_apart_and_unknown_ids_survive_a_merge() {
        let mut progress = Progress::default();
        let passed = pass();
        progress.record("breaker", [("b-retired", &passed)], "T1");
        progress.record("saga", [("s-01", &passed)], "T1");
        progress.record("breaker", [("b-01", &passed)], "T2");
        assert!(
            progress.test("breaker", "b-retired").is_some(),
            "history is never dropped"
        );
        assert!(progress.test("saga", "b-01").is_none());
    }

    #[test]
    fn saves_and_loads_round_trip_and_moves_a_corrupt_file_aside() {
        let dir = std::env::temp_dir().join(format!("grade-progress-test-{}", std::process::id()));
        let path = dir.join("progress.json");
        let mut progress = Progress::default();
        progress.record("breaker", [("b-01", &pass())], "T1");
        save(&path, &progress).unwrap();
        let (loaded, warning) = load(&path).unwrap();
        assert_eq!(loaded, progress);
        assert!(warning.is_none());

        std::fs::write(&path, "{ not json").unwrap();
        let (loaded, warning) = load(&path).unwrap();
        assert_eq!(loaded, Progress::default());
        assert!(warning.unwrap().contains("moved to"));
        assert!(dir.join("progress.json.unreadable").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
