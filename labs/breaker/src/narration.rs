//! The narrated timeline: one line per second, a summary, and the side-by-side comparison.
//!
//! Rendering is kept apart from driving so it is a pure function of numbers:
//! the demo prints it live with colors, the snapshot test renders the very same
//! lines without them. Colors are a [`Palette`] decision made once, at the
//! edge (a terminal that wants them and no `NO_COLOR`), never deep inside: the palette is
//! `lab-runtime`'s, the same for every lab.

use std::fmt::Write as _;

pub use lab_runtime::palette::{Palette, Tone};
use serde::Serialize;

/// What happened during one second of the scenario (calls are counted when they *end*).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SecondRow {
    /// Which second of the scenario (0-based).
    pub second: u64,
    /// Calls answered during this second, whatever the answer.
    pub calls: u32,
    /// Calls the payment service answered with a 2xx.
    pub ok: u32,
    /// Calls that failed: a 5xx, a transport error or a timeout.
    pub failed: u32,
    /// Calls the breaker rejected, answered by the fallback instead.
    pub fallback: u32,
    /// Milliseconds callers spent waiting on calls that did not succeed (failed, or
    /// answered by the fallback after a failed attempt).
    pub wasted_ms: u64,
    /// The breaker's state at the end of the second; `None` when there is no breaker.
    pub state: Option<String>,
    /// What the scenario did to the upstream at the start of this second, if anything.
    pub note: Option<String>,
}

/// Totals over a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Calls made.
    pub calls: u32,
    /// Calls that succeeded.
    pub ok: u32,
    /// Calls that failed after waiting.
    pub failed: u32,
    /// Calls answered by the fallback.
    pub fallback: u32,
    /// Total milliseconds spent waiting on calls that failed.
    pub wasted_ms: u64,
    /// The longest any single call made its caller wait, in milliseconds.
    pub longest_wait_ms: u64,
    /// State transitions, in order, as `second: from → to`.
    pub transitions: Vec<String>,
}

impl Summary {
    /// Adds one second's row to the totals.
    pub fn add(&mut self, row: &SecondRow) {
        self.calls += row.calls;
        self.ok += row.ok;
        self.failed += row.failed;
        self.fallback += row.fallback;
        self.wasted_ms += row.wasted_ms;
    }
}

/// The width of the per-second bar, in characters.
const BAR_WIDTH: u32 = 20;

/// The column header printed above the timeline.
pub fn header(palette: Palette) -> String {
    palette.paint(
        "   t │ calls    ok  fail  fallback │ waited │ state      │ answers",
        Tone::Strong,
    )
}

/// One timeline line.
pub fn render_row(row: &SecondRow, palette: Palette) -> String {
    let state = row.state.as_deref().unwrap_or("no breaker");
    let state_color = match state {
        "closed" => Tone::Green,
        "open" | "forced-open" => Tone::Red,
        "half-open" => Tone::Yellow,
        _ => Tone::Dim,
    };
    let mut line = format!(
        "{:>3}s │ {:>5} {:>5} {} {} │ {} │ {} │ {}",
        row.second,
        row.calls,
        row.ok,
        palette.paint(&format!("{:>5}", row.failed), fail_color(row.failed)),
        palette.paint(
            &format!("{:>9}", row.fallback),
            fallback_color(row.fallback)
        ),
        format_wait(row.wasted_ms),
        palette.paint(&format!("{state:<10}"), state_color),
        bar(row, palette),
    );
    if let Some(note) = &row.note {
        let _ = write!(
            line,
            "  {}",
            palette.paint(&format!("◀ {note}"), Tone::Cyan)
        );
    }
    line
}

fn fail_color(failed: u32) -> Tone {
    if failed > 0 { Tone::Red } else { Tone::Dim }
}

fn fallback_color(fallback: u32) -> Tone {
    if fallback > 0 {
        Tone::Yellow
    } else {
        Tone::Dim
    }
}

fn format_wait(ms: u64) -> String {
    format!("{:>5.1}s", ms as f64 / 1000.0)
}

