//! A demo's output as a snapshot test compares it: colour codes stripped, and what varies
//! from run to run (ports, temporary paths, measured durations) replaced by placeholders.
//!
//! ```
//! use lab_test_support::Transcript;
//!
//! let text = Transcript::new("\u{1b}[1mpayment\u{1b}[0m on http://127.0.0.1:41234 in 12.5 ms")
//!     .ports()
//!     .durations()
//!     .into_text();
//! assert_eq!(text, "payment on http://127.0.0.1:[port] in [duration]");
//! ```

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use crate::ansi::strip_ansi;

/// A captured output, made stable for a snapshot step by step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    text: String,
}

impl Transcript {
    /// `text` without its colour codes.
    pub fn new(text: &str) -> Transcript {
        Transcript {
            text: strip_ansi(text),
        }
    }

    /// Runs `command` to its end with standard input closed and returns its standard output
    /// as a transcript, with its exit status.
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn run(mut command: Command) -> (Transcript, ExitStatus) {
        let output = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
        (
            Transcript::new(&String::from_utf8_lossy(&output.stdout)),
            output.status,
        )
    }

    /// Every `127.0.0.1:PORT` (and `localhost:PORT`) reads `…:[port]`.
    pub fn ports(self) -> Transcript {
        let mut text = self.text;
        for host in ["127.0.0.1:", "localhost:"] {
            text = replace_digits_after(&text, host, "[port]");
        }
        Transcript { text }
    }

    /// Every measured duration (`12 ms`, `3.5ms`, `1.250 s`, `0.3s`) reads `[duration]`.
    pub fn durations(self) -> Transcript {
        Transcript {
            text: replace_durations(&self.text),
        }
    }

    /// Every occurrence of `path` reads `label` (a temporary directory, say `[data]`).
    pub fn path(self, path: &Path, label: &str) -> Transcript {
        let path = path.display().to_string();
        if path.is_empty() {
            return self;
        }
        Transcript {
            text: self.text.replace(&path, label),
        }
    }

    /// Replaces every occurrence of `from` with `to`, for whatever else a lab knows varies.
    pub fn replace(self, from: &str, to: &str) -> Transcript {
        Transcript {
            text: self.text.replace(from, to),
        }
    }

    /// The text as it stands.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text, for `insta::assert_snapshot!`.
    pub fn into_text(self) -> String {
        self.text
    }
}

/// `text` with the digits that follow each `prefix` replaced by `placeholder`.
fn replace_digits_after(text: &str, prefix: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let (before, after) = rest.split_at(at + prefix.len());
        out.push_str(before);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push_str(placeholder);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// `text` with each number followed (after at most one space) by `ms` or `s`, as a whole
/// word, replaced by `[duration]`.
fn replace_durations(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit() && (i == 0 || !is_word(chars[i - 1]));
        if starts_number && let Some(end) = duration_end(&chars, i) {
            out.push_str("[duration]");
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Where the duration starting at `start` ends, if a number there is one.
fn duration_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < chars.len() && chars[i] == ' ' {
        i += 1;
    }
    for unit in ["ms", "s"] {
        let end = i + unit.len();
        let matches = chars
            .get(i..end)
            .is_some_and(|got| got.iter().copied().eq(unit.chars()));
        if matches && chars.get(end).is_none_or(|c| !is_word(*c)) {
            return Some(end);
        }
    }
    None
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_become_a_placeholder_and_other_numbers_stay() {
        let text =
            Transcript::new("order on http://127.0.0.1:4100, payment localhost:55012/x, 2 units")
                .ports()
                .into_text();
        assert_eq!(
            text,
            "order on http://127.0.0.1:[port], payment localhost:[port]/x, 2 units"
        );
    }

    #[test]
    fn durations_become_a_placeholder_and_words_stay() {
        let text = Transcript::new("took 12 ms, then 3.25s and 0.5 s; 2 sagas, 4 items, v1s")
            .durations()
            .into_text();
        assert_eq!(
            text,
            "took [duration], then [duration] and [duration]; 2 sagas, 4 items, v1s"
        );
    }

    #[test]
    fn colours_go_and_paths_are_named() {
        let text = Transcript::new("\u{1b}[2min /tmp/run-42/data\u{1b}[0m")
            .path(Path::new("/tmp/run-42"), "[tmp]")
            .into_text();
        assert_eq!(text, "in [tmp]/data");
    }

    #[test]
    fn a_command_runs_to_its_end() {
        let mut command = Command::new("sh");
        command.args(["-c", "printf '\\033[31mred\\033[0m on 127.0.0.1:9\\n'"]);
        let (transcript, status) = Transcript::run(command);
        assert!(status.success());
        assert_eq!(transcript.ports().text(), "red on 127.0.0.1:[port]\n");
    }
}
