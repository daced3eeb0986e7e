//! The anchors mdBook gives a chapter's headings, computed from the markdown sources.
//!
//! A `read:` pointer (`patterns/saga.html#the-pivot`) is only useful if the anchor exists,
//! and the pointer's fallback names the markdown file that holds the heading, so the grader
//! needs the heading ids without building the book. This mirrors mdBook 0.5's HTML renderer
//! (`mdbook-html`'s `id_from_content` and `unique_id`): the heading's text (inline markup
//! dropped, smart punctuation applied), trimmed and lowercased, alphanumerics, `_` and `-`
//! kept, each whitespace character turned into `-`, everything else dropped; a repeated id
//! on one page gets `-1`, `-2`…; an explicit `{#id}` attribute is used as it is. Whole-file
//! `{{#include other.md}}` lines are expanded first, as mdBook's preprocessor does, so a
//! heading from an included fragment belongs to the including page.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The book's markdown sources, relative to the workspace root (`book.toml`'s `src`).
pub const BOOK_SOURCE: &str = "book/src";

/// One heading of a page, as mdBook renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// The `id` of the HTML heading: what follows `#` in a link.
    pub id: String,
    /// The heading's text without markup (`The three states`).
    pub text: String,
    /// The markdown file the heading is written in, relative to the workspace root (an
    /// included fragment, not always the page's own file).
    pub file: PathBuf,
}

/// The markdown source of a built page: `patterns/saga.html` → `patterns/saga.md`.
pub fn source_of_page(page: &str) -> PathBuf {
    Path::new(page).with_extension("md")
}

/// Every heading of the page whose source is `book/src/<page_md>`, in order.
pub fn page_headings(root: &Path, page_md: &Path) -> anyhow::Result<Vec<Heading>> {
    let file = Path::new(BOOK_SOURCE).join(page_md);
    let mut lines = Vec::new();
    expand_includes(root, &file, &mut lines, 0)?;
    Ok(headings_of_lines(&lines))
}

