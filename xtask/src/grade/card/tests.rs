//! Snapshot tests of the card's layout, from fabricated results (no cargo, no test binary).
//!
//! Each snapshot is a plain-text file in `snapshots/`, the card exactly as a learner sees it
//! with colors off. After a deliberate change of layout, `UPDATE_SNAPSHOTS=1 cargo test -p
//! xtask card` rewrites them; review the diff like code.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::grade::manifest::Manifest;
use crate::grade::scorecard::render_header;

/// A screen's worth of lines: the untouched exercise's card must fit in it.
const SCREEN_LINES: usize = 30;

const NAMES: [&str; 25] = [
    "starts_closed",
    "records_outcomes_in_the_window",
    "count_based_window_keeps_only_the_last_n_calls",
    "waits_for_minimum_calls_before_judging",
    "opens_after_failure_rate_crosses_threshold",
    "stays_closed_below_failure_rate_threshold",
    "opens_when_slow_call_rate_crosses_threshold",
    "open_rejects_calls_with_retry_after",
    "open_moves_to_half_open_after_wait",
    "half_open_admits_exactly_n_trial_calls",
    "half_open_closes_when_trials_succeed",
    "half_open_reopens_when_trials_fail",
    "cancelled_trial_frees_its_slot",
    "ignored_outcomes_are_neither_success_nor_failure",
    "late_outcome_from_an_earlier_state_is_stale",
    "a_permit_is_handed_back_only_once",
    "time_based_window_forgets_old_calls",
    "half_open_without_trial_calls_reopens_after_max_wait",
    "reopening_backs_off_exponentially_up_to_the_cap",
    "jitter_spreads_the_wait_and_is_reproducible_from_the_seed",
    "forced_open_rejects_everything_until_reset",
    "disabled_admits_everything_and_records_nothing",
    "events_tell_the_story_in_order",
    "sans_io_inputs_give_the_same_answers",
    "half_open_never_admits_more_than_n_trial_calls",
];

/// A breaker-sized manifest: 25 tests, the last a property test with invariant hints.
fn manifest() -> Manifest {
    let mut text = String::from(
        "lab = \"breaker\"\ntitle = \"Circuit breaker\"\npackage = \"breaker-core\"\n\
         test_target = \"graded\"\nfeature = \"exercise\"\n\
         exercise_files = [\"labs/breaker/exercise/circuit.rs\"]\n\
         tests_file = \"labs/breaker/core/tests/graded.rs\"\n\
         book_page = \"patterns/circuit-breaker.html\"\n",
    );
    for (index, name) in NAMES.iter().enumerate() {
        text.push_str(&format!(
            "\n[[test]]\nid = \"breaker-{:02}\"\nname = \"{name}\"\n\
             nudge = \"The nudge for {name}.\"\n\
             pointer = \"patterns/circuit-breaker.html#section-{}\"\n",
            index + 1,
            index + 1
        ));
    }
    text.push_str(
        "\n[test.hints_by_invariant]\nat_most_n_trials = \"A finished trial keeps its slot: \
         HalfOpen admits N trials in all, not N at a time.\"\n",
    );
    Manifest::parse(&text, "grading.toml").unwrap()
}

fn todo_in_new(test: &str) -> Outcome {
    Outcome::Failed {
        excerpt: vec![
            format!("thread '{test}' panicked at labs/breaker/exercise/circuit.rs:174:9:"),
            "not yet implemented: build a Closed breaker".to_owned(),
        ],
    }
}

fn todo_at(function: &str, line: u32) -> Option<Todo> {
    Some(Todo {
        function: Some(function.to_owned()),
        location: format!("labs/breaker/exercise/circuit.rs:{line}"),
    })
}

fn assertion(test: &str) -> Outcome {
    Outcome::Failed {
        excerpt: vec![
            format!("thread '{test}' panicked at labs/breaker/core/tests/graded.rs:131:5:"),
            "the window holds the last 3 calls: (calls, failures, slow)".to_owned(),
            "  left: (5, 2, 1)".to_owned(),
            " right: (3, 0, 1)".to_owned(),
        ],
    }
}

/// Results of a whole run, from one outcome and history per test.
struct Run {
    manifest: Manifest,
    outcomes: Vec<Outcome>,
    history: Vec<(u32, bool)>,
    todos: Vec<Option<Todo>>,
}

impl Run {
    fn untouched() -> Self {
        let manifest = manifest();
        let outcomes = NAMES.iter().map(|name| todo_in_new(name)).collect();
        let mut todos: Vec<Option<Todo>> = NAMES.iter().map(|_| todo_at("new", 174)).collect();
        // Two tests build their breaker another way and stop at a later `todo!()`.
        todos[21] = todo_at("handle_input", 294);
        todos[23] = todo_at("handle_input", 294);
        Run {
            manifest,
            outcomes,
            history: vec![(0, false); NAMES.len()],
            todos,
        }
    }

