//! Terminal colours, decided once at the edge and switched off where they would be noise.
//!
//! Every demo and the grader paint through a [`Palette`]: escape codes only when the stream
//! is a terminal and `NO_COLOR` (<https://no-color.org>) is unset or empty. Renderers take the
//! palette as an argument, so snapshot tests render with [`Palette::PLAIN`] and compare text.

use std::io::IsTerminal;

use owo_colors::OwoColorize;

/// What a piece of text is, which decides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Bold, uncoloured: headings, names, the next thing to do.
    Strong,
    /// Bold green: a pass, a success, a good outcome.
    Good,
    /// Bold red: a failure, or what an operator must look at.
    Bad,
    /// Bold yellow: a warning, a timeout, an undo.
    Warn,
    /// Cyan: a hint, a pointer, an action taken.
    Hint,
    /// Dimmed: secondary detail (ids, timings, captured output).
    Dim,
    /// Plain green.
    Green,
    /// Plain red.
    Red,
    /// Plain yellow.
    Yellow,
    /// Plain cyan.
    Cyan,
    /// Plain magenta.
    Magenta,
    /// Plain blue.
    Blue,
    /// Bold yellow, for a demo's step titles.
    Title,
}

/// Whether to paint, and the one place that applies colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Palette {
    /// True when escape codes are wanted.
    pub color: bool,
}

impl Palette {
    /// Plain text: pipes, files, snapshots and `NO_COLOR`.
    pub const PLAIN: Palette = Palette { color: false };
    /// ANSI colours, whatever the stream.
    pub const COLORED: Palette = Palette { color: true };

    /// Colours for standard output: on for a terminal without `NO_COLOR`.
    pub fn detect() -> Palette {
        Palette::for_stream(std::io::stdout().is_terminal())
    }

    /// Colours for standard error: on for a terminal without `NO_COLOR`.
    pub fn detect_stderr() -> Palette {
        Palette::for_stream(std::io::stderr().is_terminal())
    }

    /// Colours for a stream that is (or is not) a terminal, unless `NO_COLOR` forbids them.
    pub fn for_stream(is_terminal: bool) -> Palette {
        Palette {
            color: is_terminal && !no_color(),
        }
    }

    /// `text` in the colour of `tone`, or unchanged when colours are off.
    pub fn paint(self, text: &str, tone: Tone) -> String {
        if !self.color {
            return text.to_owned();
        }
        match tone {
            Tone::Strong => text.bold().to_string(),
            Tone::Good => text.green().bold().to_string(),
            Tone::Bad => text.red().bold().to_string(),
            Tone::Warn => text.yellow().bold().to_string(),
            Tone::Hint | Tone::Cyan => text.cyan().to_string(),
            Tone::Dim => text.dimmed().to_string(),
            Tone::Green => text.green().to_string(),
            Tone::Red => text.red().to_string(),
            Tone::Yellow => text.yellow().to_string(),
            Tone::Magenta => text.magenta().to_string(),
            Tone::Blue => text.blue().to_string(),
            Tone::Title => text.bold().yellow().to_string(),
        }
    }

    /// [`Tone::Strong`].
    pub fn strong(self, text: &str) -> String {
        self.paint(text, Tone::Strong)
    }
    /// [`Tone::Good`].
    pub fn good(self, text: &str) -> String {
        self.paint(text, Tone::Good)
    }
    /// [`Tone::Bad`].
    pub fn bad(self, text: &str) -> String {
        self.paint(text, Tone::Bad)
    }
    /// [`Tone::Warn`].
    pub fn warn(self, text: &str) -> String {
        self.paint(text, Tone::Warn)
    }
    /// [`Tone::Hint`].
    pub fn hint(self, text: &str) -> String {
        self.paint(text, Tone::Hint)
    }
    /// [`Tone::Dim`].
    pub fn dim(self, text: &str) -> String {
        self.paint(text, Tone::Dim)
    }
}

/// True when `NO_COLOR` is set to anything but the empty string.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_left_alone_and_colours_wrap_it() {
        assert_eq!(Palette::PLAIN.bad("failed"), "failed");
        let painted = Palette::COLORED.bad("failed");
        assert!(painted.starts_with('\u{1b}') && painted.contains("failed"));
        assert_ne!(painted, "failed");
    }

    #[test]
    fn a_stream_that_is_not_a_terminal_gets_no_colours() {
        assert_eq!(Palette::for_stream(false), Palette::PLAIN);
    }
}
