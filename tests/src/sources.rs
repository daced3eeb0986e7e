//! What the markdown promises: the Mermaid fences of the book's sources, the draft chapters of
//! `SUMMARY.md`, and the headings, table rows and special characters of the guide.
//!
//! Sources are parsed with pulldown-cmark, the parser mdBook and mdbook-mermaid themselves use,
//! so a fence or heading counts here exactly when the renderer sees one too (a `#` line inside a
//! code block is not a heading; a ```` ```mermaid ```` inside a four-backtick block is not a diagram).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use crate::paths::read_to_string;
use crate::{BookTestError, normalize_prose, normalize_text};

/// One ```` ```mermaid ```` block of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MermaidFence {
    /// 1-based position among the diagrams of its page, as a reader counts them.
    pub index: usize,
    /// 1-based line of the opening fence in the markdown file.
    pub line: usize,
    /// The diagram's first line (`graph TB`, `sequenceDiagram`…), to recognise it in a report.
    pub first_line: String,
}

/// A markdown source file with the diagrams it should render.
#[derive(Debug, Clone)]
pub struct SourcePage {
    /// Path relative to the book's `src` directory, with `/` separators.
    pub markdown: String,
    /// The HTML page mdBook builds from it, relative to the book root.
    pub page: String,
    /// Its Mermaid fences, in order.
    pub fences: Vec<MermaidFence>,
}

/// Markdown extensions mdBook turns on; parsing with the same set finds the same structure.
fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Whether a fenced block's info string names Mermaid (`mermaid`, or `mermaid` plus attributes,
/// which mdbook-mermaid would *not* convert — counting it makes that mistake fail loudly).
fn is_mermaid_info(info: &str) -> bool {
    info.split_whitespace().next() == Some("mermaid")
}

/// The Mermaid fences of one markdown text, in order.
pub fn mermaid_fences(markdown: &str) -> Vec<MermaidFence> {
    let mut fences = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (event, range) in Parser::new_ext(markdown, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) if is_mermaid_info(&info) => {
                current = Some((line_of(markdown, range.start), String::new()));
            }
            Event::Text(text) => {
                if let Some((_, body)) = current.as_mut() {
                    body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((line, body)) = current.take() {
                    let first_line = body
                        .lines()
                        .map(str::trim)
                        .find(|line| !line.is_empty())
                        .unwrap_or("(empty diagram)")
                        .to_string();
                    fences.push(MermaidFence {
                        index: fences.len() + 1,
                        line,
                        first_line,
                    });
                }
            }
            _ => {}
        }
    }
    fences
}

/// The HTML page mdBook builds from a source path (relative, `/`-separated).
///
/// mdBook renames every `README.md` to `index.html`, so a part's README is its folder's index.
pub fn html_page_for(markdown: &str) -> String {
    match markdown.strip_suffix("README.md") {
        Some(folder) => format!("{folder}index.html"),
        None => match markdown.strip_suffix(".md") {
            Some(stem) => format!("{stem}.html"),
            None => markdown.to_string(),
        },
    }
}

/// Every chapter under `src_dir` (sorted), with its diagrams.
///
/// A markdown file that another one pulls in with `{{#include fragment.md}}` is not a page of
/// its own: its diagrams are counted on the page that includes it, where mdBook renders them.
pub fn source_pages(src_dir: &Path) -> Result<Vec<SourcePage>, BookTestError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(src_dir).sort_by_file_name() {
        let entry = entry.map_err(|error| {
            let path = error
                .path()
                .map_or_else(|| src_dir.to_path_buf(), Path::to_path_buf);
            BookTestError::io(path, error.into())
        })?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        files.push(path.to_path_buf());
    }
    let mut fragments = BTreeSet::new();
    for path in &files {
        for included in markdown_includes(path, &read_to_string(path)?) {
            fragments.insert(included);
        }
    }
    let mut pages = Vec::new();
    for path in files.iter().filter(|path| !fragments.contains(*path)) {
        let markdown = relative_slash_path(src_dir, path);
        let text = expand_markdown_includes(path, read_to_string(path)?, 0)?;
        pages.push(SourcePage {
            page: html_page_for(&markdown),
            fences: mermaid_fences(&text),
            markdown,
        });
    }
    Ok(pages)
}

