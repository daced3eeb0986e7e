//! A lab's `grading.toml`: which tests are graded, their stable ids and their hints.
//!
//! The manifest is the contract between a lab's tests and the learner's saved progress.
//! Progress is keyed by the stable `id`, never by the test's function name, so a test can
//! be renamed (update `name`, keep `id`) without anyone losing a pass. The list-vs-binary
//! check in [`check_against_listed`] makes a rename that forgot the manifest fail loudly
//! instead of silently resetting progress.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// File name of a lab's manifest, found at `labs/<lab>/grading.toml`.
pub const MANIFEST_FILE: &str = "grading.toml";

/// One lab's grading manifest, as written in `labs/<lab>/grading.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Short lab name, equal to the lab's folder name (`breaker`).
    pub lab: String,
    /// Human title shown in the scorecard header.
    pub title: String,
    /// Cargo package that holds the graded tests.
    pub package: String,
    /// Integration-test target with the graded tests (`graded` for `tests/graded.rs`).
    pub test_target: String,
    /// Cargo feature that swaps the reference module for the learner's copy.
    pub feature: String,
    /// The learner's files, relative to the workspace root (watched by `--watch`).
    pub exercise_files: Vec<PathBuf>,
    /// The graded tests' source, relative to the workspace root (checked for tampering).
    pub tests_file: PathBuf,
    /// The book page of the pattern, relative to the book's root.
    pub book_page: String,
    /// The reference solution's files (optional): compiler errors never quote them.
    #[serde(default)]
    pub reference_files: Vec<PathBuf>,
    /// The graded tests, in teaching order: first principles first, edge cases last.
    #[serde(rename = "test")]
    pub tests: Vec<GradedTest>,
}

/// One graded test and the hints shown when it fails.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GradedTest {
    /// Stable id (`breaker-01`): saved progress is keyed by it, so it never changes.
    pub id: String,
    /// The test's name as libtest lists it (`starts_closed`, or `module::name`).
    pub name: String,
    /// The first hint: a nudge in the right direction without the answer.
    pub nudge: String,
    /// The second hint: the book section that explains it (`page.html#anchor`).
    pub pointer: String,
}

impl GradedTest {
    /// The test's name read as a sentence: `opens_after_failures` → "opens after failures".
    pub fn sentence(&self) -> String {
        let last_segment = self.name.rsplit("::").next().unwrap_or(&self.name);
        last_segment.replace('_', " ")
    }
}

impl Manifest {
    /// Parses a manifest from TOML text and validates it; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let manifest: Manifest = toml::from_str(text)
            .with_context(|| format!("{origin} is not a valid grading manifest"))?;
        let problems = manifest.problems();
        if !problems.is_empty() {
            bail!("{origin} has problems:\n  - {}", problems.join("\n  - "));
        }
        Ok(manifest)
    }

    /// Everything wrong with the manifest's content, one sentence per problem (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("lab", &self.lab),
            ("title", &self.title),
            ("package", &self.package),
            ("test_target", &self.test_target),
            ("feature", &self.feature),
            ("book_page", &self.book_page),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("`{field}` is empty"));
            }
        }
        if self.exercise_files.is_empty() {
            problems.push("`exercise_files` lists no file".to_owned());
        }
        if self.tests.is_empty() {
            problems.push("no [[test]] entries".to_owned());
        }
        let mut ids = BTreeSet::new();
        let mut names = BTreeSet::new();
        for test in &self.tests {
            if test.id.trim().is_empty() || test.id.contains(char::is_whitespace) {
                problems.push(format!(
                    "test `{}` has an empty id or one with spaces",
                    test.name
                ));
            } else if !ids.insert(test.id.as_str()) {
                problems.push(format!(
                    "id `{}` is used twice (ids must be unique)",
                    test.id
                ));
            }
            if test.name.trim().is_empty() {
                problems.push(format!("test `{}` has an empty name", test.id));
            } else if !names.insert(test.name.as_str()) {
                problems.push(format!("test name `{}` is listed twice", test.name));
            }
            if test.nudge.trim().is_empty() {
                problems.push(format!("test `{}` has no nudge", test.id));
            }
            if test.pointer.trim().is_empty() {
                problems.push(format!("test `{}` has no pointer into the book", test.id));
            }
        }
        problems
    }

    /// The test with this libtest name, if the manifest lists it.
    #[cfg(test)]
    pub fn test_named(&self, name: &str) -> Option<&GradedTest> {
        self.tests.iter().find(|test| test.name == name)
    }
}

/// A manifest together with where it was found.
#[derive(Debug, Clone)]
pub struct LabManifest {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Path of the `grading.toml`, relative to the workspace root.
    pub path: PathBuf,
}

/// Reads and validates `labs/<lab>/grading.toml` under `root`.
pub fn load(root: &Path, lab: &str) -> anyhow::Result<LabManifest> {
    let path = Path::new("labs").join(lab).join(MANIFEST_FILE);
    let text = std::fs::read_to_string(root.join(&path))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest = Manifest::parse(&text, &path.display().to_string())?;
    if manifest.lab != lab {
        bail!(
            "{} says lab = \"{}\" but lives in labs/{lab}/: make them agree",
            path.display(),
            manifest.lab
        );
    }
    for file in manifest.exercise_files.iter().chain([&manifest.tests_file]) {
        if !root.join(file).is_file() {
            bail!(
                "{} names {}, which does not exist",
                path.display(),
                file.display()
            );
        }
    }
    Ok(LabManifest { manifest, path })
}