/// mdBook's id for a heading's text (`mdbook-html` 0.5, `utils::id_from_content`).
pub fn id_from_content(content: &str) -> String {
    content
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|ch| {
            if ch.is_alphanumeric() || ch == '_' || ch == '-' {
                Some(ch)
            } else if ch.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// Includes nest at most this deep (a fragment including itself is a mistake, not a loop).
const MAX_INCLUDE_DEPTH: usize = 8;

/// The lines of `file` with whole-file markdown includes replaced by the included lines,
/// each tagged with the file it comes from.
fn expand_includes(
    root: &Path,
    file: &Path,
    lines: &mut Vec<(PathBuf, String)>,
    depth: usize,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(root.join(file))
        .with_context(|| format!("cannot read {}", file.display()))?;
    let folder = file.parent().unwrap_or(Path::new(""));
    for line in text.lines() {
        match included_markdown(line) {
            Some(target) if depth < MAX_INCLUDE_DEPTH => {
                expand_includes(root, &normalize(&folder.join(target)), lines, depth + 1)?;
            }
            _ => lines.push((file.to_path_buf(), line.to_owned())),
        }
    }
    Ok(())
}

/// The path in a line that is a whole-file `{{#include something.md}}`.
fn included_markdown(line: &str) -> Option<&str> {
    let inner = line
        .trim()
        .strip_prefix("{{#include ")?
        .strip_suffix("}}")?
        .trim();
    inner.ends_with(".md").then_some(inner)
}

/// `book/src/patterns/../playground/x.md` → `book/src/playground/x.md`.
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if normal.file_name().is_some() => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

/// The ATX headings (`## Title`) outside code fences, with mdBook's ids.
fn headings_of_lines(lines: &[(PathBuf, String)]) -> Vec<Heading> {
    let mut used = HashSet::new();
    let mut fence: Option<(char, usize)> = None;
    let mut headings = Vec::new();
    for (file, line) in lines {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = &line[indent..];
        if indent <= 3
            && let Some(marker) = fence_marker(content)
        {
            match fence {
                None => fence = Some(marker),
                Some((ch, length))
                    if marker.0 == ch
                        && marker.1 >= length
                        && content.trim_start_matches(ch).trim().is_empty() =>
                {
                    fence = None;
                }
                Some(_) => {}
            }
            continue;
        }
        if fence.is_some() || indent > 3 {
            continue;
        }
        let Some(inline) = atx_heading(content) else {
            continue;
        };
        let (inline, explicit_id) = split_attributes(inline);
        let text = plain_text(inline);
        let id = match explicit_id {
            // mdBook keeps an explicit id as written and does not reserve it.
            Some(id) => id,
            None => unique_id(&id_from_content(&text), &mut used),
        };
        headings.push(Heading {
            id,
            text: text.trim().to_owned(),
            file: file.clone(),
        });
    }
    headings
}

/// A code fence's character and length (```` ``` ```` or `~~~`, three or more).
fn fence_marker(content: &str) -> Option<(char, usize)> {
    let ch = content
        .chars()
        .next()
        .filter(|ch| *ch == '`' || *ch == '~')?;
    let length = content.chars().take_while(|c| *c == ch).count();
    (length >= 3).then_some((ch, length))
}

/// The inline content of an ATX heading line, without the `#`s on either side.
fn atx_heading(content: &str) -> Option<&str> {
    let level = content.chars().take_while(|ch| *ch == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &content[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    // A closing sequence of `#`s counts only after a space (or as the whole content).
    let without_closing = rest.trim_end_matches('#');
    if without_closing.is_empty() {
        return Some("");
    }
    if without_closing.ends_with([' ', '\t']) {
        return Some(without_closing.trim_end());
    }
    Some(rest)
}

/// Splits a trailing `{#id .class}` attribute block off a heading; returns the id if any.
fn split_attributes(inline: &str) -> (&str, Option<String>) {
    let trimmed = inline.trim_end();
    let Some(body) = trimmed.strip_suffix('}') else {
        return (inline, None);
    };
    let Some(open) = body.rfind('{') else {
        return (inline, None);
    };
    let id = body[open + 1..]
        .split_whitespace()
        .find_map(|token| token.strip_prefix('#'))
        .map(str::to_owned);
    (&trimmed[..open], id)
}

/// The text mdBook collects from a heading's inline markdown: code spans literally, link
/// text without the destination, emphasis and HTML tags dropped, backslash escapes
/// resolved, and `--`/`---` turned into dashes (smart punctuation, on by default).
fn plain_text(inline: &str) -> String {
    let chars: Vec<char> = inline.chars().collect();
    let mut text = String::new();
    let mut index = 0;
    while index < chars.len() {
        let ch = chars[index];
        match ch {
            '\\' if chars.get(index + 1).is_some_and(char::is_ascii_punctuation) => {
                text.push(chars[index + 1]);
                index += 2;
            }
            '`' => {
                let run = count_run(&chars, index, '`');
                match find_run(&chars, index + run, '`', run) {
                    Some(close) => {
                        let code: String = chars[index + run..close].iter().collect();
                        let code = match code.strip_prefix(' ').and_then(|c| c.strip_suffix(' ')) {
                            Some(inner) if !inner.trim().is_empty() => inner.to_owned(),
                            _ => code,
                        };
                        text.push_str(&code);
                        index = close + run;
                    }
                    None => {
                        text.extend(&chars[index..index + run]);
                        index += run;
                    }
                }
            }
            '!' if chars.get(index + 1) == Some(&'[') => {
                // An image: its alt text is an attribute, not text of the heading.
                index = skip_link(&chars, index + 1).unwrap_or(index + 1);
            }
            '[' => match link_text_end(&chars, index) {
                Some(close) => {
                    let label: String = chars[index + 1..close].iter().collect();
                    text.push_str(&plain_text(&label));
                    index = skip_destination(&chars, close + 1);
                }
                None => {
                    text.push(ch);
                    index += 1;
                }
            },
            '<' => match html_tag_end(&chars, index) {
                Some(end) => index = end + 1,
                None => {
                    text.push(ch);
                    index += 1;
                }
            },
            '*' | '~' => index += 1,
            '_' => {
                let intraword = index > 0
                    && chars[index - 1].is_alphanumeric()
                    && chars
                        .get(index + 1)
                        .is_some_and(|next| next.is_alphanumeric());
                if intraword {
                    text.push('_');
                }
                index += 1;
            }
            '-' if chars.get(index + 1) == Some(&'-') => {
                // Smart punctuation: a run of hyphens becomes en and em dashes.
                let run = count_run(&chars, index, '-');
                text.push('–');
                index += run;
            }
            _ => {
                text.push(ch);
                index += 1;
            }
        }
    }
    text
}

fn count_run(chars: &[char], start: usize, ch: char) -> usize {
    chars[start..].iter().take_while(|c| **c == ch).count()
}

/// The start of the next run of exactly `length` `ch`s at or after `from`.
fn find_run(chars: &[char], from: usize, ch: char, length: usize) -> Option<usize> {
    let mut index = from;
    while index < chars.len() {
        if chars[index] == ch {
            let run = count_run(chars, index, ch);
            if run == length {
                return Some(index);
            }
            index += run;
        } else {
            index += 1;
        }
    }
    None
}

/// The `]` that closes a link's text opened at `open`, if a `(` or `[` follows it.
fn link_text_end(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (index, ch) in chars.iter().enumerate().skip(open) {
        match ch {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return matches!(chars.get(index + 1), Some('(' | '[')).then_some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// Past a whole `[text](dest)` starting at `open`.
fn skip_link(chars: &[char], open: usize) -> Option<usize> {
    let close = link_text_end(chars, open)?;
    Some(skip_destination(chars, close + 1))
}

/// Past `(dest)` or `[ref]` starting at `from`.
fn skip_destination(chars: &[char], from: usize) -> usize {
    let closing = match chars.get(from) {
        Some('(') => ')',
        Some('[') => ']',
        _ => return from,
    };
    chars[from..]
        .iter()
        .position(|ch| *ch == closing)
        .map_or(chars.len(), |offset| from + offset + 1)
}

/// The `>` of an inline HTML tag (`<br>`, `</span>`) starting at `open`.
fn html_tag_end(chars: &[char], open: usize) -> Option<usize> {
    let next = chars.get(open + 1)?;
    if !(next.is_ascii_alphabetic() || *next == '/') {
        return None;
    }
    chars[open..]
        .iter()
        .position(|ch| *ch == '>')
        .map(|offset| open + offset)
}

/// mdBook's `unique_id`: the id itself the first time, then `id-1`, `id-2`…
fn unique_id(id: &str, used: &mut HashSet<String>) -> String {
    if used.insert(id.to_owned()) {
        return id.to_owned();
    }
    (1..)
        .map(|counter| format!("{id}-{counter}"))
        .find(|candidate| used.insert(candidate.clone()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ids(markdown: &str) -> Vec<String> {
        let lines: Vec<(PathBuf, String)> = markdown
            .lines()
            .map(|line| (PathBuf::from("page.md"), line.to_owned()))
            .collect();
        headings_of_lines(&lines)
            .into_iter()
            .map(|heading| heading.id)
            .collect()
    }

    #[test]
    fn heading_ids_follow_mdbooks_normalisation() {
        // The cases of mdbook-html 0.5's own `it_normalizes_ids` test.
        assert_eq!(
            id_from_content("`--passes`: add more rustdoc passes"),
            "--passes-add-more-rustdoc-passes"
        );
        assert_eq!(
            id_from_content("Method-call 🐙 expressions \u{1f47c}"),
            "method-call--expressions-"
        );
        assert_eq!(id_from_content("_-_12345"), "_-_12345");
        assert_eq!(id_from_content("中文標題 CJK title"), "中文標題-cjk-title");
        assert_eq!(id_from_content("Über"), "über");
    }

    #[test]
    fn heading_text_drops_markup_and_keeps_code() {
        assert_eq!(
            ids(
                "### Open: failing fast\n## Sans-IO: the breaker as a value\n\
                 ## The `half_open` state\n## Monitoring & Observability\n\
                 ## [Links](x.md#y) and *emphasis*\n## Retries -- and backoff ##"
            ),
            vec![
                "open-failing-fast",
                "sans-io-the-breaker-as-a-value",
                "the-half_open-state",
                "monitoring--observability",
                "links-and-emphasis",
                "retries--and-backoff",
            ]
        );
    }

    #[test]
    fn explicit_ids_count_and_repeated_headings_are_numbered() {
        assert_eq!(
            ids("## Follow-up {#follow .note}\n## Half-open\n## Half-open\n## Half-open"),
            vec!["follow", "half-open", "half-open-1", "half-open-2"]
        );
    }

    #[test]
    fn lines_in_code_fences_are_not_headings() {
        assert_eq!(
            ids("```bash\n# a comment\n```\n~~~~\n# also\n```\n~~~~\n#not-a-heading\n# Real"),
            vec!["real"]
        );
    }

    #[test]
    fn included_markdown_fragments_are_part_of_the_page() {
        let root = std::env::temp_dir().join(format!("grade-headings-{}", std::process::id()));
        let folder = root.join(BOOK_SOURCE).join("patterns");
        std::fs::create_dir_all(root.join(BOOK_SOURCE).join("playground")).unwrap();
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("lab.md"),
            "# Lab\n{{#include lab-part.md}}\n{{#include ../playground/embed.md}}\n\
             {{#include ../../labs/x.rs:anchor}}\n",
        )
        .unwrap();
        std::fs::write(folder.join("lab-part.md"), "## Run the lab\n").unwrap();
        std::fs::write(
            root.join(BOOK_SOURCE).join("playground/embed.md"),
            "## Playground\n",
        )
        .unwrap();
        let headings = page_headings(&root, &source_of_page("patterns/lab.html")).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        let found: Vec<(&str, PathBuf)> = headings
            .iter()
            .map(|heading| (heading.id.as_str(), heading.file.clone()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("lab", PathBuf::from("book/src/patterns/lab.md")),
                (
                    "run-the-lab",
                    PathBuf::from("book/src/patterns/lab-part.md")
                ),
                ("playground", PathBuf::from("book/src/playground/embed.md")),
            ]
        );
        assert_eq!(headings[1].text, "Run the lab");
    }
}
