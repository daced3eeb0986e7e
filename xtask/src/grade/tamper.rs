//! Tells a learner when the graded tests (or their manifest) are not the committed ones.
//!
//! Editing a test until it passes is the oldest way to "pass" an exercise. The grader does
//! not forbid it (the learner owns their tree), but it says plainly that such a score does
//! not count. The committed version is the reference point: a file that differs from
//! `HEAD`, or is not tracked at all, counts as changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How a checked file compares with the committed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Tracked, with uncommitted changes.
    Modified,
    /// Not tracked by git at all.
    Untracked,
}

/// The verdict of the tamper check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TamperCheck {
    /// Every checked file equals the committed version.
    Unchanged,
    /// These files differ from the committed version.
    Changed(Vec<(PathBuf, Change)>),
    /// The check could not run, for this reason.
    Unavailable(String),
}

/// Compares `files` (relative to `root`) with `HEAD` using git.
pub fn check(root: &Path, files: &[&Path]) -> TamperCheck {
    let has_head = match git(root, &["rev-parse", "--verify", "--quiet", "HEAD"]) {
        Err(reason) => return TamperCheck::Unavailable(reason),
        Ok(code) => code == Some(0),
    };
    if !has_head {
        let inside = git(root, &["rev-parse", "--is-inside-work-tree"]);
        let reason = if inside == Ok(Some(0)) {
            "the repository has no commit yet"
        } else {
            "this folder is not a git repository"
        };
        return TamperCheck::Unavailable(reason.to_owned());
    }
    let mut changed = Vec::new();
    for file in files {
        let file_arg = file.to_string_lossy();
        match git(root, &["ls-files", "--error-unmatch", "--", &file_arg]) {
            Ok(Some(0)) => {}
            Ok(_) => {
                changed.push((file.to_path_buf(), Change::Untracked));
                continue;
            }
            Err(reason) => return TamperCheck::Unavailable(reason),
        }
        match git(root, &["diff", "--quiet", "HEAD", "--", &file_arg]) {
            Ok(Some(0)) => {}
            Ok(Some(1)) => changed.push((file.to_path_buf(), Change::Modified)),
            Ok(_) => return TamperCheck::Unavailable(format!("git diff failed for {file_arg}")),
            Err(reason) => return TamperCheck::Unavailable(reason),
        }
    }
    if changed.is_empty() {
        TamperCheck::Unchanged
    } else {
        TamperCheck::Changed(changed)
    }
}

/// Runs git quietly and returns its exit code; `Err` says why git could not run at all.
fn git(root: &Path, args: &[&str]) -> Result<Option<i32>, String> {
    Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.code())
        .map_err(|error| format!("git could not run ({error})"))
}