/// Names of the labs that have a grading manifest, sorted.
pub fn discover_labs(root: &Path) -> anyhow::Result<Vec<String>> {
    let labs_dir = root.join("labs");
    let mut labs = Vec::new();
    for entry in std::fs::read_dir(&labs_dir)
        .with_context(|| format!("cannot list {}", labs_dir.display()))?
    {
        let entry = entry?;
        if entry.path().join(MANIFEST_FILE).is_file() {
            labs.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    labs.sort();
    Ok(labs)
}

/// Compares the tests the binary lists with the manifest's; an error names every mismatch.
///
/// Both directions matter: a test missing from the manifest would never be graded, and a
/// manifest entry missing from the binary is usually a renamed test whose progress would
/// otherwise be lost without a word.
pub fn check_against_listed(
    manifest: &Manifest,
    manifest_path: &Path,
    listed: &[String],
) -> anyhow::Result<()> {
    let listed_set: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    let manifest_set: BTreeSet<&str> = manifest.tests.iter().map(|t| t.name.as_str()).collect();
    let mut problems = Vec::new();
    for name in listed_set.difference(&manifest_set) {
        problems.push(format!(
            "test `{name}` is in {} but not in {}: add a [[test]] entry with a new, stable id",
            manifest.tests_file.display(),
            manifest_path.display()
        ));
    }
    for test in &manifest.tests {
        if !listed_set.contains(test.name.as_str()) {
            problems.push(format!(
                "test `{}` (id {}) is in {} but the test binary has no such test: if it was \
                 renamed, update its `name` and keep the id so progress is kept",
                test.name,
                test.id,
                manifest_path.display()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "the graded tests and the manifest disagree:\n  - {}",
            problems.join("\n  - ")
        )
    }
}

/// A two-test manifest shared by the grader's unit tests.
#[cfg(test)]
pub fn sample_manifest() -> Manifest {
    Manifest::parse(SAMPLE, "grading.toml").expect("the sample manifest is valid")
}

#[cfg(test)]
const SAMPLE: &str = r#"
lab = "breaker"
title = "Circuit breaker"
package = "breaker-core"
test_target = "graded"
feature = "exercise"
exercise_files = ["labs/breaker/exercise/machine.rs"]
tests_file = "labs/breaker/core/tests/graded.rs"
book_page = "patterns/circuit-breaker.html"

[[test]]
id = "breaker-01"
name = "starts_closed"
nudge = "What state is a fresh breaker in?"
pointer = "patterns/circuit-breaker.html#states"

[[test]]
id = "breaker-02"
name = "window::opens_after_failure_rate_crosses_threshold"
nudge = "Count failures over the window."
pointer = "patterns/circuit-breaker.html#sliding-window"
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_a_valid_manifest_in_order() {
        let manifest = Manifest::parse(SAMPLE, "grading.toml").unwrap();
        assert_eq!(manifest.lab, "breaker");
        assert_eq!(manifest.tests.len(), 2);
        assert_eq!(manifest.tests[0].id, "breaker-01");
        assert_eq!(
            manifest.tests[1].name,
            "window::opens_after_failure_rate_crosses_threshold"
        );
        assert!(manifest.test_named("starts_closed").is_some());
    }

    #[test]
    fn reads_test_names_as_sentences_without_module_path() {
        let manifest = Manifest::parse(SAMPLE, "grading.toml").unwrap();
        assert_eq!(manifest.tests[0].sentence(), "starts closed");
        assert_eq!(
            manifest.tests[1].sentence(),
            "opens after failure rate crosses threshold"
        );
    }

    #[test]
    fn rejects_duplicate_ids_and_names_and_missing_hints() {
        let broken = SAMPLE
            .replace("breaker-02", "breaker-01")
            .replace(
                "window::opens_after_failure_rate_crosses_threshold",
                "starts_closed",
            )
            .replace("Count failures over the window.", " ");
        let error = Manifest::parse(&broken, "labs/breaker/grading.toml").unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("id `breaker-01` is used twice"),
            "{message}"
        );
        assert!(
            message.contains("test name `starts_closed` is listed twice"),
            "{message}"
        );
        assert!(message.contains("has no nudge"), "{message}");
    }

    #[test]
    fn rejects_a_manifest_missing_a_required_field() {
        let broken = SAMPLE.replace("package = \"breaker-core\"\n", "");
        let error = Manifest::parse(&broken, "labs/breaker/grading.toml").unwrap_err();
        assert!(format!("{error:#}").contains("package"), "{error:#}");
    }

    #[test]
    fn rejects_a_manifest_without_tests() {
        let head = SAMPLE.split("[[test]]").next().unwrap();
        let error = Manifest::parse(head, "grading.toml").unwrap_err();
        assert!(format!("{error:#}").contains("test"), "{error:#}");
    }

    #[test]
    fn listed_tests_matching_the_manifest_pass_the_check() {
        let manifest = Manifest::parse(SAMPLE, "grading.toml").unwrap();
        let listed = vec![
            "window::opens_after_failure_rate_crosses_threshold".to_owned(),
            "starts_closed".to_owned(),
        ];
        check_against_listed(&manifest, Path::new("grading.toml"), &listed).unwrap();
    }

    #[test]
    fn a_renamed_test_is_a_loud_error_naming_both_sides() {
        let manifest = Manifest::parse(SAMPLE, "grading.toml").unwrap();
        let listed = vec![
            "starts_closed".to_owned(),
            "opens_when_failures_cross".to_owned(),
        ];
        let error =
            check_against_listed(&manifest, Path::new("labs/breaker/grading.toml"), &listed)
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("`opens_when_failures_cross` is in"),
            "{error}"
        );
        assert!(error.contains("add a [[test]] entry"), "{error}");
        assert!(
            error.contains("`window::opens_after_failure_rate_crosses_threshold` (id breaker-02)"),
            "{error}"
        );
        assert!(error.contains("keep the id"), "{error}");
        assert!(!error.contains("`starts_closed`"), "{error}");
    }
}