    fn set(&mut self, index: usize, outcome: Outcome, history: (u32, bool), todo: Option<Todo>) {
        self.outcomes[index] = outcome;
        self.history[index] = history;
        self.todos[index] = todo;
    }

    fn scored(&self) -> Vec<ScoredTest<'_>> {
        self.manifest
            .tests
            .iter()
            .zip(&self.outcomes)
            .zip(&self.history)
            .zip(&self.todos)
            .map(
                |(((test, outcome), (failures_before, passed_before)), todo)| ScoredTest {
                    test,
                    outcome,
                    failures_before: *failures_before,
                    passed_before: *passed_before,
                    todo: todo.clone(),
                },
            )
            .collect()
    }

    fn card(&self, detail: Detail, only: bool) -> String {
        let links = BookLinks::default();
        let card = Card {
            manifest: &self.manifest,
            links: &links,
            detail,
            only,
            style: Style::PLAIN,
        };
        let mut scored = self.scored();
        if only {
            scored.retain(|scored| scored.test.id == "breaker-05");
        }
        let timings = Timings {
            build: Duration::from_millis(840),
            tests: Duration::from_millis(1_230),
            total: Duration::from_millis(2_110),
        };
        format!(
            "{}\n{}\n{}\n",
            render_header(&self.manifest, Style::PLAIN),
            card.render_results(&scored),
            card.render_summary(&scored, timings)
        )
    }
}

fn assert_snapshot(name: &str, card: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/grade/card/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, card).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with UPDATE_SNAPSHOTS=1 to write it, then review it",
            path.display()
        )
    });
    assert_eq!(
        card,
        expected,
        "the card differs from {} (UPDATE_SNAPSHOTS=1 rewrites it after a deliberate change)",
        path.display()
    );
}

#[test]
fn the_untouched_exercise_card_fits_one_screen() {
    let card = Run::untouched().card(Detail::Focus, false);
    assert!(
        card.lines().count() <= SCREEN_LINES,
        "{} lines:\n{card}",
        card.lines().count()
    );
    assert_eq!(
        card.matches("not yet implemented").count(),
        1,
        "the todo!() message is shown once, for the focused test:\n{card}"
    );
    assert_snapshot("untouched_exercise", &card);
}

#[test]
fn one_failing_test_is_shown_in_full_with_its_rerun_command() {
    let mut run = Run::untouched();
    for index in 0..NAMES.len() {
        run.set(index, Outcome::Passed, (1, true), None);
    }
    run.set(3, Outcome::Passed, (4, false), None);
    run.set(2, assertion(NAMES[2]), (2, false), None);
    let card = run.card(Detail::Focus, false);
    assert!(
        card.contains(
            "rerun: cargo test -p breaker-core --features exercise --test graded -- \
             count_based_window_keeps_only_the_last_n_calls --exact"
        ),
        "{card}"
    );
    assert_snapshot("one_failing_test", &card);
}

#[test]
fn a_regression_comes_first_and_is_marked() {
    let mut run = Run::untouched();
    for index in 0..12 {
        run.set(index, Outcome::Passed, (1, true), None);
    }
    run.set(4, assertion(NAMES[4]), (0, false), None);
    run.set(11, assertion(NAMES[11]), (1, true), None);
    run.set(12, assertion(NAMES[12]), (0, true), None);
    let card = run.card(Detail::Focus, false);
    let focus = card
        .lines()
        .find(|line| line.contains("REGRESSION: passed before, fails now"))
        .unwrap();
    assert!(
        focus.contains("breaker-12"),
        "the first regression is the focus:\n{card}"
    );
    assert!(
        card.contains("2 regressions: breaker-12, breaker-13 passed before and fail now"),
        "{card}"
    );
    assert_snapshot("regression", &card);
}

#[test]
fn a_reset_exercise_groups_its_regressions_by_todo_and_still_fits_one_screen() {
    let mut run = Run::untouched();
    for history in &mut run.history {
        *history = (1, true);
    }
    let card = run.card(Detail::Focus, false);
    assert!(card.lines().count() <= SCREEN_LINES, "{card}");
    assert!(
        card.contains(
            "  TODO   REGRESSION  22 tests stop at todo!() in `new` (circuit.rs:174): breaker-02…breaker-21, …"
        ),
        "{card}"
    );
    assert!(
        card.contains("25 regressions: breaker-01…breaker-25 passed before and fail now"),
        "{card}"
    );
}

#[test]
fn verbose_shows_every_failure_in_full_and_uncut() {
    let mut run = Run::untouched();
    for index in 0..NAMES.len() {
        run.set(index, Outcome::Passed, (0, true), None);
    }
    let mut dump = vec![
        "thread 'events_tell_the_story_in_order' panicked at labs/breaker/core/tests/graded.rs:610:5:"
            .to_owned(),
        "the events, in order:".to_owned(),
    ];
    dump.extend((0..20).map(|index| format!("    StateChanged {{ at: {index}, .. }},")));
    run.set(22, Outcome::Failed { excerpt: dump }, (3, false), None);
    run.set(4, assertion(NAMES[4]), (0, false), None);
    let card = run.card(Detail::Full, false);
    assert!(
        card.contains("StateChanged { at: 19, .. }"),
        "nothing is cut:\n{card}"
    );
    assert!(!card.contains("more lines"), "{card}");
    assert_eq!(card.matches("rerun: ").count(), 2, "{card}");
    assert_snapshot("verbose", &card);
}

