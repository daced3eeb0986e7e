//! Picks the part of a failing test's output that helps: the panic message, and for a
//! property test the minimal failing input and the seed that reproduces it.
//!
//! A test process prints a lot around the one thing a learner needs; a property test
//! prints a panic for every case it tries while shrinking. The last panic is the verdict
//! (for proptest it carries the shrunk, minimal input), so that is the block we keep.
//! The block is kept whole; the scorecard shortens it with [`cap`] unless the learner asked
//! for everything (`--verbose`, `--only`).

/// At most this many lines of a panic message are shown; the rest is summarised.
pub const MAX_EXCERPT_LINES: usize = 16;

/// Lines longer than this (a long `Debug` of a minimal input) are cut, keeping the start.
pub const MAX_LINE_CHARS: usize = 400;

/// The lines worth showing from a failed test's standard error and output, uncut.
pub fn failure_excerpt(stderr: &str, stdout: &str) -> Vec<String> {
    let mut excerpt = last_panic_block(stderr)
        .or_else(|| last_panic_block(stdout))
        .unwrap_or_else(|| tail(stderr, stdout));
    let wraps_a_todo = excerpt
        .get(1)
        .is_some_and(|line| line.starts_with("Test failed: not yet implemented"));
    if wraps_a_todo && let Some(todo) = last_todo_panic(stderr) {
        // Proptest reports where it gave up, not where the `todo!()` is: say both.
        excerpt.splice(0..0, todo);
    }
    excerpt.extend(seed_lines(stderr));
    excerpt.iter().map(|line| tidy_paths(line)).collect()
}

/// Where a test stopped at a `todo!()`: the panic's file, line and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoPanic {
    /// The file, relative to the workspace root (`labs/breaker/exercise/circuit.rs`).
    pub file: String,
    /// The line of the `todo!()`.
    pub line: u32,
    /// The `todo!`'s message, if it has one (`build a Closed breaker`).
    pub message: Option<String>,
}

/// The `todo!()` a failure stopped at, if its panic is "not yet implemented".
pub fn todo_panic(excerpt: &[String]) -> Option<TodoPanic> {
    let at = excerpt
        .iter()
        .position(|line| line.contains("panicked at "))?;
    let message = excerpt.get(at + 1)?.trim();
    let message = match message.strip_prefix("not yet implemented") {
        Some("") => None,
        Some(rest) => Some(rest.strip_prefix(": ")?.to_owned()),
        None => return None,
    };
    let location = excerpt[at]
        .split("panicked at ")
        .nth(1)?
        .trim_end_matches(':');
    let mut parts = location.rsplitn(3, ':');
    let _column = parts.next()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?.to_owned();
    Some(TodoPanic {
        file,
        line,
        message,
    })
}

/// The name of the function whose body holds `line` (1-based) of `source`: the nearest
/// `fn name` at or above it.
/// A method is named with its type (`SlidingWindow::new`), since two types may both have
/// a `new`.
pub fn enclosing_function(source: &str, line: u32) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let last = usize::try_from(line).ok()?.min(lines.len());
    let (at, name) = lines[..last]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(at, text)| Some((at, function_declared(text)?)))?;
    let indented = lines[at].starts_with([' ', '\t']);
    let owner = lines[..at]
        .iter()
        .rev()
        .find(|text| !text.starts_with([' ', '\t', '}']) && !text.trim().is_empty())
        .and_then(|text| impl_type(text));
    Some(match owner {
        Some(owner) if indented => format!("{owner}::{name}"),
        _ => name,
    })
}

