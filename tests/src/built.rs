//! Reading the built book as HTML: which pages exist, and what headings, tables, ids and
//! placeholders they hold.
//!
//! Only the content inside `<main>` counts for headings and tables, so mdBook's own chrome (the
//! menu title, the keyboard-shortcuts dialog) can never satisfy a check meant for the chapters.

use std::collections::HashSet;
use std::path::Path;

use scraper::{ElementRef, Html, Selector};

use crate::paths::read_to_string;
use crate::sources::relative_slash_path;
use crate::{BookTestError, normalize_prose};

/// Generated pages that are not chapters: the all-in-one print view, the not-found page and the
/// `<noscript>` table of contents. The chapters are checked one by one instead.
pub const NON_CHAPTER_PAGES: [&str; 3] = ["print.html", "404.html", "toc.html"];

/// The character sequences that betray text decoded with the wrong encoding (UTF-8 read as
/// Mac Roman, Windows-1252 or Latin-1), plus the replacement character of a failed decode.
pub const MISDECODED_SEQUENCES: [&str; 5] = ["üë", "‚Ä", "â€", "Ã", "\u{FFFD}"];

/// Parses a CSS selector written in this crate.
///
/// # Panics
/// If `css` is not a valid selector: the selectors are constants, so this is a bug here.
pub fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|error| panic!("invalid CSS selector {css:?}: {error}"))
}

/// Every `.html` file of the built book, relative and `/`-separated, sorted.
pub fn html_files(book_dir: &Path) -> Result<Vec<String>, BookTestError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(book_dir).sort_by_file_name() {
        let entry = entry.map_err(|error| {
            let path = error
                .path()
                .map_or_else(|| book_dir.to_path_buf(), Path::to_path_buf);
            BookTestError::io(path, error.into())
        })?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|ext| ext == "html")
        {
            files.push(relative_slash_path(book_dir, entry.path()));
        }
    }
    Ok(files)
}

/// The chapter pages: every built `.html` file except [`NON_CHAPTER_PAGES`] at the root.
pub fn chapter_pages(book_dir: &Path) -> Result<Vec<String>, BookTestError> {
    Ok(html_files(book_dir)?
        .into_iter()
        .filter(|page| !NON_CHAPTER_PAGES.contains(&page.as_str()))
        .collect())
}

/// Reads and parses one built page.
pub fn parse_page(book_dir: &Path, page: &str) -> Result<Html, BookTestError> {
    Ok(Html::parse_document(&read_to_string(&book_dir.join(page))?))
}

/// The text a reader sees in an element, normalized with [`normalize_prose`].
pub fn element_text(element: ElementRef<'_>) -> String {
    normalize_prose(&element.text().collect::<String>())
}

/// The chapter headings of a page (`h1`–`h6` inside `<main>`).
pub fn headings(document: &Html) -> Vec<String> {
    let headings = selector("main h1, main h2, main h3, main h4, main h5, main h6");
    document.select(&headings).map(element_text).collect()
}

/// The rows of every table inside `<main>`, each as its cells' texts.
pub fn table_rows(document: &Html) -> Vec<Vec<String>> {
    let rows = selector("main table tr");
    let cells = selector("th, td");
    document
        .select(&rows)
        .map(|row| row.select(&cells).map(element_text).collect())
        .collect()
}

/// The texts of the `<div class="coming-soon">` placeholders of a page.
pub fn coming_soon_placeholders(document: &Html) -> Vec<String> {
    let placeholders = selector("div.coming-soon");
    document.select(&placeholders).map(element_text).collect()
}

/// Every fragment a link may point to on this page: `id` attributes and the old `<a name>`.
pub fn anchor_targets(document: &Html) -> HashSet<String> {
    let with_id = selector("[id]");
    let named = selector("a[name]");
    let ids = document
        .select(&with_id)
        .filter_map(|element| element.value().attr("id"));
    let names = document
        .select(&named)
        .filter_map(|element| element.value().attr("name"));
    ids.chain(names).map(str::to_string).collect()
}

/// Where a mis-decoded sequence occurs in a text: `(line, sequence, the line around it)`.
pub fn misdecoded_sequences(text: &str) -> Vec<(usize, &'static str, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        for sequence in MISDECODED_SEQUENCES {
            if let Some(at) = line.find(sequence) {
                let mut start = at.saturating_sub(40);
                while !line.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (at + sequence.len() + 40).min(line.len());
                while !line.is_char_boundary(end) {
                    end += 1;
                }
                found.push((number + 1, sequence, line[start..end].trim().to_string()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r##"<html><body><h1 class="menu-title">Book</h1><main>
        <h2 id="visual-comparison"><a class="header" href="#visual-comparison">Visual  Comparison</a></h2>
        <table><thead><tr><th>Aspect</th><th>Monolith</th></tr></thead>
        <tbody><tr><td><strong>Deployment</strong></td><td>Deploy <code>entire</code> app</td></tr></tbody></table>
        <div class="coming-soon">Lab coming soon</div><a name="old"></a></main></body></html>"##;

    #[test]
    fn headings_and_tables_come_from_main_only() {
        let document = Html::parse_document(PAGE);
        assert_eq!(headings(&document), ["Visual Comparison"]);
        assert_eq!(
            table_rows(&document),
            [
                vec!["Aspect", "Monolith"],
                vec!["Deployment", "Deploy entire app"]
            ]
        );
        assert_eq!(coming_soon_placeholders(&document), ["Lab coming soon"]);
        let anchors = anchor_targets(&document);
        assert!(
            anchors.contains("visual-comparison") && anchors.contains("old"),
            "{anchors:?}"
        );
    }

    #[test]
    fn misdecoded_text_is_found_with_its_line() {
        let found = misdecoded_sequences("fine 👤\nbroken Ã¼ber and â€” here");
        let sequences: Vec<_> = found
            .iter()
            .map(|(line, sequence, _)| (*line, *sequence))
            .collect();
        assert_eq!(sequences, [(2, "â€"), (2, "Ã")]);
        assert!(misdecoded_sequences("👤 🛒 💳 ✅ ─ →").is_empty());
    }
}
