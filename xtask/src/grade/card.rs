//! Lays out a grading run's results as a card that focuses on one thing to fix.
//!
//! Like rustlings, the card shows the first failing test in full (its assertion, the hint,
//! the book pointer, the command that reruns it) and every other test in one line; tests
//! that stop at the same `todo!()` share one line naming the function, so the card of an
//! untouched exercise fits one screen. A test that passed before and fails now is a
//! regression: regressions come first and are marked. `--verbose` shows every failure in
//! full and cuts nothing; `--only` grades one test and shows it in full.
//!
//! Everything here is pure (results in, text out), so the layout is pinned by snapshot
//! tests of fabricated results, without running cargo.

use super::excerpt;
use super::manifest::{GradedTest, Manifest};
use super::pointer::BookLinks;
use super::runner::Outcome;
use super::scorecard::{Timings, list_files, percent, seconds};
use lab_runtime::Palette as Style;

/// A one-line entry is cut to this many characters, so it does not wrap on a terminal.
const LINE_WIDTH: usize = 100;

/// How much of each failure the card shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The first failing test in full, the others in one line each (the default).
    Focus,
    /// Every test's line, and every failure in full with nothing cut (`--verbose`, `--only`).
    Full,
}

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

/// Where a test stopped at a `todo!()`, named for the learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    /// The function holding the `todo!()`, when the source could be read.
    pub function: Option<String>,
    /// `labs/breaker/exercise/circuit.rs:174`.
    pub location: String,
}

/// One test's result, with what the card needs from saved progress.
#[derive(Debug, Clone)]
pub struct ScoredTest<'a> {
    /// The manifest entry.
    pub test: &'a GradedTest,
    #[allow(missing_docs)]
    pub outcome: &'a Outcome,
    /// Failures recorded before this run (selects the hint step).
    pub failures_before: u32,
    /// True when saved progress says it passed in an earlier run.
    pub passed_before: bool,
    /// The `todo!()` it stopped at, if that is why it failed.
    pub todo: Option<Todo>,
}

impl ScoredTest<'_> {
    /// Passed before, fails now.
    pub fn regressed(&self) -> bool {
        self.passed_before && !self.outcome.passed()
    }

    /// Passes now, never did before.
    pub fn first_pass(&self) -> bool {
        self.outcome.passed() && !self.passed_before
    }

    /// The failure's output, empty for a pass or a timeout.
    fn output(&self) -> &[String] {
        match self.outcome {
            Outcome::Failed { excerpt } | Outcome::Crashed { excerpt, .. } => excerpt,
            Outcome::Passed | Outcome::TimedOut { .. } => &[],
        }
    }
}

/// What tests sharing one line of the card have in common: the `todo!()` they stop at,
/// and whether they are regressions.
type TodoKey<'a> = (&'a Todo, bool);

/// What the card is about: the lab, where the book is, how much to show.
#[derive(Debug, Clone, Copy)]
pub struct Card<'a> {
    /// The lab's manifest.
    pub manifest: &'a Manifest,
    /// Where `read:` pointers lead on this machine.
    pub links: &'a BookLinks,
    /// How much of each failure to show.
    pub detail: Detail,
    /// True when `--only` picked the one test graded.
    pub only: bool,
    /// Colors, or none.
    pub style: Style,
}

