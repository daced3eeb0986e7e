//! Where things are: the workspace, the built book, the markdown sources, the guide, and where
//! screenshots go.
//!
//! Every location can be overridden by an environment variable so the checks can be pointed at a
//! small hand-made book while developing them (`BOOK_DIR`, `BOOK_SRC`).

use std::path::{Path, PathBuf};

use crate::BookTestError;

/// The workspace root: this crate lives in `<root>/tests`.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// The built book: `BOOK_DIR` if set, else `<root>/target/book`, which `cargo xtask book` writes.
///
/// Fails with the command to run when the directory holds no `index.html`, so an unbuilt book
/// reads as an instruction rather than as hundreds of missing pages.
pub fn book_dir() -> Result<PathBuf, BookTestError> {
    let dir = std::env::var_os("BOOK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("book"));
    if dir.join("index.html").is_file() {
        Ok(dir)
    } else {
        Err(BookTestError::BookNotBuilt { dir })
    }
}

/// The markdown sources of the book: `BOOK_SRC` if set, else `<root>/book/src`.
pub fn book_src_dir() -> PathBuf {
    std::env::var_os("BOOK_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("book").join("src"))
}

/// The committed copy of the guide the book reproduces.
pub fn guide_path() -> PathBuf {
    workspace_root()
        .join("book")
        .join("source")
        .join("microservices-guide.md")
}

/// Where the browser tests save their screenshots (`<root>/target/screenshots`).
pub fn screenshots_dir() -> PathBuf {
    workspace_root().join("target").join("screenshots")
}

/// Reads a file as UTF-8, naming the file if that fails.
pub fn read_to_string(path: &Path) -> Result<String, BookTestError> {
    std::fs::read_to_string(path).map_err(|source| BookTestError::io(path, source))
}
