//! `cargo xtask grade --watch`: grade again every time the learner saves.
//!
//! Polling modification times every 300 ms is plenty for a human saving a file, works the
//! same on every OS and filesystem (including containers and network mounts where change
//! notifications are unreliable), and needs no dependency. Ctrl-C ends the process.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{CardArgs, Limits, grade_once, manifest};
use lab_runtime::Palette as Style;

const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// Grades `lab`, then again after every change to its exercise files, until interrupted.
pub fn run(
    root: &Path,
    lab: &str,
    limits: Limits,
    style: Style,
    shown: &CardArgs,
) -> anyhow::Result<()> {
    let mut started = Instant::now();
    loop {
        clear_screen();
        if let Err(error) = grade_once(root, lab, limits, style, shown, started) {
            println!("{}", style.bad(&format!("error: {error:#}")));
        }
        let watched = watched_files(root, lab);
        let names: Vec<String> = watched
            .iter()
            .map(|file| {
                file.strip_prefix(root)
                    .unwrap_or(file)
                    .display()
                    .to_string()
            })
            .collect();
        println!(
            "\n{}",
            style.dim(&format!(
                "watching {}: save to grade again, Ctrl-C to quit",
                names.join(", ")
            ))
        );
        started = wait_for_change(&watched);
    }
}

/// The exercise files, the graded tests and the manifest (so hint edits show up too).
fn watched_files(root: &Path, lab: &str) -> Vec<PathBuf> {
    let manifest_path = root.join("labs").join(lab).join(manifest::MANIFEST_FILE);
    let mut files = vec![manifest_path];
    if let Ok(found) = manifest::load(root, lab) {
        files.extend(
            found
                .manifest
                .exercise_files
                .iter()
                .map(|file| root.join(file)),
        );
        files.push(root.join(&found.manifest.tests_file));
    }
    files
}

/// What we compare between polls: modification time and size (a missing file is `None`).
fn stamp(file: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(file).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Blocks until a watched file changes; returns the moment it was saved.
///
/// The returned instant is back-dated to the file's modification time, so the "verdict
/// after" figure measures from the learner's save, not from when the poll noticed it.
fn wait_for_change(files: &[PathBuf]) -> Instant {
    let before: Vec<_> = files.iter().map(|file| stamp(file)).collect();
    loop {
        std::thread::sleep(POLL_INTERVAL);
        let now: Vec<_> = files.iter().map(|file| stamp(file)).collect();
        if now != before {
            let newest_save = now.iter().flatten().map(|(modified, _)| *modified).max();
            let since_save = newest_save
                .and_then(|saved| SystemTime::now().duration_since(saved).ok())
                .unwrap_or_default()
                .min(POLL_INTERVAL * 2);
            let noticed = Instant::now();
            return noticed.checked_sub(since_save).unwrap_or(noticed);
        }
    }
}

fn clear_screen() {
    let mut stdout = std::io::stdout();
    if stdout.is_terminal() {
        // Erase the screen and move the cursor home, so each run reads as a fresh scorecard.
        let _ = write!(stdout, "\x1b[2J\x1b[H");
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_saved_file_ends_the_wait() {
        let dir = std::env::temp_dir().join(format!("grade-watch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("machine.rs");
        std::fs::write(&file, "todo").unwrap();
        let writer_file = file.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            std::fs::write(&writer_file, "done, and longer").unwrap();
        });
        let noticed = wait_for_change(std::slice::from_ref(&file));
        writer.join().unwrap();
        assert!(noticed <= Instant::now());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
