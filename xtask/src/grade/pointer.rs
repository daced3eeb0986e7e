//! Where a hint's `read:` pointer leads: the served book, the built book, or the markdown.
//!
//! A pointer in `grading.toml` is a page of the built book and an anchor
//! (`patterns/saga.html#the-pivot`). When `cargo xtask serve` runs, the best link is the
//! served page, so the grader asks the book's address once per run (a loopback connect and
//! a `GET`, each with a short timeout). Otherwise the built page (`target/book/…`, which
//! exists only after `cargo xtask book`) or, on a fresh clone, the markdown file that holds
//! the heading, which always exists. [`BookLinks`] holds what was found, so rendering stays
//! pure.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::headings::{self, Heading};

/// The built book's folder, relative to the workspace root (`book.toml`'s `build-dir`).
pub const BUILT_BOOK: &str = "target/book";

/// The port `cargo xtask serve` uses unless `BOOK_PORT` says otherwise.
pub const DEFAULT_BOOK_PORT: u16 = 3000;

/// How long the grader waits for the served book to answer before assuming it is not running.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// What the grader knows about the book on this machine, for rendering pointers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookLinks {
    /// `http://127.0.0.1:3000` when the served book answered, else `None`.
    pub served: Option<String>,
    /// Pages (`patterns/saga.html`) present under `target/book`.
    pub built_pages: BTreeSet<String>,
    /// Each pointer's heading, found in the markdown sources (missing when it does not exist).
    pub headings: BTreeMap<String, Heading>,
}

impl BookLinks {
    /// Looks at the book for these pointers: served, built, and where each heading is written.
    pub fn discover<'a>(root: &Path, pointers: impl IntoIterator<Item = &'a str>) -> Self {
        let pointers: BTreeSet<&str> = pointers.into_iter().collect();
        let port = std::env::var("BOOK_PORT")
            .ok()
            .and_then(|port| port.parse().ok())
            .unwrap_or(DEFAULT_BOOK_PORT);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let probe_page = pointers
            .iter()
            .next()
            .map_or("", |pointer| split(pointer).0);
        let served =
            book_answers(address, probe_page, PROBE_TIMEOUT).then(|| format!("http://{address}"));
        let mut links = BookLinks {
            served,
            ..BookLinks::default()
        };
        let mut page_headings: BTreeMap<&str, Vec<Heading>> = BTreeMap::new();
        for pointer in pointers {
            let (page, anchor) = split(pointer);
            if root.join(BUILT_BOOK).join(page).is_file() {
                links.built_pages.insert(page.to_owned());
            }
            let found = page_headings.entry(page).or_insert_with(|| {
                headings::page_headings(root, &headings::source_of_page(page)).unwrap_or_default()
            });
            if let Some(heading) = anchor.and_then(|anchor| find(found, anchor)) {
                links.headings.insert(pointer.to_owned(), heading.clone());
            }
        }
        links
    }

    /// Where to read `pointer`, as one line of text for the `read:` hint.
    pub fn describe(&self, pointer: &str) -> String {
        let (page, _) = split(pointer);
        if let Some(base) = &self.served {
            return format!("{base}/{pointer}");
        }
        let built = format!("{BUILT_BOOK}/{pointer}");
        if self.built_pages.contains(page) {
            return built;
        }
        let source = match self.headings.get(pointer) {
            Some(heading) => format!("{}, \"{}\"", heading.file.display(), heading.text),
            None => Path::new(headings::BOOK_SOURCE)
                .join(headings::source_of_page(page))
                .display()
                .to_string(),
        };
        format!("{source} (or run `cargo xtask book` and open {built})")
    }
}

/// `page.html#anchor` → (`page.html`, `Some("anchor")`).
pub fn split(pointer: &str) -> (&str, Option<&str>) {
    match pointer.split_once('#') {
        Some((page, anchor)) => (page, Some(anchor)),
        None => (pointer, None),
    }
}

fn find<'a>(headings: &'a [Heading], anchor: &str) -> Option<&'a Heading> {
    headings.iter().find(|heading| heading.id == anchor)
}

/// True when an HTTP server at `address` answers `GET /<page>` with a success status.
pub fn book_answers(address: SocketAddr, page: &str, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET /{page} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut status = [0_u8; 12];
    if stream.read_exact(&mut status).is_err() {
        return false;
    }
    status.starts_with(b"HTTP/1.") && status[8..].starts_with(b" 2")
}

