//! `cargo xtask grade`: grades a lab's exercise and keeps the learner's progress.
//!
//! The mechanism is the same for every lab. A lab's graded module has a reference
//! (`src/<part>.rs`, the worked example) and a learner's copy (`exercise/<part>.rs`); a
//! cargo feature swaps one for the other, and one test file checks both. The grader:
//!
//! 1. reads `labs/<lab>/grading.toml` ([`manifest`]) and checks that the graded files are
//!    the committed ones ([`tamper`]);
//! 2. builds the graded test binary with the feature on ([`compile`]), showing compiler
//!    errors if the learner's code does not build;
//! 3. checks the binary's test list against the manifest, then runs every test in its own
//!    process with a time limit ([`runner`]), so a panic or an endless loop fails one test;
//! 4. prints the card ([`card`]): the first failing test in full (regressions first) with
//!    hints in steps driven by saved progress ([`progress`]), a `read:` pointer to wherever
//!    the book is readable ([`pointer`]), and the command that reruns it; every other test
//!    in one line. Then it saves the new progress.
//!
//! `--only <id>` grades one test and `--verbose` shows every failure uncut. `--watch` repeats this whenever an exercise file changes ([`watch`]); `--reference`
//! proves for every lab that the reference passes everything and the untouched exercise
//! passes nothing, which is what makes the tests trustworthy ([`reference`]).

mod card;
mod compile;
mod excerpt;
mod headings;
mod manifest;
mod pointer;
mod progress;
mod reference;
mod runner;
mod scorecard;
mod tamper;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use self::card::{Card, Detail, ScoredTest, Todo};
use self::compile::{Build, Variant};
use self::manifest::{GradedTest, LabManifest};
use self::pointer::BookLinks;
use self::runner::{Outcome, TestRun};
use self::scorecard::Timings;
use self::tamper::TamperCheck;
use lab_runtime::Palette as Style;

/// Arguments of `cargo xtask grade`.
#[derive(clap::Args, Debug)]
pub struct GradeArgs {
    /// The lab to grade (e.g. `breaker`); optional when only one lab has a grading.toml.
    pub lab: Option<String>,
    /// Re-grade every time an exercise file is saved (Ctrl-C to stop).
    #[arg(long, conflicts_with = "reference")]
    pub watch: bool,
    /// Check the tests themselves: the reference must pass every test and the untouched
    /// exercise none (all labs, or the one named). Saves no progress.
    #[arg(long)]
    pub reference: bool,
    /// Time limit per test, in seconds; a test still running then is killed.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
    /// How many tests run at the same time.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub jobs: usize,
    /// What the card shows.
    #[command(flatten)]
    pub card: CardArgs,
}

/// How much the card shows (`--only`, `--verbose`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CardArgs {
    /// Grade only this test (its id, e.g. `breaker-05`, or its name) and show it in full.
    #[arg(long, value_name = "ID", conflicts_with = "reference")]
    pub only: Option<String>,
    /// Show every failing test in full, nothing cut (the default shows the first one).
    #[arg(long, conflicts_with = "reference")]
    pub verbose: bool,
}

/// Runs `cargo xtask grade` with the parsed arguments.
pub fn run(args: &GradeArgs) -> anyhow::Result<()> {
    let root = workspace_root()?;
    let limits = Limits {
        per_test: Duration::from_secs(args.timeout.max(1)),
        jobs: args.jobs.max(1),
    };
    if args.reference {
        return reference::run(&root, args.lab.as_deref(), limits);
    }
    let lab = choose_lab(&root, args.lab.as_deref())?;
    let style = Style::detect();
    if args.watch {
        watch::run(&root, &lab, limits, style, &args.card)
    } else {
        let verdict = grade_once(&root, &lab, limits, style, &args.card, Instant::now())?;
        match verdict {
            Verdict::Graded { passed, total } if passed == total => Ok(()),
            Verdict::Graded { passed, total } => Err(NotAllPass { passed, total }.into()),
            Verdict::DoesNotBuild => bail!("the graded tests could not be built (see above)"),
        }
    }
}