/// `Type` from `impl Type {`, `impl<T> Trait for Type<T> {`.
fn impl_type(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix("impl")?;
    let rest = match rest.strip_prefix('<') {
        Some(generic) => generic.split_once('>')?.1,
        None => rest,
    };
    let subject = rest.rsplit(" for ").next()?;
    let name: String = subject
        .trim()
        .chars()
        .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// `name` when `text` declares `fn name` (after qualifiers such as `pub(crate) const`).
fn function_declared(text: &str) -> Option<String> {
    let mut tokens = text.split_whitespace();
    loop {
        let token = tokens.next()?;
        if token == "fn" {
            let name: String = tokens
                .next()?
                .chars()
                .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
                .collect();
            return (!name.is_empty()).then_some(name);
        }
        let qualifier = token.starts_with("pub")
            || ["const", "async", "unsafe", "extern", "default", "\"C\""].contains(&token);
        if !qualifier {
            return None;
        }
    }
}

/// For a property test that replayed a saved case (proptest prints the seed only when it
/// first saves it), the seed line from the regressions file whose "shrinks to" comment
/// matches this failure's minimal input, or else a pointer to the file.
pub fn replayed_seed(
    excerpt: &[String],
    regressions_file: &str,
    regressions: Option<&str>,
) -> Option<String> {
    let minimal_input = excerpt
        .iter()
        .find_map(|line| line.strip_prefix("minimal failing input: "))?;
    if excerpt.iter().any(|line| line.starts_with("seed")) {
        return None;
    }
    let regressions = regressions?;
    let matching = regressions
        .lines()
        .filter(|line| is_seed_line(line))
        .find(|line| {
            line.split_once("# shrinks to ")
                .is_some_and(|(_, shrunk)| shrunk.trim() == minimal_input.trim())
        });
    Some(match matching {
        Some(line) => format!("seed: {} (replayed from {regressions_file})", line.trim()),
        None => format!("seeds that reproduce it are replayed from {regressions_file}"),
    })
}

/// The last `thread '…' panicked at …` line followed by "not yet implemented", and that line.
fn last_todo_panic(output: &str) -> Option<[String; 2]> {
    let lines: Vec<&str> = output.lines().collect();
    lines.windows(2).rev().find_map(|pair| {
        (pair[0].contains("panicked at ") && pair[1].starts_with("not yet implemented"))
            .then(|| [pair[0].trim_end().to_owned(), pair[1].trim_end().to_owned()])
    })
}

/// The last `thread '…' panicked at …` block, up to the backtrace note.
fn last_panic_block(output: &str) -> Option<Vec<String>> {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines
        .iter()
        .rposition(|line| line.contains("panicked at"))?;
    let block = lines[start..]
        .iter()
        .take_while(|line| !is_block_end(line))
        .filter(|line| !is_proptest_statistic(line))
        .map(|line| line.trim_end().to_owned())
        .collect::<Vec<_>>();
    Some(trim_blank_edges(block))
}

fn is_block_end(line: &str) -> bool {
    line.starts_with("note: run with `RUST_BACKTRACE")
        || line.starts_with("stack backtrace:")
        || line.starts_with("test result:")
        || line.starts_with("error: test failed")
}

/// Proptest's "successes: 12" counters: true, but not what the learner needs.
fn is_proptest_statistic(line: &str) -> bool {
    let trimmed = line.trim_start();
    ["successes:", "local rejects:", "global rejects:"]
        .iter()
        .any(|prefix| trimmed.starts_with(prefix))
}

/// Proptest's persisted seed (`cc 1f2e… # shrinks to …`) and where it was saved.
fn seed_lines(stderr: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in stderr.lines() {
        if let Some(file) = line.strip_prefix("proptest: Saving this and future failures in ") {
            found.push(format!(
                "seed saved in {}: the next run replays this case first",
                file.trim()
            ));
        } else if is_seed_line(line) {
            found.push(format!("seed: {}", line.trim()));
        }
    }
    found
}

fn is_seed_line(line: &str) -> bool {
    line.strip_prefix("cc ").is_some_and(|rest| {
        let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        hex.len() >= 16
    })
}

/// Without a panic (a crash, an abort), the last lines of output are the best clue.
fn tail(stderr: &str, stdout: &str) -> Vec<String> {
    let source = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<String> = source
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with("running "))
        .map(|line| line.trim_end().to_owned())
        .collect();
    let skip = lines.len().saturating_sub(6);
    lines.into_iter().skip(skip).collect()
}

fn trim_blank_edges(mut lines: Vec<String>) -> Vec<String> {
    while lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    let leading = lines
        .iter()
        .take_while(|line| line.trim().is_empty())
        .count();
    lines.drain(..leading);
    lines
}

/// The excerpt shortened for the scorecard: at most [`MAX_EXCERPT_LINES`] lines of at most
/// [`MAX_LINE_CHARS`] characters; what was cut is counted, and `see_all` says how to see it.
pub fn cap(lines: &[String], see_all: &str) -> Vec<String> {
    let mut capped: Vec<String> = lines
        .iter()
        .map(|line| cut_long_line(line, see_all))
        .collect();
    if capped.len() > MAX_EXCERPT_LINES {
        let hidden = capped.len() - (MAX_EXCERPT_LINES - 1);
        capped.truncate(MAX_EXCERPT_LINES - 1);
        capped.push(format!("… ({hidden} more lines: {see_all})"));
    }
    capped
}

fn cut_long_line(line: &str, see_all: &str) -> String {
    let length = line.chars().count();
    if length <= MAX_LINE_CHARS {
        return line.to_owned();
    }
    let kept: String = line.chars().take(MAX_LINE_CHARS).collect();
    format!(
        "{kept} … ({} more characters: {see_all})",
        length - MAX_LINE_CHARS
    )
}

