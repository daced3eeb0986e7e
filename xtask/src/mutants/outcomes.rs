//! Reads what cargo-mutants left in `mutants.out/outcomes.json`: each mutant and its fate.
//!
//! Only the fields xtask needs are read (serde ignores the rest), so a newer cargo-mutants that
//! adds fields still parses; a missing field is an error naming the file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// What happened to one mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// A graded test failed: the tests notice this wrong answer.
    Caught,
    /// Every graded test passed: the tests cannot tell this wrong answer from the reference.
    Missed,
    /// The tests ran past the time limit (an endless loop): counted as caught.
    Timeout,
    /// The mutant does not compile, so no learner could hand it in.
    Unviable,
}

/// One mutant, named as cargo-mutants prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutant {
    /// `labs/gateway/core/src/router.rs:28:18: replace > with == in normalize_path`.
    pub name: String,
    /// The mutated file, relative to the workspace root.
    pub file: String,
    /// The line the mutation starts on (1-based).
    pub line: usize,
    /// What happened to it.
    pub fate: Fate,
}

/// The outcome of one mutation run.
#[derive(Debug)]
pub struct Run {
    /// Every mutant tested, in the order cargo-mutants tested them.
    pub mutants: Vec<Mutant>,
}

impl Run {
    /// How many mutants met `fate`.
    pub fn count(&self, fate: Fate) -> usize {
        self.mutants.iter().filter(|m| m.fate == fate).count()
    }

    /// The mutants no graded test caught.
    pub fn survivors(&self) -> impl Iterator<Item = &Mutant> {
        self.mutants.iter().filter(|m| m.fate == Fate::Missed)
    }
}

#[derive(Deserialize)]
struct OutcomesFile {
    outcomes: Vec<Outcome>,
}

#[derive(Deserialize)]
struct Outcome {
    scenario: Scenario,
    summary: String,
}

#[derive(Deserialize)]
enum Scenario {
    Baseline,
    Mutant(MutantScenario),
}

#[derive(Deserialize)]
struct MutantScenario {
    name: String,
    file: String,
    span: Span,
}

#[derive(Deserialize)]
struct Span {
    start: Position,
}

#[derive(Deserialize)]
struct Position {
    line: usize,
}

/// Reads `outcomes.json` from a `mutants.out` directory.
pub fn read(mutants_out: &Path) -> Result<Run> {
    let path = mutants_out.join("outcomes.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cargo-mutants wrote no {}", path.display()))?;
    parse(&text).with_context(|| format!("reading {}", path.display()))
}

/// Parses the text of an `outcomes.json`; the baseline must have passed.
pub fn parse(text: &str) -> Result<Run> {
    let file: OutcomesFile =
        serde_json::from_str(text).context("not a cargo-mutants outcomes file")?;
    let mut mutants = Vec::new();
    for outcome in file.outcomes {
        match outcome.scenario {
            Scenario::Baseline => {
                if outcome.summary != "Success" {
                    bail!(
                        "the graded tests fail on the unmutated reference ({}): fix that first",
                        outcome.summary
                    );
                }
            }
            Scenario::Mutant(mutant) => {
                let fate = match outcome.summary.as_str() {
                    "CaughtMutant" => Fate::Caught,
                    "MissedMutant" => Fate::Missed,
                    "Timeout" => Fate::Timeout,
                    "Unviable" => Fate::Unviable,
                    other => bail!("mutant {} has an unknown outcome {other:?}", mutant.name),
                };
                mutants.push(Mutant {
                    name: mutant.name,
                    file: mutant.file,
                    line: mutant.span.start.line,
                    fate,
                });
            }
        }
    }
    Ok(Run { mutants })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SAMPLE: &str = r#"{
      "outcomes": [
        {"scenario": "Baseline", "summary": "Success", "log_path": "log/baseline.log"},
        {"scenario": {"Mutant": {
            "name": "src/a.rs:3:9: replace f -> bool with true",
            "package": "p", "file": "src/a.rs", "replacement": "true", "genre": "FnValue",
            "span": {"start": {"line": 3, "column": 9}, "end": {"line": 3, "column": 12}}}},
         "summary": "MissedMutant"},
        {"scenario": {"Mutant": {
            "name": "src/a.rs:4:5: replace > with < in f", "file": "src/a.rs",
            "span": {"start": {"line": 4, "column": 5}, "end": {"line": 4, "column": 6}}}},
         "summary": "CaughtMutant"},
        {"scenario": {"Mutant": {
            "name": "src/a.rs:5:5: replace += with *= in f", "file": "src/a.rs",
            "span": {"start": {"line": 5, "column": 5}, "end": {"line": 5, "column": 7}}}},
         "summary": "Timeout"},
        {"scenario": {"Mutant": {
            "name": "src/a.rs:6:5: replace g -> &str with \"\"", "file": "src/a.rs",
            "span": {"start": {"line": 6, "column": 5}, "end": {"line": 6, "column": 7}}}},
         "summary": "Unviable"}
      ],
      "total_mutants": 4, "missed": 1, "caught": 1, "timeout": 1, "unviable": 1
    }"#;

    #[test]
    fn reads_each_mutant_with_its_fate_and_line() {
        let run = parse(SAMPLE).unwrap();
        assert_eq!(
            run.mutants.len(),
            4,
            "one entry per mutant, baseline excluded"
        );
        for fate in [Fate::Caught, Fate::Missed, Fate::Timeout, Fate::Unviable] {
            assert_eq!(run.count(fate), 1, "mutants with fate {fate:?}");
        }
        let survivor = run.survivors().next().unwrap();
        assert_eq!(
            (
                survivor.name.as_str(),
                survivor.file.as_str(),
                survivor.line
            ),
            ("src/a.rs:3:9: replace f -> bool with true", "src/a.rs", 3),
            "the survivor's name, file and line"
        );
    }

    #[test]
    fn a_failed_baseline_is_an_error_not_a_score() {
        let text = SAMPLE.replacen(r#""summary": "Success""#, r#""summary": "Failure""#, 1);
        let error = parse(&text).unwrap_err();
        assert!(
            error.to_string().contains("unmutated reference"),
            "the error says the reference fails: {error}"
        );
    }
}
