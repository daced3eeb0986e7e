//! `cargo xtask mutants <lab>`: how many wrong answers the graded tests catch, measured by
//! mutation testing.
//!
//! cargo-mutants (pinned in [`crate::tools`]) plants one small bug at a time in the lab's
//! graded reference files (`reference_files` in `labs/<lab>/grading.toml`) — a `>` turned
//! into `>=`, a body replaced by `Default::default()` — and runs the graded tests only (the
//! manifest's `package` and `test_target`, without the `exercise` feature) against each. A
//! mutant the tests miss is a wrong answer a learner could hand in for full marks, so each
//! survivor must either be killed by a new graded test or be listed, with the reason it
//! cannot change behaviour, in `labs/<lab>/mutants-accepted.toml` ([`accepted`]). The
//! command fails on a survivor that is not listed and on a listed one that no longer
//! survives; when the list is current it rewrites it with fresh line numbers and the hash of
//! the reference files.
//!
//! The full run takes minutes per lab, too slow for `cargo xtask test`, which instead runs
//! [`check_lists_are_current`] (also `cargo xtask mutants --check`): every lab has a list,
//! and no reference file changed since its list was made. cargo-mutants' own output stays in
//! `target/mutants/<lab>/mutants.out/`.

mod accepted;
mod outcomes;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use self::accepted::{Accepted, Comparison, FILE_NAME, Survivor};
use self::outcomes::{Fate, Run};
use crate::{step, tools};

/// Arguments of `cargo xtask mutants`.
#[derive(clap::Args, Debug)]
pub struct MutantsArgs {
    /// The lab whose graded modules to mutate (e.g. `gateway`).
    #[arg(required_unless_present = "check")]
    pub lab: Option<String>,
    /// Mutate nothing: only check, for every lab, that its accepted list was made against
    /// the reference files as they are (what `cargo xtask test` checks).
    #[arg(long, conflicts_with_all = ["lab", "jobs", "timeout"])]
    pub check: bool,
    /// How many mutants are built and tested at the same time.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// Time limit for one mutant's tests, in seconds (default: cargo-mutants' own, from the
    /// unmutated run's time).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

/// The part of `labs/<lab>/grading.toml` that says what to mutate and what to test with.
#[derive(Debug, Deserialize)]
struct Graded {
    package: String,
    test_target: String,
    #[serde(default)]
    reference_files: Vec<PathBuf>,
}

impl Graded {
    fn load(root: &Path, lab: &str) -> Result<Self> {
        let path = root.join("labs").join(lab).join("grading.toml");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "labs/{lab}/grading.toml not found: lab {lab:?} has no graded exercise \
                 (labs with one: {})",
                graded_labs(root).unwrap_or_default().join(", ")
            )
        })?;
        let graded: Graded =
            toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        if graded.reference_files.is_empty() {
            bail!("labs/{lab}/grading.toml lists no `reference_files`: nothing to mutate");
        }
        Ok(graded)
    }
}

/// Runs the mutation test of one lab and checks its survivors against the accepted list.
pub fn run(root: &Path, args: &MutantsArgs) -> Result<()> {
    let Some(lab) = args.lab.as_deref().filter(|_| !args.check) else {
        check_lists_are_current(root)?;
        step::note("every graded lab's accepted survivors match its reference files");
        return Ok(());
    };
    let graded = Graded::load(root, lab)?;
    tools::ensure_cargo_mutants()?;
    let hash_before = accepted::reference_hash(root, &graded.reference_files)?;
    let output = root.join("target").join("mutants").join(lab);
    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    let started = Instant::now();
    step::step(
        &format!(
            "mutate {} and run `cargo test -p {} --test {}` on each mutant (minutes)",
            list_of(&graded.reference_files),
            graded.package,
            graded.test_target
        ),
        || run_cargo_mutants(&graded, &output, args),
    )?;
    let elapsed = started.elapsed();
    let run = outcomes::read(&output.join("mutants.out"))?;
    if accepted::reference_hash(root, &graded.reference_files)? != hash_before {
        bail!(
            "a reference file of {lab} changed during the run: run `cargo xtask mutants {lab}` again"
        );
    }
    let survivors = run
        .survivors()
        .map(|mutant| Survivor::read(root, mutant))
        .collect::<Result<Vec<_>>>()?;
    let list_path = root.join("labs").join(lab).join(FILE_NAME);
    let list = accepted::load(&list_path)?;
    let comparison = accepted::compare(
        &survivors,
        list.as_ref().map_or(&[][..], |file| &file.survivors),
    );
    print_summary(lab, &run, &comparison, elapsed);
    if !comparison.is_current() {
        return Err(not_current(lab, &output, &comparison));
    }
    std::fs::write(
        &list_path,
        accepted::render(lab, &hash_before, &comparison.accepted),
    )
    .with_context(|| format!("writing {}", list_path.display()))?;
    step::note(&format!(
        "labs/{lab}/{FILE_NAME} is current ({} accepted survivor(s)); commit it",
        comparison.accepted.len()
    ));
    Ok(())
}