#[test]
fn the_focused_failure_is_capped_and_says_how_to_see_all() {
    let mut run = Run::untouched();
    for index in 0..NAMES.len() {
        run.set(index, Outcome::Passed, (0, true), None);
    }
    let mut dump =
        vec!["thread 'x' panicked at labs/breaker/core/tests/graded.rs:610:5:".to_owned()];
    dump.extend((0..91).map(|index| format!("    StateChanged {{ at: {index}, .. }},")));
    run.set(22, Outcome::Failed { excerpt: dump }, (0, true), None);
    let card = run.card(Detail::Focus, false);
    assert!(
        card.contains(
            "        … (77 more lines: `cargo xtask grade breaker --only breaker-23` shows all)"
        ),
        "{card}"
    );
}

#[test]
fn only_one_test_is_graded_and_shown_in_full() {
    let mut run = Run::untouched();
    run.set(4, assertion(NAMES[4]), (0, false), None);
    let card = run.card(Detail::Full, true);
    assert!(!card.contains("score:"), "{card}");
    assert_snapshot("only", &card);
}

#[test]
fn a_broken_invariant_picks_its_hint() {
    let mut run = Run::untouched();
    for index in 0..NAMES.len() {
        run.set(index, Outcome::Passed, (0, true), None);
    }
    let property = Outcome::Failed {
        excerpt: vec![
            "thread 'x' panicked at labs/breaker/core/tests/graded.rs:700:1:".to_owned(),
            "Test failed: invariant: at_most_n_trials: 4 trials admitted, 3 allowed.".to_owned(),
            "minimal failing input: ops = [Acquire, Success, Acquire, Acquire, Acquire]".to_owned(),
        ],
    };
    run.set(24, property.clone(), (0, false), None);
    let card = run.card(Detail::Focus, false);
    assert!(
        card.contains(
            "hint: A finished trial keeps its slot: HalfOpen admits N trials in all, not N at a time."
        ),
        "{card}"
    );
    assert!(!card.contains("The nudge for half_open_never"), "{card}");

    run.set(4, assertion(NAMES[4]), (0, false), None);
    let card = run.card(Detail::Focus, false);
    assert!(
        card.contains("breaker-25  half open never admits more than n trial calls — breaks invariant `at_most_n_trials`"),
        "{card}"
    );
}

#[test]
fn a_timeout_suspects_a_loop_and_a_full_score_points_at_the_book() {
    let mut run = Run::untouched();
    for index in 0..NAMES.len() {
        run.set(index, Outcome::Passed, (0, true), None);
    }
    let card = run.card(Detail::Focus, false);
    assert!(
        card.contains("PASS   breaker-01…breaker-25 (25 tests)"),
        "{card}"
    );
    assert!(card.contains("score: 25/25 (100%)"), "{card}");
    assert!(
        card.contains(
            "all 25 tests pass. Read \"In production\" in book/src/patterns/circuit-breaker.md"
        ),
        "{card}"
    );

    run.set(
        8,
        Outcome::TimedOut {
            limit: Duration::from_secs(10),
        },
        (0, false),
        None,
    );
    let card = run.card(Detail::Focus, false);
    assert!(
        card.contains("TIME   breaker-09  open moves to half open after wait  timed out after 10 s — an infinite loop?"),
        "{card}"
    );
}

#[test]
fn hints_come_in_steps() {
    assert_eq!(HintStep::for_failures_before(0), HintStep::Nudge);
    assert_eq!(HintStep::for_failures_before(1), HintStep::NudgeAndPointer);
    assert_eq!(HintStep::for_failures_before(7), HintStep::NudgeAndPointer);
    let mut run = Run::untouched();
    run.set(0, assertion(NAMES[0]), (0, false), None);
    assert!(!run.card(Detail::Focus, false).contains("read:"));
    run.set(0, assertion(NAMES[0]), (1, false), None);
    assert!(run.card(Detail::Focus, false).contains(
        "read: book/src/patterns/circuit-breaker.md (or run `cargo xtask book` and open \
         target/book/patterns/circuit-breaker.html#section-1)"
    ));
}

#[test]
fn ids_are_shown_as_ranges_of_neighbours() {
    assert_eq!(
        id_ranges(&[(1, "b-02"), (2, "b-03"), (3, "b-04"), (7, "b-08")], 80),
        "b-02…b-04, b-08"
    );
    assert_eq!(id_ranges(&[(0, "b-01"), (1, "b-02")], 80), "b-01, b-02");
    assert_eq!(
        id_ranges(&[(0, "a"), (2, "c"), (4, "e"), (6, "g"), (8, "i")], 12),
        "a, c, e, …"
    );
}