/// Shortens `core/src/../../exercise/part.rs` (how rustc names a `#[path]` module) to
/// `exercise/part.rs`, so the learner sees the file they actually edit.
pub fn tidy_paths(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|token| {
                    if token.contains("/../") {
                        normalize_lexically(token)
                    } else {
                        token.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn normalize_lexically(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match (part, parts.last()) {
            ("..", Some(previous)) if *previous != ".." && !previous.is_empty() => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keeps_the_panic_message_and_drops_the_backtrace_note() {
        let stderr = "\nthread 'main' panicked at labs/breaker/exercise/machine.rs:42:9:\n\
                      not yet implemented: record a failure\n\
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            failure_excerpt(stderr, "running 1 test\n"),
            vec![
                "thread 'main' panicked at labs/breaker/exercise/machine.rs:42:9:".to_owned(),
                "not yet implemented: record a failure".to_owned(),
            ]
        );
    }

    #[test]
    fn a_property_test_shows_the_last_panic_its_minimal_input_and_the_seed() {
        let stderr = "thread 'main' panicked at tests/graded.rs:10:5:\nshrinking case 1\n\
            note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\
            thread 'main' panicked at tests/graded.rs:10:5:\nshrinking case 2\n\
            proptest: Saving this and future failures in /w/tests/graded.proptest-regressions\n\
            proptest: If this test was run on a CI system, you may wish to add the following line to your copy of the file.\n\
            cc 8d1f0c2a9b7e6d5c4b3a29180706f5e4d3c2b1a0 # shrinks to calls = 3\n\
            thread 'main' panicked at tests/graded.rs:5:1:\n\
            Test failed: admitted 4 calls in half-open.\nminimal failing input: calls = 3\n\
            \tsuccesses: 7\n\tlocal rejects: 0\n\tglobal rejects: 0\n\n";
        let excerpt = failure_excerpt(stderr, "");
        assert_eq!(excerpt[0], "thread 'main' panicked at tests/graded.rs:5:1:");
        assert_eq!(excerpt[1], "Test failed: admitted 4 calls in half-open.");
        assert_eq!(excerpt[2], "minimal failing input: calls = 3");
        assert!(
            excerpt.iter().all(|line| !line.contains("successes")),
            "{excerpt:?}"
        );
        assert!(
            excerpt.iter().all(|line| !line.contains("shrinking case")),
            "{excerpt:?}"
        );
        assert!(
            excerpt
                .iter()
                .any(|line| line.starts_with("seed: cc 8d1f0c2a")),
            "{excerpt:?}"
        );
        assert!(
            excerpt
                .iter()
                .any(|line| line.contains("graded.proptest-regressions")),
            "{excerpt:?}"
        );
    }

    #[test]
    fn a_replayed_property_failure_finds_its_seed_in_the_regressions_file() {
        let excerpt = vec![
            "Test failed: not commutative.".to_owned(),
            "minimal failing input: a = 0, b = 501".to_owned(),
        ];
        let regressions = "# Seeds for failure cases proptest has generated in the past.\n\
            cc 1111111111111111111111111111111111111111 # shrinks to a = 3, b = 9\n\
            cc 5248b94c8776210758df8394b2bfa28e54f45be3 # shrinks to a = 0, b = 501\n";
        assert_eq!(
            replayed_seed(
                &excerpt,
                "tests/graded.proptest-regressions",
                Some(regressions)
            )
            .unwrap(),
            "seed: cc 5248b94c8776210758df8394b2bfa28e54f45be3 # shrinks to a = 0, b = 501 \
             (replayed from tests/graded.proptest-regressions)"
        );
        assert_eq!(
            replayed_seed(&excerpt[..1], "f", Some(regressions)),
            None,
            "not a proptest"
        );
        assert_eq!(replayed_seed(&excerpt, "f", None), None, "no saved seeds");
    }

    #[test]
    fn a_property_test_stopped_by_a_todo_names_the_todo() {
        let stderr = "thread 'p' (1) panicked at labs/breaker/core/src/../../exercise/circuit.rs:174:9:\n\
            not yet implemented: build a Closed breaker\n\
            thread 'p' (1) panicked at labs/breaker/core/tests/graded.rs:760:48:\n\
            Test failed: not yet implemented: build a Closed breaker\n\
            minimal failing input: [Acquire]\n";
        let excerpt = failure_excerpt(stderr, "");
        assert_eq!(
            excerpt[..3],
            [
                "thread 'p' (1) panicked at labs/breaker/exercise/circuit.rs:174:9:".to_owned(),
                "not yet implemented: build a Closed breaker".to_owned(),
                "thread 'p' (1) panicked at labs/breaker/core/tests/graded.rs:760:48:".to_owned(),
            ]
        );
        assert_eq!(todo_panic(&excerpt).unwrap().line, 174);
    }

    #[test]
    fn without_a_panic_the_tail_of_the_output_is_shown() {
        let excerpt = failure_excerpt("fatal runtime error: stack overflow\n", "running 1 test\n");
        assert_eq!(
            excerpt,
            vec!["fatal runtime error: stack overflow".to_owned()]
        );
    }

    #[test]
    fn a_long_debug_dump_is_kept_whole_for_the_full_view() {
        let mut stderr = String::from("thread 'main' panicked at x.rs:1:1:\n");
        for index in 0..92 {
            stderr.push_str(&format!("line {index}\n"));
        }
        stderr.push_str(&format!("{}\n", "Acquire, ".repeat(100)));
        let excerpt = failure_excerpt(&stderr, "");
        assert_eq!(excerpt.len(), 94, "nothing is cut before the scorecard");
        assert_eq!(excerpt[92], "line 91");
        assert_eq!(excerpt[93].len(), 899);
    }

    #[test]
    fn long_messages_are_capped_saying_how_to_see_all() {
        let lines: Vec<String> = (0..92).map(|index| format!("line {index}")).collect();
        let capped = cap(&lines, "--verbose shows all");
        assert_eq!(capped.len(), MAX_EXCERPT_LINES);
        assert_eq!(
            capped[MAX_EXCERPT_LINES - 1],
            "… (77 more lines: --verbose shows all)"
        );
    }

    #[test]
    fn very_long_lines_are_cut() {
        let line = format!("minimal failing input: [{}]", "Acquire, ".repeat(100));
        let capped = cap(&[line], "--verbose shows all");
        assert!(
            capped[0].chars().count() < MAX_LINE_CHARS + 60,
            "{}",
            capped[0]
        );
        assert!(
            capped[0].ends_with("more characters: --verbose shows all)"),
            "{}",
            capped[0]
        );
    }

    #[test]
    fn a_todo_panic_is_located_and_named_by_its_function() {
        let excerpt = vec![
            "thread 'starts_closed' panicked at labs/breaker/exercise/circuit.rs:174:9:".to_owned(),
            "not yet implemented: build a Closed breaker".to_owned(),
        ];
        let found = todo_panic(&excerpt).unwrap();
        assert_eq!(
            found,
            TodoPanic {
                file: "labs/breaker/exercise/circuit.rs".to_owned(),
                line: 174,
                message: Some("build a Closed breaker".to_owned()),
            }
        );
        let bare = [
            "thread 'x' panicked at a.rs:3:5:".to_owned(),
            "not yet implemented".to_owned(),
        ];
        assert_eq!(todo_panic(&bare).unwrap().message, None);
        let assertion = [
            "thread 'x' panicked at a.rs:3:5:".to_owned(),
            "assertion failed".to_owned(),
        ];
        assert_eq!(todo_panic(&assertion), None);

        let source = "impl Breaker {\n    /// Builds it.\n    pub fn new(config: Config) -> Self {\n\
                      \x20       // a comment about fn names\n        todo!(\"build\")\n    }\n}\n\
                      impl<T> Default for Window<T> {\n    fn default() -> Self {\n        todo!()\n\
                      \x20   }\n}\nfn backoff(k: u32) -> u64 {\n    todo!()\n}\n";
        assert_eq!(
            enclosing_function(source, 5).as_deref(),
            Some("Breaker::new")
        );
        assert_eq!(
            enclosing_function(source, 10).as_deref(),
            Some("Window::default")
        );
        assert_eq!(enclosing_function(source, 14).as_deref(), Some("backoff"));
        assert_eq!(enclosing_function(source, 1), None);
    }

    #[test]
    fn names_a_path_module_by_the_file_the_learner_edits() {
        assert_eq!(
            tidy_paths(" --> labs/breaker/core/src/../../exercise/machine.rs:6:14\n  |"),
            " --> labs/breaker/exercise/machine.rs:6:14\n  |"
        );
        assert_eq!(normalize_lexically("../x/../y"), "../y");
    }

    #[test]
    fn a_panic_in_the_exercise_names_the_exercise_file() {
        let stderr = "thread 'x' panicked at labs/breaker/core/src/../../exercise/circuit.rs:174:9:\nnot yet implemented\n";
        assert_eq!(
            failure_excerpt(stderr, "")[0],
            "thread 'x' panicked at labs/breaker/exercise/circuit.rs:174:9:"
        );
    }
}
