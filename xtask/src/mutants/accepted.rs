//! A lab's accepted survivors (`labs/<lab>/mutants-accepted.toml`): the mutants no graded test
//! can kill because they change no behaviour, each with its reason, and the hash of the
//! reference files the list was made against.
//!
//! A mutant is identified by its file, cargo-mutants' description without line and column
//! (`replace > with >= in RateLimiter::handle_timeout`) and the source line it mutates, so
//! an edit that only moves code keeps the list valid; the same mutant twice on one line is
//! matched by count. The `mutant` field keeps the full name as cargo-mutants prints it, with
//! the line and column of the run that wrote it, for the reader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::outcomes::Mutant;

/// The accepted-survivors file's name, inside `labs/<lab>/`.
pub const FILE_NAME: &str = "mutants-accepted.toml";

/// The parsed accepted-survivors file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedFile {
    /// SHA-256 of the reference files the list was made against (see [`reference_hash`]).
    pub reference_sha256: String,
    /// The accepted survivors, in source order.
    #[serde(default, rename = "survivor")]
    pub survivors: Vec<Accepted>,
}

/// One accepted survivor.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// The mutant's name as cargo-mutants prints it: `file:line:col: description`.
    pub mutant: String,
    /// The source line it mutates, trimmed.
    pub code: String,
    /// Why no test can kill it: the behaviour it cannot change.
    pub reason: String,
}

impl Accepted {
    fn identity(&self) -> Identity {
        Identity::new(&self.mutant, &self.code)
    }
}

/// A surviving mutant of this run, with the source line it mutates.
#[derive(Clone, Debug)]
pub struct Survivor {
    /// The mutant, as cargo-mutants reported it.
    pub mutant: Mutant,
    /// The unmutated source line, trimmed.
    pub code: String,
}