/// A bar of [`BAR_WIDTH`] cells split in proportion: ok `█`, failed `▓`, fallback `░`.
fn bar(row: &SecondRow, palette: Palette) -> String {
    if row.calls == 0 {
        return String::new();
    }
    let cells = |n: u32| ((n * BAR_WIDTH) + row.calls / 2) / row.calls;
    let failed = cells(row.failed);
    let fallback = cells(row.fallback);
    let ok = BAR_WIDTH
        .saturating_sub(failed + fallback)
        .min(cells(row.ok));
    format!(
        "{}{}{}",
        palette.paint(&"█".repeat(ok as usize), Tone::Green),
        palette.paint(&"▓".repeat(failed as usize), Tone::Red),
        palette.paint(&"░".repeat(fallback as usize), Tone::Yellow),
    )
}

/// The summary of one run, a few lines.
pub fn render_summary(title: &str, summary: &Summary, palette: Palette) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", palette.paint(title, Tone::Strong));
    let _ = writeln!(
        out,
        "  {} calls: {} ok, {} failed, {} answered by the fallback",
        summary.calls, summary.ok, summary.failed, summary.fallback
    );
    let _ = writeln!(
        out,
        "  callers waited {} on calls that did not succeed (longest single wait {} ms)",
        format_wait(summary.wasted_ms).trim(),
        summary.longest_wait_ms
    );
    for transition in &summary.transitions {
        let _ = writeln!(out, "  {transition}");
    }
    out
}

/// The two runs side by side: the point of the whole demo.
pub fn render_comparison(with: &Summary, without: &Summary, palette: Palette) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        palette.paint(
            "                                   with breaker   without breaker",
            Tone::Strong
        )
    );
    let rows: [(&str, String, String); 6] = [
        ("calls", with.calls.to_string(), without.calls.to_string()),
        ("succeeded", with.ok.to_string(), without.ok.to_string()),
        (
            "failed after waiting",
            with.failed.to_string(),
            without.failed.to_string(),
        ),
        (
            "answered by the fallback",
            with.fallback.to_string(),
            without.fallback.to_string(),
        ),
        (
            "time wasted waiting on failures",
            format_wait(with.wasted_ms).trim().to_owned(),
            format_wait(without.wasted_ms).trim().to_owned(),
        ),
        (
            "longest single wait",
            format!("{} ms", with.longest_wait_ms),
            format!("{} ms", without.longest_wait_ms),
        ),
    ];
    for (label, a, b) in rows {
        let _ = writeln!(out, "  {label:<32} {a:>12}   {b:>15}");
    }
    if with.wasted_ms < without.wasted_ms {
        let saved = without.wasted_ms - with.wasted_ms;
        let _ = writeln!(
            out,
            "  {}",
            palette.paint(
                &format!(
                    "The breaker spared callers {} of waiting: without it, every caller queued \
                     behind the broken service, the cascading failure.",
                    format_wait(saved).trim()
                ),
                Tone::Green
            )
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(calls: u32, ok: u32, failed: u32, fallback: u32) -> SecondRow {
        SecondRow {
            second: 3,
            calls,
            ok,
            failed,
            fallback,
            wasted_ms: 1500,
            state: Some("open".to_owned()),
            note: Some("upstream fails".to_owned()),
        }
    }

    #[test]
    fn plain_rows_carry_no_escape_codes() {
        let line = render_row(&row(20, 10, 5, 5), Palette::PLAIN);
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(line.contains("open"), "{line}");
        assert!(line.contains("◀ upstream fails"), "{line}");
    }

    #[test]
    fn colored_rows_do_carry_escape_codes() {
        let line = render_row(&row(20, 10, 5, 5), Palette::COLORED);
        assert!(line.contains('\u{1b}'), "{line}");
    }

    #[test]
    fn bar_splits_in_proportion_and_never_overflows() {
        let line = render_row(&row(20, 10, 5, 5), Palette::PLAIN);
        assert!(line.contains(&format!(
            "{}{}{}",
            "█".repeat(10),
            "▓".repeat(5),
            "░".repeat(5)
        )));
        let odd = render_row(&row(3, 1, 1, 1), Palette::PLAIN);
        let cells = odd.chars().filter(|c| "█▓░".contains(*c)).count();
        assert!(cells <= BAR_WIDTH as usize, "{odd}");
    }
}
