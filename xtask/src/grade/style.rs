//! Terminal colors for the grader, switched off where they would be noise.
//!
//! The scorecard is rendered by pure functions that take a [`Style`], so the unit tests
//! render with colors off and compare plain text, while a learner at a terminal gets
//! green passes and red failures. Colors are off when `NO_COLOR` is set (the
//! <https://no-color.org> convention) or when standard output is not a terminal (piped
//! into a file or a CI log, where escape codes would show as garbage).

use std::io::IsTerminal;

use owo_colors::OwoColorize;

/// Whether to emit ANSI colors, and helpers that apply them only when enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// True when escape codes are wanted.
    pub color: bool,
}

impl Style {
    /// Colors for this process's standard output: on for a terminal without `NO_COLOR`.
    pub fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Self {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    /// Plain text everywhere: used by tests and by quiet modes.
    #[cfg(test)]
    pub const PLAIN: Self = Self { color: false };

    /// A pass, a score of 100%, a good outcome.
    pub fn good(&self, text: &str) -> String {
        self.paint(text, |t| t.green().bold().to_string())
    }

    /// A failure or an error.
    pub fn bad(&self, text: &str) -> String {
        self.paint(text, |t| t.red().bold().to_string())
    }

    /// A warning or a timeout: something to look at, not necessarily wrong.
    pub fn warn(&self, text: &str) -> String {
        self.paint(text, |t| t.yellow().bold().to_string())
    }

    /// A hint or a pointer into the book.
    pub fn hint(&self, text: &str) -> String {
        self.paint(text, |t| t.cyan().to_string())
    }

    /// Secondary detail (ids, timings, captured output).
    pub fn dim(&self, text: &str) -> String {
        self.paint(text, |t| t.dimmed().to_string())
    }

    /// Bold, uncoloured: headings and the next step to take.
    pub fn strong(&self, text: &str) -> String {
        self.paint(text, |t| t.bold().to_string())
    }

    fn paint(&self, text: &str, colorize: impl Fn(&str) -> String) -> String {
        if self.color {
            colorize(text)
        } else {
            text.to_owned()
        }
    }
}