/// How hard the grader may push: time per test and parallel tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    per_test: Duration,
    jobs: usize,
}

/// A grading run in which some tests fail: the scorecard already said which, so the command
/// only has to exit with a non-zero status (for scripts and editors), without another banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAllPass {
    /// Tests that passed.
    pub passed: usize,
    /// Tests graded.
    pub total: usize,
}

impl std::fmt::Display for NotAllPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} graded tests pass", self.passed, self.total)
    }
}

impl std::error::Error for NotAllPass {}

/// How a grading run ended (errors in the set-up are `Err` instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The scorecard was printed.
    Graded {
        /// Tests that passed.
        passed: usize,
        /// Tests graded.
        total: usize,
    },
    /// The graded tests did not build (usually the learner's code); the errors were printed.
    DoesNotBuild,
}

/// Grades the learner's copy of one lab once and prints the card.
///
/// `started` is when the learner's change was noticed, so the reported "verdict after"
/// time covers everything the learner waits for.
fn grade_once(
    root: &Path,
    lab: &str,
    limits: Limits,
    style: Style,
    shown: &CardArgs,
    started: Instant,
) -> anyhow::Result<Verdict> {
    let LabManifest {
        manifest,
        path: manifest_path,
    } = manifest::load(root, lab)?;
    let selected: Vec<&GradedTest> = match &shown.only {
        Some(id) => vec![manifest.select(id)?],
        None => manifest.tests.iter().collect(),
    };
    println!("{}", scorecard::render_header(&manifest, style));
    let tamper = tamper::check(
        root,
        &[manifest.tests_file.as_path(), manifest_path.as_path()],
    );
    if let Some(warning) = scorecard::render_tamper(&tamper, style) {
        println!("{warning}");
    }
    println!(
        "{}",
        style.dim(&format!(
            "building {} with the `{}` feature (your code), then running {}…",
            manifest.package,
            manifest.feature,
            match selected.as_slice() {
                [only] => only.id.clone(),
                all => format!("{} tests", all.len()),
            }
        ))
    );

    let build = compile::build(root, &manifest, Variant::Exercise, style.color)?;
    let binary = match build.build {
        Build::Built(binary) => binary,
        Build::Failed {
            errors,
            cargo_stderr,
        } => {
            println!(
                "{}",
                scorecard::render_build_failure(&manifest, &errors, &cargo_stderr, style)
            );
            return Ok(Verdict::DoesNotBuild);
        }
    };
    manifest::check_against_listed(&manifest, &manifest_path, &binary.list()?)?;

    let progress_path = progress::progress_path(root);
    let (mut saved, load_warning) = progress::load(&progress_path)?;
    if let Some(warning) = load_warning {
        println!("{}", style.warn(&warning));
    }
    let names: Vec<String> = selected.iter().map(|test| test.name.clone()).collect();
    let tests_started = Instant::now();
    let mut runs: Vec<TestRun> = Vec::with_capacity(names.len());
    let regressions_path = manifest.tests_file.with_extension("proptest-regressions");
    let regressions_name = regressions_path.display().to_string();
    binary.run_all(&names, limits.jobs, limits.per_test, |_, mut run| {
        if let Outcome::Failed { excerpt: lines } = &mut run.outcome {
            // Proptest prints a seed only when it first saves it; on replays, look it up.
            let regressions = std::fs::read_to_string(root.join(&regressions_path)).ok();
            let seed = excerpt::replayed_seed(lines, &regressions_name, regressions.as_deref());
            lines.extend(seed);
        }
        runs.push(run);
    })?;
    let timings = Timings {
        build: build.elapsed,
        tests: tests_started.elapsed(),
        total: started.elapsed(),
    };

    let mut sources = BTreeMap::new();
    let scored: Vec<ScoredTest<'_>> = selected
        .iter()
        .zip(&runs)
        .map(|(test, run)| ScoredTest {
            test,
            outcome: &run.outcome,
            failures_before: saved.failures_before(&manifest.lab, &test.id),
            passed_before: saved
                .test(&manifest.lab, &test.id)
                .is_some_and(|record| record.passed_ever),
            todo: todo_of(root, &run.outcome, &mut sources),
        })
        .collect();
    let pointers = selected.iter().map(|test| test.pointer.as_str());
    let links = BookLinks::discover(root, pointers.chain([manifest.book_page.as_str()]));
    let card = Card {
        manifest: &manifest,
        links: &links,
        detail: if shown.verbose || shown.only.is_some() {
            Detail::Full
        } else {
            Detail::Focus
        },
        only: shown.only.is_some(),
        style,
    };
    println!("{}", card.render_results(&scored));
    println!("{}", card.render_summary(&scored, timings));

    let verdict = Verdict::Graded {
        passed: scored.iter().filter(|test| test.outcome.passed()).count(),
        total: scored.len(),
    };
    // A score from edited tests does not count, so it must not count towards progress either.
    if matches!(tamper, TamperCheck::Changed(_)) {
        return Ok(verdict);
    }
    let outcomes = scored
        .iter()
        .map(|test| (test.test.id.as_str(), test.outcome));
    saved.record(&manifest.lab, outcomes, &progress::now_rfc3339());
    progress::save(&progress_path, &saved)?;
    Ok(verdict)
}

