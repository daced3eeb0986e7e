//! The lines a narrated demo prints, in one layout for every lab.
//!
//! A demo tells its story in steps (a title, then what happens), shows the requests it sends
//! with the responses they get, and stamps events with the scenario's time. Each method
//! returns the line, so a demo prints it and a snapshot test compares it; colours come from
//! the [`Palette`] the narrator was made with.

use sansio_core::Millis;

use crate::palette::{Palette, Tone};

/// Lays out a demo's lines with one palette.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Narrator {
    palette: Palette,
}

impl Narrator {
    /// A narrator painting with `palette`.
    pub fn new(palette: Palette) -> Narrator {
        Narrator { palette }
    }

    /// A narrator for standard output (colours only on a terminal without `NO_COLOR`).
    pub fn detect() -> Narrator {
        Narrator::new(Palette::detect())
    }

    /// The palette, for a lab's own renderers (tables, lane diagrams).
    pub fn palette(&self) -> Palette {
        self.palette
    }

    /// A step's title, after a blank line: `\nTitle`.
    pub fn step(&self, title: &str) -> String {
        format!("\n{}", self.palette.paint(title, Tone::Title))
    }

    /// A request sent: `  → GET /path  detail`.
    pub fn request(&self, method: &str, target: &str, detail: &str) -> String {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("  {}", self.palette.dim(detail))
        };
        format!(
            "  {} {} {target}{detail}",
            self.palette.paint("→", Tone::Cyan),
            self.palette.strong(method),
        )
    }

    /// A response received: `  ← 200 OK  detail`, green for 2xx and 3xx, red otherwise.
    pub fn response(&self, status: u16, reason: &str, detail: &str) -> String {
        let status_text = format!("{status} {reason}");
        let tone = if (200..400).contains(&status) {
            Tone::Green
        } else {
            Tone::Red
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("  {}", self.palette.dim(detail))
        };
        format!(
            "  {} {}{detail}",
            self.palette.paint("←", Tone::Cyan),
            self.palette.paint(status_text.trim_end(), tone),
        )
    }

    /// An indented line of detail under a request or an event.
    pub fn detail(&self, text: &str) -> String {
        format!("    {text}")
    }

    /// A timeline row: the scenario's time, who acted, what happened:
    /// `   12.345s  payment   text`.
    pub fn at(&self, now: Millis, who: &str, text: &str) -> String {
        format!(
            "  {}  {}  {text}",
            self.palette
                .dim(&format!("{:>8.3}s", now.0 as f64 / 1000.0)),
            self.palette.strong(&format!("{who:<10}")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_have_the_documented_layout() {
        let n = Narrator::new(Palette::PLAIN);
        assert_eq!(n.step("1. Start"), "\n1. Start");
        assert_eq!(
            n.request("GET", "/api/users/7", "(no token)"),
            "  → GET /api/users/7  (no token)"
        );
        assert_eq!(n.request("GET", "/x", ""), "  → GET /x");
        assert_eq!(
            n.response(429, "Too Many Requests", "retry-after: 1"),
            "  ← 429 Too Many Requests  retry-after: 1"
        );
        assert_eq!(n.response(200, "", ""), "  ← 200");
        assert_eq!(n.detail("{}"), "    {}");
        assert_eq!(
            n.at(Millis(12_345), "payment", "failed"),
            "    12.345s  payment     failed"
        );
    }

    #[test]
    fn colours_mark_success_and_failure_differently() {
        let n = Narrator::new(Palette::COLORED);
        assert_ne!(
            n.response(200, "OK", ""),
            n.response(500, "OK", "").replace("500", "200")
        );
    }
}
