//! `cargo xtask grade --reference`: proves the graded tests can tell right from wrong.
//!
//! A test that passes against the `todo!()` exercise checks nothing; a test that fails
//! against the reference would fail every learner. So for each lab the reference must pass
//! every test and the untouched exercise must pass none (rustlings' `dev check` makes the
//! same two promises). It runs inside `cargo xtask test`, so it prints one line per lab
//! when all is well, names the offending tests when not, and never touches progress.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;

use super::compile::{self, Build, Variant};
use super::manifest::{self, LabManifest, Manifest};
use super::runner::Outcome;
use super::scorecard::seconds;
use super::tamper::{self, TamperCheck};
use super::{Limits, list_or_none};

/// Checks one lab, or every lab with a manifest; fails naming each offending test.
pub fn run(root: &Path, lab: Option<&str>, limits: Limits) -> anyhow::Result<()> {
    let all_labs = manifest::discover_labs(root)?;
    let labs = match lab {
        Some(name) if all_labs.iter().any(|known| known == name) => vec![name.to_owned()],
        Some(name) => bail!(
            "no lab `{name}` has a grading.toml; labs with exercises: {}",
            list_or_none(&all_labs)
        ),
        None => all_labs,
    };
    if labs.is_empty() {
        println!("grade --reference: no lab has a grading.toml yet");
        return Ok(());
    }
    let mut failed_labs = Vec::new();
    for lab in &labs {
        match check_lab(root, lab, limits) {
            Ok(summary) => println!("{summary}"),
            Err(error) => {
                eprintln!("grade --reference: {lab}: FAILED\n{error:#}");
                failed_labs.push(lab.clone());
            }
        }
    }
    if failed_labs.is_empty() {
        Ok(())
    } else {
        bail!(
            "grade --reference failed for: {}",
            list_or_none(&failed_labs)
        )
    }
}

fn check_lab(root: &Path, lab: &str, limits: Limits) -> anyhow::Result<String> {
    let started = Instant::now();
    let LabManifest { manifest, path } = manifest::load(root, lab)?;
    let reference = build_and_run(root, &manifest, &path, Variant::Reference, limits)?;
    let exercise = build_and_run(root, &manifest, &path, Variant::Exercise, limits)?;
    let total = manifest.tests.len();
    let reference_passes = reference.iter().filter(|outcome| outcome.passed()).count();
    let exercise_passes = exercise.iter().filter(|outcome| outcome.passed()).count();
    let problems = problems(&manifest, &reference, &exercise);
    if !problems.is_empty() {
        let mut message = problems.join("\n");
        let exercise_files: Vec<&Path> = manifest
            .exercise_files
            .iter()
            .map(|file| file.as_path())
            .collect();
        if let TamperCheck::Changed(_) = tamper::check(root, &exercise_files) {
            message.push_str(
                "\n(note: the exercise files have uncommitted changes, so the exercise is not untouched)",
            );
        }
        bail!(message);
    }
    Ok(format!(
        "grade --reference: {lab}: reference {reference_passes}/{total} pass, untouched exercise \
         {exercise_passes}/{total} pass ({})",
        seconds(started.elapsed())
    ))
}

/// Every broken promise, one line per test.
fn problems(manifest: &Manifest, reference: &[Outcome], exercise: &[Outcome]) -> Vec<String> {
    let mut problems = Vec::new();
    for (test, outcome) in manifest.tests.iter().zip(reference) {
        if !outcome.passed() {
            problems.push(format!(
                "  the reference fails `{}` ({}): {}",
                test.name,
                test.id,
                short_reason(outcome)
            ));
        }
    }
    for (test, outcome) in manifest.tests.iter().zip(exercise) {
        if outcome.passed() {
            problems.push(format!(
                "  `{}` ({}) passes against the untouched exercise: a test that cannot fail \
                 grades nothing",
                test.name, test.id
            ));
        }
    }
    problems
}

/// One line about why a test failed: the panic message, not where it happened.
fn short_reason(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed => "passed".to_owned(),
        Outcome::TimedOut { limit } => format!("timed out after {}", seconds(*limit)),
        Outcome::Failed { excerpt } | Outcome::Crashed { excerpt, .. } => excerpt
            .iter()
            .find(|line| !line.contains("panicked at") && !line.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| "failed".to_owned()),
    }
}

fn build_and_run(
    root: &Path,
    manifest: &Manifest,
    manifest_path: &Path,
    variant: Variant,
    limits: Limits,
) -> anyhow::Result<Vec<Outcome>> {
    let what = match variant {
        Variant::Reference => "the reference",
        Variant::Exercise => "the untouched exercise",
    };
    let binary = match compile::build(root, manifest, variant, false)?.build {
        Build::Built(binary) => binary,
        Build::Failed {
            errors,
            cargo_stderr,
        } => {
            if errors.is_empty() {
                bail!("cargo could not build {what}:\n{}", cargo_stderr.trim_end());
            }
            bail!("{what} does not compile:\n{}", errors.join("\n\n"));
        }
    };
    manifest::check_against_listed(manifest, manifest_path, &binary.list()?)?;
    let names: Vec<String> = manifest
        .tests
        .iter()
        .map(|test| test.name.clone())
        .collect();
    let mut outcomes = Vec::with_capacity(names.len());
    binary.run_all(&names, limits.jobs, limits.per_test, |_, run| {
        outcomes.push(run.outcome);
    })?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::manifest::sample_manifest;

    fn failed(line: &str) -> Outcome {
        Outcome::Failed {
            excerpt: vec![
                "thread 'main' panicked at x.rs:1:1:".to_owned(),
                line.to_owned(),
            ],
        }
    }

    #[test]
    fn a_sound_lab_has_no_problems() {
        let manifest = sample_manifest();
        let reference = [Outcome::Passed, Outcome::Passed];
        let exercise = [failed("not yet implemented"), failed("not yet implemented")];
        assert!(problems(&manifest, &reference, &exercise).is_empty());
    }

    #[test]
    fn names_a_failing_reference_test_and_a_test_that_cannot_fail() {
        let manifest = sample_manifest();
        let reference = [
            failed("assertion failed: breaker.is_closed()"),
            Outcome::Passed,
        ];
        let exercise = [failed("not yet implemented"), Outcome::Passed];
        let problems = problems(&manifest, &reference, &exercise);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0],
            "  the reference fails `starts_closed` (breaker-01): assertion failed: breaker.is_closed()"
        );
        assert!(problems[1].contains("(breaker-02) passes against the untouched exercise"));
    }
}