/// The markdown files `path` pulls in with `{{#include other.md}}`, as paths.
fn markdown_includes(path: &Path, text: &str) -> Vec<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    text.lines()
        .filter_map(|line| {
            let spec = line
                .trim()
                .strip_prefix("{{#include ")?
                .strip_suffix("}}")?
                .trim();
            spec.ends_with(".md").then(|| normalize(&dir.join(spec)))
        })
        .collect()
}

/// `text` with every `{{#include other.md}}` line replaced by that file's (expanded) text.
fn expand_markdown_includes(
    path: &Path,
    text: String,
    depth: usize,
) -> Result<String, BookTestError> {
    if depth > 8 || !text.contains("{{#include ") {
        return Ok(text);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut expanded = String::with_capacity(text.len());
    for line in text.lines() {
        let included = line
            .trim()
            .strip_prefix("{{#include ")
            .and_then(|rest| rest.strip_suffix("}}"))
            .map(str::trim)
            .filter(|spec| spec.ends_with(".md"));
        match included {
            Some(spec) => {
                let fragment = normalize(&dir.join(spec));
                let inner = read_to_string(&fragment)?;
                expanded.push_str(&expand_markdown_includes(&fragment, inner, depth + 1)?);
            }
            None => expanded.push_str(line),
        }
        expanded.push('\n');
    }
    Ok(expanded)
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `base`, with `/` separators whatever the platform.
pub fn relative_slash_path(base: &Path, path: &Path) -> String {
    let relative: PathBuf = path
        .strip_prefix(base)
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf);
    relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Titles of `SUMMARY.md` entries that have no file yet (`- [Saga]()`): mdBook shows them
/// greyed out as drafts. While any remain, the book is not complete.
pub fn draft_chapters(summary: &str) -> Vec<String> {
    let mut drafts = Vec::new();
    let mut in_draft: Option<String> = None;
    for event in Parser::new_ext(summary, markdown_options()) {
        match event {
            Event::Start(Tag::Link { dest_url, .. }) if dest_url.trim().is_empty() => {
                in_draft = Some(String::new());
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some(title) = in_draft.as_mut() {
                    title.push_str(&text);
                }
            }
            Event::End(TagEnd::Link) => {
                if let Some(title) = in_draft.take() {
                    drafts.push(normalize_text(&title));
                }
            }
            _ => {}
        }
    }
    drafts
}

/// A heading of the guide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideHeading {
    /// Normalized text (see [`normalize_prose`]).
    pub text: String,
    /// 1-based line in the guide.
    pub line: usize,
}

/// Every heading of the guide except its "Table of Contents" (the book's sidebar replaces it).
pub fn guide_headings(markdown: &str) -> Vec<GuideHeading> {
    let mut headings = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (event, range) in Parser::new_ext(markdown, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { .. }) => {
                current = Some((line_of(markdown, range.start), String::new()))
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, heading)) = current.as_mut() {
                    heading.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, heading)) = current.as_mut() {
                    heading.push(' ');
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((line, heading)) = current.take() {
                    let text = normalize_prose(&heading);
                    if !text.eq_ignore_ascii_case("Table of Contents") {
                        headings.push(GuideHeading { text, line });
                    }
                }
            }
            _ => {}
        }
    }
    headings
}

/// One row of a table of the guide (the header row included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideTableRow {
    /// Cell texts as rendered (markdown `**` and backticks gone), normalized with [`normalize_prose`].
    pub cells: Vec<String>,
    /// 1-based line in the guide.
    pub line: usize,
}

