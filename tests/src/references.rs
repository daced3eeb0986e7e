//! What the book owes its reader as a text to trust: every chapter names its sources in a
//! section of its own, and every link that leaves the book is a well-formed web address.
//!
//! Both checks read the built HTML, so they see what a reader sees: a link mdBook failed to
//! parse (a space inside the address, say) is not a link at all but literal `[text](…)` on the
//! page, and is reported as such.

use scraper::{ElementRef, Html, Node};

use crate::built::{element_text, selector};
use crate::links::is_external;

/// The heading texts that open a chapter's list of sources.
pub const SOURCE_HEADINGS: [&str; 2] = ["Sources", "References"];

/// Whether the chapter built from `markdown` (a path relative to the book's `src`) must list its
/// sources. Solution pages (a lab's reference code, with the chapter's sources one page up), the
/// playground's pages (controls, not text) and the table of contents are exempt.
pub fn needs_sources(markdown: &str) -> bool {
    markdown != "SUMMARY.md"
        && !markdown.ends_with("-solution.md")
        && !markdown.starts_with("playground/")
}

/// The `href`s of the links in the page's sources section (from a `Sources` or `References`
/// heading at level 2 to the next heading at level 1 or 2), or `None` when it has no such
/// section.
pub fn source_section_links(document: &Html) -> Option<Vec<String>> {
    let headings = selector("main h2");
    let links = selector("a[href]");
    let heading = document
        .select(&headings)
        .find(|heading| SOURCE_HEADINGS.contains(&element_text(*heading).as_str()))?;
    let mut hrefs = Vec::new();
    for sibling in heading.next_siblings().filter_map(ElementRef::wrap) {
        if matches!(sibling.value().name(), "h1" | "h2") {
            break;
        }
        let inside = sibling.select(&links);
        let itself = (sibling.value().name() == "a").then_some(sibling);
        hrefs.extend(
            itself
                .into_iter()
                .chain(inside)
                .filter_map(|link| link.value().attr("href"))
                .map(str::to_owned),
        );
    }
    Some(hrefs)
}

/// Why an external link is not a well-formed web address, or `None` when it is one: the scheme
/// is `https` or `http`, a host follows (letters, digits, `-` and `.`, with at least one dot, or
/// `localhost`), and the address has no whitespace or characters a URL cannot hold unescaped.
pub fn malformed_external_link(href: &str) -> Option<String> {
    if let Some(bad) = href.chars().find(|c| {
        c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\\' | '^' | '`' | '{' | '}' | '|')
    }) {
        return Some(format!("contains {bad:?}"));
    }
    let Some((scheme, rest)) = href.split_once("://") else {
        return Some("has no `scheme://` (only https and http links leave the book)".into());
    };
    if !matches!(scheme, "https" | "http") {
        return Some(format!("uses the scheme `{scheme}`, not https or http"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() {
                host
            } else {
                authority
            }
        });
    if host.is_empty() {
        return Some("has no host".into());
    }
    let valid_labels = host.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid_labels || (!host.contains('.') && host != "localhost") {
        return Some(format!(
            "has `{host}` as its host, which is not a host name"
        ));
    }
    None
}

/// Every external link of the page's `<main>` that is not well-formed, with the reason.
pub fn malformed_external_links(document: &Html) -> Vec<(String, String)> {
    let links = selector("main a[href], main img[src]");
    document
        .select(&links)
        .filter_map(|link| {
            let value = link.value();
            value.attr("href").or_else(|| value.attr("src"))
        })
        .filter(|href| is_external(href) || href.contains("://"))
        .filter_map(|href| malformed_external_link(href).map(|why| (href.to_owned(), why)))
        .collect()
}

/// Text of the page's `<main>` (outside code) that still reads `](http`: a markdown link that
/// mdBook did not turn into a link, most often because its address has a space in it.
pub fn unparsed_markdown_links(document: &Html) -> Vec<String> {
    let main = selector("main");
    let mut found = Vec::new();
    for root in document.select(&main) {
        for node in root.descendants() {
            let Node::Text(text) = node.value() else {
                continue;
            };
            let in_code = node.ancestors().any(|ancestor| {
                ancestor
                    .value()
                    .as_element()
                    .is_some_and(|element| matches!(element.name(), "code" | "pre"))
            });
            if !in_code && (text.contains("](http") || text.contains("](//")) {
                found.push(text.trim().chars().take(120).collect());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_http_links_with_a_host_are_well_formed() {
        for href in [
            "https://www.w3.org/TR/trace-context/#tracestate-header",
            "http://nginx.org/en/docs/",
            "https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/",
            "http://localhost:8080/health",
            "https://example.com:8443/a?b=c",
        ] {
            assert_eq!(malformed_external_link(href), None, "{href}");
        }
    }

    #[test]
    fn a_link_without_scheme_host_or_with_a_space_is_malformed() {
        for href in [
            "https://exa mple.com/",
            "ftp://example.com/file",
            "https:///no-host",
            "https://example/",
            "https://-bad-.com/",
            "mailto:someone@example.com",
            "www.example.com",
        ] {
            assert!(malformed_external_link(href).is_some(), "{href}");
        }
    }

    #[test]
    fn the_sources_section_runs_to_the_next_heading_of_its_level() {
        let page = Html::parse_document(
            "<main><h1>T</h1><h2>Sources</h2><ul><li><a href=\"https://a.org/\">a</a></li></ul>\
             <p><a href=\"https://b.org/\">b</a></p><h3>More</h3><a href=\"https://c.org/\">c</a>\
             <h2>Run the lab</h2><a href=\"https://d.org/\">d</a></main>",
        );
        assert_eq!(
            source_section_links(&page),
            Some(vec![
                "https://a.org/".to_owned(),
                "https://b.org/".to_owned(),
                "https://c.org/".to_owned()
            ])
        );
        let without = Html::parse_document("<main><h1>T</h1><h2>Notes</h2></main>");
        assert_eq!(source_section_links(&without), None);
    }

    #[test]
    fn literal_markdown_link_text_is_found_outside_code_only() {
        let page = Html::parse_document(
            "<main><p>see [x](https://a b.org)</p><pre><code>[y](https://c.org)</code></pre></main>",
        );
        assert_eq!(unparsed_markdown_links(&page), ["see [x](https://a b.org)"]);
    }

    #[test]
    fn solution_and_playground_pages_are_exempt() {
        assert!(needs_sources("patterns/saga.md"));
        assert!(needs_sources("glossary.md"));
        assert!(!needs_sources("patterns/saga-solution.md"));
        assert!(!needs_sources("playground/breaker.md"));
        assert!(!needs_sources("SUMMARY.md"));
    }
}
