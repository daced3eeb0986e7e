//! The ways setting up a check can fail, each worded so the reader knows what to do next.
//!
//! Missing prerequisites (an unbuilt book, no Chromium) are errors, never skips: a check that
//! quietly does nothing would let a broken book through CI.

use std::path::PathBuf;

/// Why the book could not be found, served or opened in a browser.
#[derive(Debug, thiserror::Error)]
pub enum BookTestError {
    /// The built book directory has no `index.html`.
    #[error("the book is not built: run `cargo xtask book` (no index.html in {dir})")]
    BookNotBuilt {
        /// Where the book was looked for (`BOOK_DIR`, else `<root>/target/book`).
        dir: PathBuf,
    },
    /// Chromium or chromedriver is not installed where the tests look for it.
    #[error(
        "{tool} was not found at {path}: run `cargo xtask test` (it installs it) \
         or `apt-get install chromium chromium-driver`"
    )]
    BrowserMissing {
        /// `chromium` or `chromedriver`.
        tool: &'static str,
        /// The path that was checked.
        path: PathBuf,
    },
    /// Reading a file or directory failed.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// chromedriver exited or never started listening.
    #[error("chromedriver did not start: {0}")]
    Chromedriver(String),
    /// chromedriver answered but could not start a Chromium session.
    #[error("could not open a Chromium session through chromedriver: {0}")]
    Session(#[from] fantoccini::error::NewSessionError),
    /// A WebDriver command failed (navigation, script, screenshot…).
    #[error("browser command failed: {0}")]
    Command(#[from] fantoccini::error::CmdError),
    /// The static server for the book could not start.
    #[error("could not serve the book: {0}")]
    Server(std::io::Error),
}

impl BookTestError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