impl Survivor {
    /// Reads the mutated line of `mutant` from the reference file under `root`.
    pub fn read(root: &Path, mutant: &Mutant) -> Result<Self> {
        let path = root.join(&mutant.file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let code = text
            .lines()
            .nth(mutant.line.saturating_sub(1))
            .with_context(|| format!("{} has no line {}", mutant.file, mutant.line))?;
        Ok(Self {
            mutant: mutant.clone(),
            code: code.trim().to_owned(),
        })
    }

    fn identity(&self) -> Identity {
        Identity::new(&self.mutant.name, &self.code)
    }

    /// This survivor as an entry of the file, with `reason`.
    pub fn accept(&self, reason: &str) -> Accepted {
        Accepted {
            mutant: self.mutant.name.clone(),
            code: self.code.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// What stays the same when code only moves: file, description, mutated line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Identity {
    file: String,
    description: String,
    code: String,
}

impl Identity {
    fn new(name: &str, code: &str) -> Self {
        let (location, description) = name.split_once(": ").unwrap_or(("", name));
        let file = location.split(':').next().unwrap_or(location);
        Self {
            file: file.to_owned(),
            description: description.trim().to_owned(),
            code: code.trim().to_owned(),
        }
    }
}

/// The run's survivors set against the accepted list.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Survivors on the list, with their (carried over) entry, refreshed to this run's name.
    pub accepted: Vec<Accepted>,
    /// Survivors not on the list: each needs a new graded test or a reason.
    pub unaccepted: Vec<Survivor>,
    /// Entries that match no survivor: killed, or their code changed.
    pub stale: Vec<Accepted>,
}

impl Comparison {
    /// Whether every survivor is accepted and every entry still survives.
    pub fn is_current(&self) -> bool {
        self.unaccepted.is_empty() && self.stale.is_empty()
    }
}

/// Matches survivors with entries by identity; each entry covers one survivor.
pub fn compare(survivors: &[Survivor], list: &[Accepted]) -> Comparison {
    let mut unused: BTreeMap<Identity, Vec<&Accepted>> = BTreeMap::new();
    for entry in list.iter().rev() {
        unused.entry(entry.identity()).or_default().push(entry);
    }
    let mut comparison = Comparison::default();
    for survivor in survivors {
        match unused.get_mut(&survivor.identity()).and_then(Vec::pop) {
            Some(entry) => comparison.accepted.push(survivor.accept(&entry.reason)),
            None => comparison.unaccepted.push(survivor.clone()),
        }
    }
    // Report stale entries in the file's order.
    let leftover: Vec<&Accepted> = unused.into_values().flatten().collect();
    comparison.stale = list
        .iter()
        .filter(|entry| leftover.iter().any(|left| std::ptr::eq(*left, *entry)))
        .cloned()
        .collect();
    comparison
}

/// SHA-256 over the reference files, each as its path, a newline, its text (line endings
/// normalised to `\n`, so a Windows checkout hashes the same) and a NUL byte.
pub fn reference_hash(root: &Path, files: &[PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    for file in files {
        let text = std::fs::read_to_string(root.join(file))
            .with_context(|| format!("reading the reference file {}", file.display()))?;
        hasher.update(file.to_string_lossy().replace('\\', "/").as_bytes());
        hasher.update(b"\n");
        hasher.update(text.replace("\r\n", "\n").as_bytes());
        hasher.update([0u8]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Reads and checks `labs/<lab>/mutants-accepted.toml`; `None` when it does not exist.
pub fn load(path: &Path) -> Result<Option<AcceptedFile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let file: AcceptedFile =
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    let unexplained: Vec<&str> = file
        .survivors
        .iter()
        .filter(|entry| entry.reason.trim().is_empty())
        .map(|entry| entry.mutant.as_str())
        .collect();
    if !unexplained.is_empty() {
        bail!(
            "{} accepts survivors without a reason (say which behaviour they cannot change):\n  - {}",
            path.display(),
            unexplained.join("\n  - ")
        );
    }
    Ok(Some(file))
}

/// The text of the file: a header saying what it is, the hash, then one entry per survivor.
pub fn render(lab: &str, hash: &str, entries: &[Accepted]) -> String {
    let mut text = format!(
        "# Mutants of the {lab} lab's graded modules that survive the graded tests, each with\n\
         # the reason it cannot change behaviour. Written by `cargo xtask mutants {lab}`, which\n\
         # fails on a survivor missing here and on an entry that no longer survives; only the\n\
         # reasons are written by hand. Entries match on file, description and `code` (the\n\
         # mutated line), not on line numbers. `cargo xtask test` fails when a reference file\n\
         # changed after this list was made.\n\n\
         reference_sha256 = {}\n",
        quote(hash)
    );
    for entry in entries {
        text.push_str(&render_entry(entry));
    }
    text
}

/// One `[[survivor]]` table.
pub fn render_entry(entry: &Accepted) -> String {
    format!(
        "\n[[survivor]]\nmutant = {}\ncode = {}\nreason = {}\n",
        quote(&entry.mutant),
        quote(&entry.code),
        quote(&entry.reason)
    )
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::mutants::outcomes::Fate;

    fn survivor(name: &str, line: usize, code: &str) -> Survivor {
        Survivor {
            mutant: Mutant {
                name: name.to_owned(),
                file: name.split(':').next().unwrap().to_owned(),
                line,
                fate: Fate::Missed,
            },
            code: code.to_owned(),
        }
    }

    #[test]
    fn a_moved_survivor_still_matches_its_entry() {
        let list = [survivor("src/a.rs:10:5: replace > with >= in f", 10, "x > y").accept("same")];
        let moved = [survivor(
            "src/a.rs:14:5: replace > with >= in f",
            14,
            "  x > y",
        )];
        let comparison = compare(&moved, &list);
        assert!(
            comparison.is_current(),
            "moved survivor accepted: {comparison:?}"
        );
        assert_eq!(
            comparison.accepted[0].mutant, "src/a.rs:14:5: replace > with >= in f",
            "the entry is refreshed to the new line"
        );
        assert_eq!(
            comparison.accepted[0].reason, "same",
            "the reason is carried over"
        );
    }

    #[test]
    fn a_survivor_on_a_changed_line_is_unaccepted_and_its_entry_stale() {
        let list = [survivor("src/a.rs:10:5: replace > with >= in f", 10, "x > y").accept("r")];
        let changed = [survivor(
            "src/a.rs:10:5: replace > with >= in f",
            10,
            "x > z",
        )];
        let comparison = compare(&changed, &list);
        assert_eq!(
            comparison.unaccepted.len(),
            1,
            "the new survivor is not accepted"
        );
        assert_eq!(comparison.stale, list.to_vec(), "the old entry is stale");
    }

    #[test]
    fn each_entry_covers_one_survivor_of_the_same_identity() {
        let twin = |col| {
            survivor(
                &format!("src/a.rs:3:{col}: replace - with + in f"),
                3,
                "a - b - c",
            )
        };
        let list = [twin(5).accept("first")];
        let comparison = compare(&[twin(5), twin(9)], &list);
        assert_eq!(
            (comparison.accepted.len(), comparison.unaccepted.len()),
            (1, 1),
            "(accepted, unaccepted): one entry accepts one of two identical survivors"
        );
    }

    #[test]
    fn the_rendered_file_parses_back() {
        let entry = survivor(
            "src/a.rs:1:1: replace f -> &str with \"\"",
            1,
            "fn f() -> &str { \"a\\b\" }",
        )
        .accept("it \"quotes\"");
        let text = render("demo", "abc", std::slice::from_ref(&entry));
        let parsed: AcceptedFile = toml::from_str(&text).unwrap();
        assert_eq!(
            (parsed.reference_sha256.as_str(), parsed.survivors),
            ("abc", vec![entry]),
            "(hash, entries) after a round trip"
        );
    }

    #[test]
    fn the_hash_changes_when_a_reference_file_changes() {
        let dir = std::env::temp_dir().join(format!("xtask-mutants-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [PathBuf::from("a.rs")];
        std::fs::write(dir.join("a.rs"), "fn a() {}\n").unwrap();
        let before = reference_hash(&dir, &files).unwrap();
        std::fs::write(dir.join("a.rs"), "fn a() {}\r\n").unwrap();
        let crlf = reference_hash(&dir, &files).unwrap();
        std::fs::write(dir.join("a.rs"), "fn a() { }\n").unwrap();
        let after = reference_hash(&dir, &files).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(before, crlf, "line endings do not change the hash");
        assert_ne!(before, after, "an edit changes the hash");
    }
}