/// Every row of every table of the guide, header rows included.
///
/// Cell text is the text a renderer shows: pulldown-cmark drops the `**` and backticks, so the
/// comparison with the built book is between what readers see on both sides.
pub fn guide_table_rows(markdown: &str) -> Vec<GuideTableRow> {
    let mut rows = Vec::new();
    let mut row: Option<(usize, Vec<String>)> = None;
    let mut cell: Option<String> = None;
    for (event, range) in Parser::new_ext(markdown, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::TableHead | Tag::TableRow) => {
                row = Some((line_of(markdown, range.start), Vec::new()))
            }
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                if let Some((line, cells)) = row.take() {
                    rows.push(GuideTableRow { cells, line });
                }
            }
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => {
                if let (Some(text), Some((_, cells))) = (cell.take(), row.as_mut()) {
                    cells.push(normalize_prose(&text));
                }
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some(cell) = cell.as_mut() {
                    cell.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(cell) = cell.as_mut() {
                    cell.push(' ');
                }
            }
            _ => {}
        }
    }
    rows
}

/// The non-ASCII characters a reader of the guide sees: emoji, arrows, box drawing…
///
/// Taken from prose, tables and diagrams; code samples are left out because the book retells
/// them in Rust, so their characters are not expected to survive.
pub fn guide_special_characters(markdown: &str) -> BTreeSet<char> {
    let mut characters = BTreeSet::new();
    let mut in_code_sample = false;
    for event in Parser::new_ext(markdown, markdown_options()) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                in_code_sample =
                    !matches!(kind, CodeBlockKind::Fenced(ref info) if is_mermaid_info(info));
            }
            Event::End(TagEnd::CodeBlock) => in_code_sample = false,
            Event::Text(text) | Event::Code(text) if !in_code_sample => {
                characters.extend(text.chars().filter(|c| !c.is_ascii()));
            }
            _ => {}
        }
    }
    characters
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Title\n\n## Table of Contents\n\n```mermaid\ngraph TB\n  A --> B\n```\n\n\
        ```text\n# not a heading\n```\n\n````md\n```mermaid\nnot a diagram\n```\n````\n\n\
        | **Aspect** | `Code` |\n|---|---|\n| a  b | 👤 |\n\n```mermaid\n\nsequenceDiagram\n```\n";

    #[test]
    fn mermaid_fences_are_found_with_their_first_line() {
        let fences = mermaid_fences(SAMPLE);
        assert_eq!(fences.len(), 2, "{fences:?}");
        assert_eq!(
            fences[0],
            MermaidFence {
                index: 1,
                line: 5,
                first_line: "graph TB".into()
            }
        );
        assert_eq!(fences[1].first_line, "sequenceDiagram");
    }

    #[test]
    fn headings_skip_code_blocks_and_the_table_of_contents() {
        let texts: Vec<_> = guide_headings(SAMPLE).into_iter().map(|h| h.text).collect();
        assert_eq!(texts, ["Title"]);
    }

    #[test]
    fn table_cells_lose_their_markdown_markup() {
        let rows: Vec<_> = guide_table_rows(SAMPLE)
            .into_iter()
            .map(|r| r.cells)
            .collect();
        assert_eq!(rows, [vec!["Aspect", "Code"], vec!["a b", "👤"]]);
    }

    #[test]
    fn readme_becomes_index() {
        assert_eq!(html_page_for("README.md"), "index.html");
        assert_eq!(html_page_for("patterns/README.md"), "patterns/index.html");
        assert_eq!(html_page_for("patterns/saga.md"), "patterns/saga.html");
    }

    #[test]
    fn draft_chapters_are_the_links_without_a_file() {
        let summary = "# Summary\n\n- [Intro](intro.md)\n- [Saga]()\n    - [Choreography]()\n";
        assert_eq!(draft_chapters(summary), ["Saga", "Choreography"]);
    }

    #[test]
    fn special_characters_come_from_prose_and_diagrams_only() {
        let markdown =
            "Arrow → here\n\n```mermaid\ngraph TB\n A[👤]\n```\n\n```js\nconsole.log('✅')\n```\n";
        let characters: Vec<_> = guide_special_characters(markdown).into_iter().collect();
        assert_eq!(characters, ['→', '👤']);
    }
}
