//! Shared machinery for checking the built book: where it lives, what its sources promise,
//! and a real browser to look at it with.
//!
//! The checks themselves live in `tests/tests/`: `book_content.rs` reads the built HTML and the
//! markdown sources (fast, no browser), `browser.rs` drives headless Chromium through chromedriver
//! (slow, so one browser session serves the whole file). Everything both need is here, so a
//! failure message is worded the same way wherever it comes from: it always names the page, and
//! for diagrams the diagram's index and first source line.

pub mod browser;
pub mod built;
pub mod error;
pub mod links;
pub mod paths;
pub mod references;
pub mod server;
pub mod sources;

pub use error::BookTestError;

/// How many Mermaid diagrams the guide has; the finished book must render at least this many.
///
/// `book_content.rs` re-counts the fences of the guide so this number cannot silently drift.
pub const GUIDE_DIAGRAM_COUNT: usize = 18;

/// Trims and collapses runs of whitespace, so text from markdown and from HTML compare equal
/// however each was wrapped or indented.
pub fn normalize_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`normalize_text`] plus folding typographic punctuation back to ASCII.
///
/// mdBook's smart punctuation turns `"`, `'`, `...` and `--` into curly quotes, ellipses and
/// dashes; the guide's markdown has the plain forms. Comparing through this function checks that
/// the words survived without caring which spelling of a quote the renderer chose.
pub fn normalize_prose(text: &str) -> String {
    let folded: String = text
        .chars()
        .flat_map(|c| {
            let replacement: &[char] = match c {
                '\u{2018}' | '\u{2019}' => &['\''],
                '\u{201C}' | '\u{201D}' => &['"'],
                '\u{2026}' => &['.', '.', '.'],
                '\u{2013}' => &['-', '-'],
                '\u{2014}' => &['-', '-', '-'],
                '\u{00A0}' => &[' '],
                _ => return vec![c],
            };
            replacement.to_vec()
        })
        .collect();
    normalize_text(&folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_collapsed_and_trimmed() {
        assert_eq!(
            normalize_text("  What  are\n Microservices? "),
            "What are Microservices?"
        );
    }

    #[test]
    fn smart_punctuation_folds_back_to_ascii() {
        assert_eq!(
            normalize_prose("\u{201C}it\u{2019}s\u{201D} \u{2013} wait\u{2026}"),
            "\"it's\" -- wait..."
        );
    }
}