fn run_cargo_mutants(graded: &Graded, output: &Path, args: &MutantsArgs) -> Result<()> {
    let mut cmd = Command::new(tools::cargo());
    cmd.args(["mutants", "--no-config", "--package", &graded.package]);
    for file in &graded.reference_files {
        cmd.arg("--file").arg(file);
    }
    cmd.arg("--output")
        .arg(output)
        .arg("--jobs")
        .arg(args.jobs.max(1).to_string())
        .arg("--colors")
        .arg(if step::color() { "always" } else { "never" })
        // On every cargo call, the build too: only the graded test target is built and run.
        .arg(format!("--cargo-arg=--test={}", graded.test_target));
    if let Some(seconds) = args.timeout {
        cmd.arg("--timeout").arg(seconds.to_string());
    }
    let status = cmd
        .status()
        .context("could not start `cargo mutants` (is cargo-mutants on PATH?)")?;
    // 0: every mutant caught; 2: some missed; 3: some timed out. All three are results.
    match status.code() {
        Some(0 | 2 | 3) => Ok(()),
        Some(4) => bail!("the graded tests fail on the unmutated reference: fix that first"),
        _ => bail!(
            "cargo mutants failed ({status}); its log is in {}/mutants.out",
            output.display()
        ),
    }
}

fn print_summary(lab: &str, run: &Run, comparison: &Comparison, elapsed: std::time::Duration) {
    step::note(&format!(
        "{lab}: {} mutants: {} caught, {} timed out (caught), {} unviable, {} survived \
         ({} accepted, {} not accepted); {} stale entr(ies); {}",
        run.mutants.len(),
        run.count(Fate::Caught),
        run.count(Fate::Timeout),
        run.count(Fate::Unviable),
        run.count(Fate::Missed),
        comparison.accepted.len(),
        comparison.unaccepted.len(),
        comparison.stale.len(),
        step::seconds(elapsed)
    ));
}

/// The error for a list that does not match the run, after writing the missing entries to a
/// file ready to paste.
fn not_current(lab: &str, output: &Path, comparison: &Comparison) -> anyhow::Error {
    let mut message = String::new();
    if !comparison.unaccepted.is_empty() {
        let draft: Vec<Accepted> = comparison
            .unaccepted
            .iter()
            .map(|survivor| survivor.accept(""))
            .collect();
        let draft_path = output.join("unaccepted.toml");
        let draft_text: String = draft.iter().map(accepted::render_entry).collect();
        let written = std::fs::write(&draft_path, &draft_text).is_ok();
        message.push_str(&format!(
            "{} mutant(s) survive the graded tests and are not accepted:\n",
            comparison.unaccepted.len()
        ));
        for survivor in &comparison.unaccepted {
            message.push_str(&format!(
                "  - {}\n      code: {}\n",
                survivor.mutant.name, survivor.code
            ));
        }
        message.push_str(
            "  Kill each with a graded test that fails on it, or, if it cannot change behaviour, \
             add it to ",
        );
        message.push_str(&format!("labs/{lab}/{FILE_NAME} with the reason"));
        if written {
            message.push_str(&format!(
                " (entries ready to paste: {})",
                draft_path.display()
            ));
        }
        message.push('\n');
    }
    if !comparison.stale.is_empty() {
        message.push_str(&format!(
            "{} entr(ies) of labs/{lab}/{FILE_NAME} no longer survive (killed, or the line changed): \
             remove them\n",
            comparison.stale.len()
        ));
        for entry in &comparison.stale {
            message.push_str(&format!(
                "  - {}\n      code: {}\n",
                entry.mutant, entry.code
            ));
        }
    }
    anyhow::anyhow!(
        "{}the accepted survivors of {lab} are not current; fix that and run `cargo xtask mutants {lab}` again",
        message
    )
}

