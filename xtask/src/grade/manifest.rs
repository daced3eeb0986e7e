//! A lab's `grading.toml`: which tests are graded, their stable ids and their hints.
//!
//! The manifest is the contract between a lab's tests and the learner's saved progress.
//! Progress is keyed by the stable `id`, never by the test's function name, so a test can
//! be renamed (update `name`, keep `id`) without anyone losing a pass. The list-vs-binary
//! check in [`check_against_listed`] makes a rename that forgot the manifest fail loudly
//! instead of silently resetting progress.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Hints for a property test, by the invariant its failure names: a graded assertion
    /// checking a named invariant panics with `invariant: <name>`, and the hint written
    /// for that name replaces the generic nudge (`[test.hints_by_invariant]`, optional).
    #[serde(default)]
    pub hints_by_invariant: BTreeMap<String, String>,
}

/// What a graded assertion's panic message says before the name of the invariant it checks.
pub const INVARIANT_MARKER: &str = "invariant: ";

impl GradedTest {
    /// The test's name read as a sentence: `opens_after_failures` → "opens after failures".
    pub fn sentence(&self) -> String {
        let last_segment = self.name.rsplit("::").next().unwrap_or(&self.name);
        last_segment.replace('_', " ")
    }

    /// The first invariant named in a failure's output (`invariant: <name>`) that has a
    /// hint in `hints_by_invariant`, with that hint.
    pub fn invariant_hint(&self, output: &[String]) -> Option<(&str, &str)> {
        output
            .iter()
            .flat_map(|line| named_invariants(line))
            .find_map(|name| self.hints_by_invariant.get_key_value(name))
            .map(|(name, hint)| (name.as_str(), hint.as_str()))
    }

    /// The hint for a failure with this output: the broken invariant's, else the nudge.
    pub fn hint_for(&self, output: &[String]) -> &str {
        self.invariant_hint(output)
            .map_or(self.nudge.as_str(), |(_, hint)| hint)
    }
}

/// The invariant names in one line of output, in order (`invariant: at_most_n_trials`).
pub fn named_invariants(line: &str) -> impl Iterator<Item = &str> {
    line.match_indices(INVARIANT_MARKER).filter_map(|(at, _)| {
        let rest = &line[at + INVARIANT_MARKER.len()..];
        let length = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..length];
        is_snake_case(name).then_some(name)
    })
}

/// `lower_snake_case`: what an invariant's name must look like.
pub fn is_snake_case(name: &str) -> bool {
    name.starts_with(|ch: char| ch.is_ascii_lowercase() || ch == '_')
        && name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
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
            for (invariant, hint) in &test.hints_by_invariant {
                if !is_snake_case(invariant) {
                    problems.push(format!(
                        "test `{}`: invariant `{invariant}` in hints_by_invariant is not a \
                         snake_case name (the test's panic says `invariant: <name>`)",
                        test.id
                    ));
                }
                if hint.trim().is_empty() {
                    problems.push(format!(
                        "test `{}`: invariant `{invariant}` has an empty hint",
                        test.id
                    ));
                }
            }
        }
        problems
    }

    /// The test `--only` names, by stable id (`breaker-05`) or by libtest name.
    pub fn select(&self, id_or_name: &str) -> anyhow::Result<&GradedTest> {
        self.tests
            .iter()
            .find(|test| test.id == id_or_name || test.name == id_or_name)
            .with_context(|| {
                let ids: Vec<&str> = self.tests.iter().map(|test| test.id.as_str()).collect();
                format!(
                    "lab `{}` has no graded test `{id_or_name}`; its ids are {}",
                    self.lab,
                    ids.join(", ")
                )
            })
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

[test.hints_by_invariant]
at_most_n_trials = "A finished trial does not free its slot: HalfOpen admits N trials in all."
rates_after_all_trials = "Judge the trials only once every one has an outcome."
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
    fn only_selects_a_test_by_id_or_name_and_lists_the_ids_otherwise() {
        let manifest = Manifest::parse(SAMPLE, "grading.toml").unwrap();
        assert_eq!(manifest.select("breaker-02").unwrap().id, "breaker-02");
        assert_eq!(manifest.select("starts_closed").unwrap().id, "breaker-01");
        let error = manifest.select("breaker-99").unwrap_err().to_string();
        assert_eq!(
            error,
            "lab `breaker` has no graded test `breaker-99`; its ids are breaker-01, breaker-02"
        );
    }

    #[test]
    fn hints_by_invariant_are_optional_and_belong_to_their_test() {
        let manifest = Manifest::parse(SAMPLE, "grading.toml").unwrap();
        assert!(manifest.tests[0].hints_by_invariant.is_empty());
        let hints = &manifest.tests[1].hints_by_invariant;
        assert_eq!(
            hints.keys().collect::<Vec<_>>(),
            ["at_most_n_trials", "rates_after_all_trials"]
        );
    }

    #[test]
    fn a_failure_naming_an_invariant_gets_that_invariants_hint() {
        let manifest = Manifest::parse(SAMPLE, "grading.toml").unwrap();
        let test = &manifest.tests[1];
        let output = vec![
            "thread 'x' panicked at tests/graded.rs:5:1:".to_owned(),
            "Test failed: invariant: at_most_n_trials: admitted 4 trials, allowed 3.".to_owned(),
            "minimal failing input: trials = 3".to_owned(),
        ];
        assert_eq!(
            test.invariant_hint(&output),
            Some((
                "at_most_n_trials",
                "A finished trial does not free its slot: HalfOpen admits N trials in all."
            ))
        );
        assert_eq!(
            test.hint_for(&output),
            "A finished trial does not free its slot: HalfOpen admits N trials in all."
        );
    }

    #[test]
    fn an_unknown_or_absent_invariant_falls_back_to_the_nudge() {
        let manifest = Manifest::parse(SAMPLE, "grading.toml").unwrap();
        let test = &manifest.tests[1];
        let unknown = vec!["invariant: no_such_rule (left: 1, right: 2)".to_owned()];
        assert_eq!(test.invariant_hint(&unknown), None);
        assert_eq!(test.hint_for(&unknown), "Count failures over the window.");
        let plain = vec!["assertion `left == right` failed".to_owned()];
        assert_eq!(test.hint_for(&plain), "Count failures over the window.");
        let first_known =
            vec!["invariant: no_such_rule, then invariant: rates_after_all_trials".to_owned()];
        assert_eq!(
            test.invariant_hint(&first_known).map(|(name, _)| name),
            Some("rates_after_all_trials")
        );
    }

    #[test]
    fn rejects_an_invariant_name_that_is_not_snake_case_or_an_empty_hint() {
        let broken = SAMPLE
            .replace("at_most_n_trials =", "\"At most N\" =")
            .replace(
                "\"Judge the trials only once every one has an outcome.\"",
                "\" \"",
            );
        let error = Manifest::parse(&broken, "grading.toml").unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("`At most N`"), "{message}");
        assert!(message.contains("not a snake_case name"), "{message}");
        assert!(
            message.contains("invariant `rates_after_all_trials` has an empty hint"),
            "{message}"
        );
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