impl Card<'_> {
    /// The tests' lines and blocks, in the card's order.
    pub fn render_results(&self, tests: &[ScoredTest<'_>]) -> String {
        let failing = failing_in_order(tests);
        let (full, brief): (Vec<&ScoredTest<'_>>, Vec<&ScoredTest<'_>>) = match self.detail {
            Detail::Full => (failing, Vec::new()),
            Detail::Focus => {
                let mut rest = failing;
                let focus = if rest.is_empty() {
                    Vec::new()
                } else {
                    vec![rest.remove(0)]
                };
                (focus, rest)
            }
        };
        let mut lines = self.pass_lines(tests);
        lines.extend(self.brief_lines(tests, &brief));
        for scored in full {
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.push(self.block(scored));
        }
        lines.join("\n")
    }

    /// The score, regressions, the timings and the next step.
    pub fn render_summary(&self, tests: &[ScoredTest<'_>], timings: Timings) -> String {
        let style = self.style;
        let manifest = self.manifest;
        let total = tests.len();
        let passed = tests
            .iter()
            .filter(|scored| scored.outcome.passed())
            .count();
        let timing = style.dim(&format!(
            "build {} · tests {} · verdict after {}",
            seconds(timings.build),
            seconds(timings.tests),
            seconds(timings.total)
        ));
        let score = match (self.only, tests.first()) {
            (true, Some(scored)) => {
                let verdict = if scored.outcome.passed() {
                    style.good(&format!("{} passes", scored.test.id))
                } else {
                    style.bad(&format!("{} fails", scored.test.id))
                };
                format!("{verdict} (only this test was graded)")
            }
            _ => {
                let score = format!("score: {passed}/{total} ({}%)", percent(passed, total));
                if passed == total {
                    style.good(&score)
                } else if passed == 0 {
                    style.bad(&score)
                } else {
                    style.warn(&score)
                }
            }
        };
        let mut lines = vec![String::new(), format!("{score}   {timing}")];
        let regressed: Vec<&ScoredTest<'_>> =
            tests.iter().filter(|scored| scored.regressed()).collect();
        if !regressed.is_empty() {
            let (verb, noun) = if regressed.len() == 1 {
                ("fails", "regression")
            } else {
                ("fail", "regressions")
            };
            lines.push(style.warn(&format!(
                "{} {noun}: {} passed before and {verb} now",
                regressed.len(),
                id_ranges(&indexed(tests, &regressed), LINE_WIDTH - 40)
            )));
        }
        let failing = failing_in_order(tests);
        if self.detail == Detail::Focus && !self.only && failing.len() > 1 {
            lines.push(style.dim(&format!(
                "--only <id> grades one test; --verbose shows all {} failures in full",
                failing.len()
            )));
        }
        let next = match (failing.first(), self.only) {
            (Some(scored), _) => format!(
                "next: make `{}` pass ({}) in {}",
                scored.test.name,
                scored.test.id,
                list_files(&manifest.exercise_files)
            ),
            (None, true) => format!(
                "next: grade every test with `cargo xtask grade {}`",
                manifest.lab
            ),
            (None, false) => format!(
                "next: all {total} tests pass. Read \"In production\" in {}",
                self.links.describe(&manifest.book_page)
            ),
        };
        lines.push(style.strong(&next));
        lines.join("\n")
    }

    /// Passing tests: one line each in full detail; otherwise one line for all of them,
    /// plus one for each first pass, which deserves its own.
    fn pass_lines(&self, tests: &[ScoredTest<'_>]) -> Vec<String> {
        let style = self.style;
        let mut lines = Vec::new();
        let mut grouped = Vec::new();
        for (index, scored) in tests.iter().enumerate() {
            if !scored.outcome.passed() {
                continue;
            }
            if scored.first_pass() || self.detail == Detail::Full {
                let mut line = format!(
                    "  {}  {}  {}",
                    style.good("PASS "),
                    style.dim(&scored.test.id),
                    scored.test.sentence()
                );
                if scored.first_pass() {
                    line.push_str(&format!(
                        "  {}",
                        style.good("new: passed for the first time")
                    ));
                }
                lines.push(line);
            } else {
                grouped.push((index, scored));
            }
        }
        match grouped.as_slice() {
            [] => {}
            [(_, scored)] => lines.insert(
                0,
                format!(
                    "  {}  {}  {}",
                    style.good("PASS "),
                    style.dim(&scored.test.id),
                    scored.test.sentence()
                ),
            ),
            several => {
                let members: Vec<(usize, &str)> = several
                    .iter()
                    .map(|(index, scored)| (*index, scored.test.id.as_str()))
                    .collect();
                lines.insert(
                    0,
                    format!(
                        "  {}  {} ({} tests)",
                        style.good("PASS "),
                        style.dim(&id_ranges(&members, LINE_WIDTH - 24)),
                        several.len()
                    ),
                );
            }
        }
        lines
    }

    /// One line per failing test not shown in full; tests that stopped at the same
    /// `todo!()` share one line (regressions apart from the others, and marked).
    fn brief_lines(&self, tests: &[ScoredTest<'_>], brief: &[&ScoredTest<'_>]) -> Vec<String> {
        // Each entry is one line: a lone test, or the tests that share a `todo!()`.
        let mut entries: Vec<(Option<TodoKey<'_>>, Vec<&ScoredTest<'_>>)> = Vec::new();
        for scored in brief {
            let key = scored.todo.as_ref().map(|todo| (todo, scored.regressed()));
            match entries
                .iter_mut()
                .find(|(group, _)| group.is_some() && *group == key)
            {
                Some((_, members)) => members.push(scored),
                None => entries.push((key, vec![scored])),
            }
        }
        entries
            .into_iter()
            .map(|(key, members)| match (key, members.as_slice()) {
                (Some((todo, regressed)), several) if several.len() > 1 => {
                    self.todo_line(tests, todo, regressed, several)
                }
                (_, lone) => lone
                    .iter()
                    .map(|scored| self.one_line(scored))
                    .collect::<Vec<_>>()
                    .join("\n"),
            })
            .collect()
    }

    /// The tests that stop at one `todo!()`, in one line.
    fn todo_line(
        &self,
        tests: &[ScoredTest<'_>],
        todo: &Todo,
        regressed: bool,
        members: &[&ScoredTest<'_>],
    ) -> String {
        let style = self.style;
        let mark = if regressed { "REGRESSION  " } else { "" };
        let head = format!(
            "{mark}{} tests stop at {}: ",
            members.len(),
            todo_phrase(todo)
        );
        let room = LINE_WIDTH.saturating_sub(head.chars().count() + 9).max(30);
        let ids = id_ranges(&indexed(tests, members), room);
        let head = if regressed {
            format!("{}{}", style.warn(mark), &head[mark.len()..])
        } else {
            head
        };
        format!("  {}  {head}{}", style.warn("TODO "), style.dim(&ids))
    }

    /// A failing test in one line: verdict, id, name and why, cut to fit the terminal.
    fn one_line(&self, scored: &ScoredTest<'_>) -> String {
        let style = self.style;
        let test = scored.test;
        let (verdict, painted) = verdict(scored.outcome, style);
        let mut plain = format!("  {verdict}  {}  {}", test.id, test.sentence());
        let mut line = format!("  {painted}  {}  {}", style.dim(&test.id), test.sentence());
        if scored.regressed() {
            plain.push_str("  REGRESSION");
            line.push_str(&format!("  {}", style.warn("REGRESSION")));
        }
        let status = short_status(scored);
        let room = LINE_WIDTH.saturating_sub(plain.chars().count() + 3).max(40);
        line.push_str(&format!(" — {}", style.dim(&cut(&status, room))));
        line
    }

    /// A test in full: verdict, output, hint, pointer and the command that reruns it.
    fn block(&self, scored: &ScoredTest<'_>) -> String {
        let style = self.style;
        let test = scored.test;
        let (_, painted) = verdict(scored.outcome, style);
        let mut head = format!("  {painted}  {}  {}", style.dim(&test.id), test.sentence());
        if scored.regressed() {
            head.push_str(&format!(
                "  {}",
                style.warn("REGRESSION: passed before, fails now")
            ));
        }
        match scored.outcome {
            Outcome::TimedOut { limit } => head.push_str(&format!(
                "  {}",
                style.warn(&format!(
                    "timed out after {} — an infinite loop?",
                    seconds(*limit)
                ))
            )),
            Outcome::Crashed { description, .. } => head.push_str(&format!("  {description}")),
            Outcome::Passed | Outcome::Failed { .. } => {}
        }
        let mut lines = vec![head];
        if scored.outcome.passed() {
            return lines.join("\n");
        }
        let output = scored.output();
        let shown = match self.detail {
            Detail::Full => output.to_vec(),
            Detail::Focus => excerpt::cap(
                output,
                &format!(
                    "`cargo xtask grade {} --only {}` shows all",
                    self.manifest.lab, test.id
                ),
            ),
        };
        lines.extend(
            shown
                .iter()
                .map(|line| format!("        {}", style.dim(line))),
        );
        lines.push(format!(
            "      {} {}",
            style.hint("hint:"),
            test.hint_for(output)
        ));
        let step = HintStep::for_failures_before(scored.failures_before);
        if step == HintStep::NudgeAndPointer || self.detail == Detail::Full {
            lines.push(format!(
                "      {} {}",
                style.hint("read:"),
                self.links.describe(&test.pointer)
            ));
        }
        lines.push(format!(
            "      {} {}",
            style.hint("rerun:"),
            rerun_command(self.manifest, test)
        ));
        lines.join("\n")
    }
}

/// The failing tests, regressions first, each group in manifest order.
fn failing_in_order<'a, 'b>(tests: &'b [ScoredTest<'a>]) -> Vec<&'b ScoredTest<'a>> {
    let failing = tests.iter().filter(|scored| !scored.outcome.passed());
    let (mut regressed, others): (Vec<_>, Vec<_>) = failing.partition(|scored| scored.regressed());
    regressed.extend(others);
    regressed
}

/// Each test's id with its place in the manifest, for [`id_ranges`].
fn indexed<'a>(tests: &[ScoredTest<'_>], members: &[&'a ScoredTest<'_>]) -> Vec<(usize, &'a str)> {
    members
        .iter()
        .map(|scored| {
            let at = tests
                .iter()
                .position(|candidate| candidate.test.id == scored.test.id)
                .unwrap_or(usize::MAX);
            (at, scored.test.id.as_str())
        })
        .collect()
}

/// The verdict word, plain and painted (`FAIL `, `TIME `, `CRASH`).
fn verdict(outcome: &Outcome, style: Style) -> (&'static str, String) {
    match outcome {
        Outcome::Passed => ("PASS ", style.good("PASS ")),
        Outcome::Failed { .. } => ("FAIL ", style.bad("FAIL ")),
        Outcome::TimedOut { .. } => ("TIME ", style.warn("TIME ")),
        Outcome::Crashed { .. } => ("CRASH", style.bad("CRASH")),
    }
}

/// Why a test failed, in a few words: the broken invariant, the `todo!()`, or the first
/// line of the panic message.
fn short_status(scored: &ScoredTest<'_>) -> String {
    match scored.outcome {
        Outcome::Passed => "passed".to_owned(),
        Outcome::TimedOut { limit } => format!("timed out after {}", seconds(*limit)),
        Outcome::Crashed { description, .. } => description.clone(),
        Outcome::Failed { excerpt } => {
            if let Some(todo) = &scored.todo {
                return format!("stops at {}", todo_phrase(todo));
            }
            if let Some((name, _)) = scored.test.invariant_hint(excerpt) {
                return format!("breaks invariant `{name}`");
            }
            excerpt
                .iter()
                .map(|line| line.trim())
                .find(|line| !line.is_empty() && !line.contains("panicked at "))
                .map(|line| {
                    line.strip_prefix("Test failed: ")
                        .unwrap_or(line)
                        .to_owned()
                })
                .unwrap_or_else(|| "failed".to_owned())
        }
    }
}

/// "todo!() in `CircuitBreaker::new` (circuit.rs:174)": the file's name is enough, the
/// learner edits only a file or two.
fn todo_phrase(todo: &Todo) -> String {
    let location = todo.location.rsplit('/').next().unwrap_or(&todo.location);
    match &todo.function {
        Some(function) => format!("todo!() in `{function}` ({location})"),
        None => format!("todo!() at {location}"),
    }
}

/// Cuts `text` to at most `room` characters, marking the cut with `…`.
fn cut(text: &str, room: usize) -> String {
    if text.chars().count() <= room {
        return text.to_owned();
    }
    let kept: String = text.chars().take(room.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}

/// Ids in manifest order as ranges of neighbours (`breaker-02…breaker-05, breaker-09`),
/// as many as fit in `room` characters, then `…`.
fn id_ranges(members: &[(usize, &str)], room: usize) -> String {
    // (first index, last index, first id, last id) of each run of neighbours.
    let mut ranges: Vec<(usize, usize, &str, &str)> = Vec::new();
    for (index, id) in members {
        match ranges.last_mut() {
            Some((_, last, _, end)) if *last + 1 == *index => {
                *last = *index;
                *end = id;
            }
            _ => ranges.push((*index, *index, id, id)),
        }
    }
    let mut text = String::new();
    for (shown, (first, last, start, end)) in ranges.iter().enumerate() {
        let range = match last - first {
            0 => (*start).to_owned(),
            1 => format!("{start}, {end}"),
            _ => format!("{start}…{end}"),
        };
        let separator = if shown == 0 { "" } else { ", " };
        let more = if shown + 1 < ranges.len() { 3 } else { 0 };
        if text.chars().count() + separator.len() + range.chars().count() + more > room {
            text.push_str(separator);
            text.push('…');
            break;
        }
        text.push_str(separator);
        text.push_str(&range);
    }
    text
}

/// The command that reruns one graded test by hand, against the learner's code.
pub fn rerun_command(manifest: &Manifest, test: &GradedTest) -> String {
    format!(
        "cargo test -p {} --features {} --test {} -- {} --exact",
        manifest.package, manifest.feature, manifest.test_target, test.name
    )
}

#[cfg(test)]
mod tests;