/// The `todo!()` a failure stopped at, named by the function around it (sources are read
/// once per run and kept in `sources`).
fn todo_of(
    root: &Path,
    outcome: &Outcome,
    sources: &mut BTreeMap<String, Option<String>>,
) -> Option<Todo> {
    let Outcome::Failed { excerpt: lines } = outcome else {
        return None;
    };
    let found = excerpt::todo_panic(lines)?;
    let source = sources
        .entry(found.file.clone())
        .or_insert_with(|| std::fs::read_to_string(root.join(&found.file)).ok());
    Some(Todo {
        function: source
            .as_deref()
            .and_then(|source| excerpt::enclosing_function(source, found.line)),
        location: format!("{}:{}", found.file, found.line),
    })
}

/// The lab to grade: the one named, or the only one there is.
fn choose_lab(root: &Path, named: Option<&str>) -> anyhow::Result<String> {
    let labs = manifest::discover_labs(root)?;
    if let Some(name) = named {
        if labs.iter().any(|lab| lab == name) {
            return Ok(name.to_owned());
        }
        bail!(
            "no lab `{name}` has a grading.toml; labs with exercises: {}",
            list_or_none(&labs)
        );
    }
    match labs.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!("no lab has a grading.toml yet (looked for labs/*/grading.toml)"),
        several => {
            let mut listing = String::from("several labs have exercises; name one:\n");
            for lab in several {
                let title = manifest::load(root, lab).map_or_else(
                    |error| format!("(unreadable: {error})"),
                    |found| found.manifest.title,
                );
                listing.push_str(&format!("  cargo xtask grade {lab:<12} {title}\n"));
            }
            bail!("{}", listing.trim_end())
        }
    }
}

fn list_or_none(labs: &[String]) -> String {
    if labs.is_empty() {
        "none".to_owned()
    } else {
        labs.join(", ")
    }
}

/// The workspace root: where `Cargo.toml` with `[workspace]` lives.
///
/// Asks cargo first (right from any folder inside the workspace), and falls back to the
/// folder above this crate, where xtask always sits.
fn workspace_root() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let located = Command::new(cargo)
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output();
    if let Ok(output) = located
        && output.status.success()
    {
        let manifest = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if let Some(root) = manifest.parent() {
            return Ok(root.to_path_buf());
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("cannot find the workspace root")
}