/// Every pointer of every lab whose anchor is not a heading of its page, one line each.
#[cfg(test)]
pub fn missing_anchors(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    let mut page_headings: BTreeMap<String, Option<Vec<Heading>>> = BTreeMap::new();
    for lab in super::manifest::discover_labs(root)? {
        let found = super::manifest::load(root, &lab)?;
        let manifest_path = found.path.display().to_string();
        let mut pointers: Vec<(String, &str)> = found
            .manifest
            .tests
            .iter()
            .map(|test| (test.id.clone(), test.pointer.as_str()))
            .collect();
        pointers.push(("book_page".to_owned(), found.manifest.book_page.as_str()));
        for (owner, pointer) in pointers {
            let (page, anchor) = split(pointer);
            let source = Path::new(headings::BOOK_SOURCE).join(headings::source_of_page(page));
            let known = page_headings.entry(page.to_owned()).or_insert_with(|| {
                headings::page_headings(root, &headings::source_of_page(page)).ok()
            });
            match (known, anchor) {
                (None, _) => missing.push(format!(
                    "{manifest_path} {owner}: `{pointer}`: the page has no source {}",
                    source.display()
                )),
                (Some(found), Some(anchor)) if find(found, anchor).is_none() => {
                    missing.push(format!(
                        "{manifest_path} {owner}: `{pointer}`: no heading of {} (or the files \
                         it includes) has the id `{anchor}`",
                        source.display()
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::TcpListener;
    use std::path::PathBuf;

    use super::*;

    fn heading() -> Heading {
        Heading {
            id: "the-pivot".to_owned(),
            text: "The pivot".to_owned(),
            file: PathBuf::from("book/src/patterns/saga-lab.md"),
        }
    }

    #[test]
    fn a_served_book_is_linked_by_its_address() {
        let links = BookLinks {
            served: Some("http://127.0.0.1:3000".to_owned()),
            ..BookLinks::default()
        };
        assert_eq!(
            links.describe("patterns/saga.html#the-pivot"),
            "http://127.0.0.1:3000/patterns/saga.html#the-pivot"
        );
    }

    #[test]
    fn a_built_book_is_linked_by_its_file() {
        let links = BookLinks {
            built_pages: BTreeSet::from(["patterns/saga.html".to_owned()]),
            ..BookLinks::default()
        };
        assert_eq!(
            links.describe("patterns/saga.html#the-pivot"),
            "target/book/patterns/saga.html#the-pivot"
        );
    }

    #[test]
    fn without_a_built_book_the_markdown_is_named_and_the_build_suggested() {
        let links = BookLinks {
            headings: BTreeMap::from([("patterns/saga.html#the-pivot".to_owned(), heading())]),
            ..BookLinks::default()
        };
        assert_eq!(
            links.describe("patterns/saga.html#the-pivot"),
            "book/src/patterns/saga-lab.md, \"The pivot\" (or run `cargo xtask book` and open \
             target/book/patterns/saga.html#the-pivot)"
        );
        assert_eq!(
            links.describe("patterns/saga.html#gone"),
            "book/src/patterns/saga.md (or run `cargo xtask book` and open \
             target/book/patterns/saga.html#gone)"
        );
    }

    #[test]
    fn the_probe_sees_a_server_that_answers_and_none_where_nothing_listens() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 256];
            let read = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        assert!(book_answers(
            address,
            "patterns/saga.html",
            Duration::from_secs(5)
        ));
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("GET /patterns/saga.html HTTP/1.1")
        );

        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let nobody = closed.local_addr().unwrap();
        drop(closed);
        assert!(!book_answers(nobody, "", Duration::from_secs(5)));
    }

    #[test]
    fn a_server_answering_an_error_is_not_the_book() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 256];
            let _ = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        });
        assert!(!book_answers(
            address,
            "nowhere.html",
            Duration::from_secs(5)
        ));
        server.join().unwrap();
    }

    #[test]
    fn a_pointer_to_a_missing_heading_or_page_is_reported() {
        let root = std::env::temp_dir().join(format!("grade-pointer-{}", std::process::id()));
        let lab = root.join("labs/demo");
        std::fs::create_dir_all(lab.join("exercise")).unwrap();
        std::fs::create_dir_all(root.join("book/src/patterns")).unwrap();
        std::fs::write(lab.join("exercise/part.rs"), "").unwrap();
        std::fs::write(lab.join("graded.rs"), "").unwrap();
        std::fs::write(
            root.join("book/src/patterns/demo.md"),
            "# Demo\n## The pivot\n",
        )
        .unwrap();
        let entry = |id: &str, pointer: &str| {
            format!(
                "[[test]]\nid = \"{id}\"\nname = \"{id}\"\nnudge = \"n\"\npointer = \"{pointer}\"\n"
            )
        };
        std::fs::write(
            lab.join("grading.toml"),
            format!(
                "lab = \"demo\"\ntitle = \"Demo\"\npackage = \"demo\"\ntest_target = \"graded\"\n\
                 feature = \"exercise\"\nexercise_files = [\"labs/demo/exercise/part.rs\"]\n\
                 tests_file = \"labs/demo/graded.rs\"\nbook_page = \"patterns/demo.html\"\n{}{}{}",
                entry("demo-01", "patterns/demo.html#the-pivot"),
                entry("demo-02", "patterns/demo.html#the-povit"),
                entry("demo-03", "patterns/gone.html#the-pivot"),
            ),
        )
        .unwrap();
        let missing = missing_anchors(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            missing,
            vec![
                "labs/demo/grading.toml demo-02: `patterns/demo.html#the-povit`: no heading of \
                 book/src/patterns/demo.md (or the files it includes) has the id `the-povit`"
                    .to_owned(),
                "labs/demo/grading.toml demo-03: `patterns/gone.html#the-pivot`: the page has no \
                 source book/src/patterns/gone.md"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn every_pointer_names_a_heading_of_the_book() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let missing = missing_anchors(root).unwrap();
        assert!(
            missing.is_empty(),
            "pointers whose anchor is no heading of the book (mdBook's ids, computed from \
             book/src):\n  {}",
            missing.join("\n  ")
        );
    }
}
