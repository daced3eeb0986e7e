//! Internal links of the built book: every `href`/`src` that points inside the book must reach a
//! file, and every `#fragment` must name an element on the page it points to.
//!
//! This reads the HTML files directly instead of clicking through a browser: the question is
//! "does the target exist", which the file system answers for the whole book in well under a second.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use scraper::Html;

use crate::BookTestError;
use crate::built::{anchor_targets, parse_page, selector};

/// A link found on a page, before it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The attribute's value as written.
    pub href: String,
    /// The target page relative to the book root (`/`-separated), or `None` when the link
    /// leaves the book's directory.
    pub target: Option<String>,
    /// The decoded fragment after `#`, if any.
    pub fragment: Option<String>,
}

/// Whether a URL leaves the book: it has a scheme (`https:`, `mailto:`…) or is protocol-relative.
pub fn is_external(href: &str) -> bool {
    if href.starts_with("//") {
        return true;
    }
    let Some(colon) = href.find(':') else {
        return false;
    };
    let scheme = &href[..colon];
    let mut characters = scheme.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && characters.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Decodes `%XX` escapes; invalid escapes are kept as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| text.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Resolves an internal link written on `page` (both relative to the book root).
pub fn resolve(page: &str, href: &str) -> Link {
    let (before_fragment, fragment) = match href.split_once('#') {
        Some((path, fragment)) => (path, Some(percent_decode(fragment))),
        None => (href, None),
    };
    let path = before_fragment.split('?').next().unwrap_or_default();
    let target = if path.is_empty() {
        Some(page.to_string())
    } else {
        let mut parts: Vec<String> = if path.starts_with('/') {
            Vec::new()
        } else {
            page.split('/').map(str::to_string).collect()
        };
        if !path.starts_with('/') {
            parts.pop(); // the page's own file name: relative links start from its folder
        }
        let mut escaped = false;
        for part in percent_decode(path).split('/') {
            match part {
                "" | "." => {}
                ".." => escaped |= parts.pop().is_none(),
                name => parts.push(name.to_string()),
            }
        }
        if path.ends_with('/') {
            parts.push("index.html".to_string());
        }
        (!escaped).then(|| parts.join("/"))
    };
    Link {
        href: href.to_string(),
        target,
        fragment: fragment.filter(|f| !f.is_empty()),
    }
}

/// The internal links of a page: `<a href>`, `<link href>`, and `src` of scripts, images and frames.
pub fn internal_links(page: &str, document: &Html) -> Vec<Link> {
    let with_href = selector("a[href], link[href]");
    let with_src = selector("script[src], img[src], iframe[src], source[src]");
    let hrefs = document
        .select(&with_href)
        .filter_map(|element| element.value().attr("href"));
    let srcs = document
        .select(&with_src)
        .filter_map(|element| element.value().attr("src"));
    hrefs
        .chain(srcs)
        .map(str::trim)
        .filter(|href| !is_external(href))
        .map(|href| resolve(page, href))
        .collect()
}

/// Checks every internal link of `pages`; returns one message per broken link, naming the page.
pub fn broken_links(book_dir: &Path, pages: &[String]) -> Result<Vec<String>, BookTestError> {
    let mut anchors_by_page: HashMap<String, HashSet<String>> = HashMap::new();
    let mut broken = Vec::new();
    for page in pages {
        let document = parse_page(book_dir, page)?;
        for link in internal_links(page, &document) {
            let Some(mut target) = link.target.clone() else {
                broken.push(format!(
                    "{page}: link `{}` leaves the book's directory",
                    link.href
                ));
                continue;
            };
            if book_dir.join(&target).is_dir() {
                target = format!("{}/index.html", target.trim_end_matches('/'));
            }
            if !book_dir.join(&target).is_file() {
                broken.push(format!(
                    "{page}: link `{}` points to {target}, which was not built",
                    link.href
                ));
                continue;
            }
            let Some(fragment) = &link.fragment else {
                continue;
            };
            if !target.ends_with(".html") {
                continue;
            }
            if !anchors_by_page.contains_key(&target) {
                let anchors = if &target == page {
                    anchor_targets(&document)
                } else {
                    anchor_targets(&parse_page(book_dir, &target)?)
                };
                anchors_by_page.insert(target.clone(), anchors);
            }
            if !anchors_by_page
                .get(&target)
                .is_some_and(|anchors| anchors.contains(fragment))
            {
                broken.push(format!(
                    "{page}: link `{}` points to #{fragment}, but {target} has no element with that id",
                    link.href
                ));
            }
        }
    }
    Ok(broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_links_are_recognised() {
        assert!(is_external("https://example.com"));
        assert!(is_external("mailto:someone@example.com"));
        assert!(is_external("//cdn.example.com/x.js"));
        assert!(!is_external("patterns/saga.html#compensation"));
        assert!(!is_external("#top"));
    }

    #[test]
    fn relative_links_resolve_from_the_page_folder() {
        let link = resolve("patterns/saga.html", "../glossary.html#pivot%20transaction");
        assert_eq!(link.target.as_deref(), Some("glossary.html"));
        assert_eq!(link.fragment.as_deref(), Some("pivot transaction"));
        assert_eq!(
            resolve("index.html", "#intro").target.as_deref(),
            Some("index.html")
        );
        assert_eq!(
            resolve("a/b.html", "./").target.as_deref(),
            Some("a/index.html")
        );
        assert_eq!(
            resolve("a/b.html", "/c.html?x=1").target.as_deref(),
            Some("c.html")
        );
        assert_eq!(resolve("index.html", "../outside.html").target, None);
    }
}