/// `cargo xtask test`'s cheap stand-in for the full run: every graded lab has its accepted
/// list, made against the reference files as they are now.
pub fn check_lists_are_current(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for lab in graded_labs(root)? {
        let graded = Graded::load(root, &lab)?;
        let list_path = root.join("labs").join(&lab).join(FILE_NAME);
        let Some(list) = accepted::load(&list_path)? else {
            problems.push(format!(
                "labs/{lab}/{FILE_NAME} is missing: run `cargo xtask mutants {lab}` and commit the list it writes"
            ));
            continue;
        };
        let hash = accepted::reference_hash(root, &graded.reference_files)?;
        if list.reference_sha256 != hash {
            problems.push(format!(
                "labs/{lab}/{FILE_NAME} was made against other versions of {}: a reference file \
                 changed since, so its survivors may have changed too; run `cargo xtask mutants {lab}` \
                 and commit the refreshed list",
                list_of(&graded.reference_files)
            ));
        }
        for entry in &list.survivors {
            let file = entry.mutant.split(':').next().unwrap_or_default();
            if !graded
                .reference_files
                .iter()
                .any(|reference| reference == Path::new(file))
            {
                problems.push(format!(
                    "labs/{lab}/{FILE_NAME} accepts {}, which is not in a reference file",
                    entry.mutant
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "the accepted mutation-test survivors are not current:\n  - {}",
        problems.join("\n  - ")
    )
}

/// The labs with a graded exercise (`labs/<lab>/grading.toml`), sorted.
fn graded_labs(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("labs");
    let mut labs = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.path().join("grading.toml").is_file() {
            labs.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    labs.sort();
    Ok(labs)
}

fn list_of(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|file| file.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A workspace with one graded lab, `demo`, whose reference file is `labs/demo/core/a.rs`.
    fn demo_root(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("xtask-mutants-{name}-{}", std::process::id()));
        let lab = root.join("labs/demo");
        std::fs::create_dir_all(lab.join("core")).unwrap();
        std::fs::write(
            lab.join("grading.toml"),
            "package = \"demo-core\"\ntest_target = \"graded\"\n\
             reference_files = [\"labs/demo/core/a.rs\"]\n",
        )
        .unwrap();
        std::fs::write(lab.join("core/a.rs"), "fn a() -> bool { true }\n").unwrap();
        root
    }

    fn write_list(root: &Path) {
        let files = [PathBuf::from("labs/demo/core/a.rs")];
        let hash = accepted::reference_hash(root, &files).unwrap();
        std::fs::write(
            root.join("labs/demo").join(FILE_NAME),
            accepted::render("demo", &hash, &[]),
        )
        .unwrap();
    }

    #[test]
    fn a_lab_without_its_list_fails_the_check_naming_the_command() {
        let root = demo_root("missing");
        let error = check_lists_are_current(&root).unwrap_err().to_string();
        std::fs::remove_dir_all(&root).unwrap();
        assert!(
            error.contains("mutants-accepted.toml is missing")
                && error.contains("cargo xtask mutants demo"),
            "the error names the missing list and the command that makes it: {error}"
        );
    }

    #[test]
    fn a_list_made_against_the_current_reference_passes_the_check() {
        let root = demo_root("current");
        write_list(&root);
        let result = check_lists_are_current(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert!(result.is_ok(), "a fresh list is current: {result:?}");
    }

    #[test]
    fn an_edited_reference_file_fails_the_check_until_the_list_is_remade() {
        let root = demo_root("edited");
        write_list(&root);
        std::fs::write(
            root.join("labs/demo/core/a.rs"),
            "fn a() -> bool { false }\n",
        )
        .unwrap();
        let error = check_lists_are_current(&root).unwrap_err().to_string();
        std::fs::remove_dir_all(&root).unwrap();
        assert!(
            error.contains("a reference file changed since")
                && error.contains("cargo xtask mutants demo"),
            "the error says the reference changed and how to remake the list: {error}"
        );
    }
}
