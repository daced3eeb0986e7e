//! What a lab's tests need beyond cargo, declared in `labs/<lab>/lab.toml`, and the phase of
//! `cargo xtask test` that provides it.
//!
//! A lab whose tests talk to NATS JetStream when `NATS_URL` is set lists those test targets:
//!
//! ```toml
//! package = "lab-saga"
//! [needs.nats]
//! tests = ["choreography", "choreography_processes"]
//! ```
//!
//! `cargo xtask test` starts one throwaway `nats-server -js` for every lab that asks, points
//! `NATS_URL` at it and runs those targets again, with `--workspace` like the workspace's own test
//! run (a `-p` build resolves features per package and rebuilds the dependencies).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::{nats, step, tools};

/// `labs/<lab>/lab.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    package: String,
    #[serde(default)]
    needs: Needs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Needs {
    nats: Option<NatsNeed>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NatsNeed {
    tests: Vec<String>,
}

/// A lab's declared needs.
#[derive(Debug)]
pub struct LabNeeds {
    /// The lab's package (`lab-saga`).
    pub package: String,
    /// Its test targets that run against NATS JetStream when `NATS_URL` is set.
    pub nats_tests: Vec<String>,
}

/// Every `labs/*/lab.toml`, in the order of the labs' folder names.
pub fn read(root: &Path) -> Result<Vec<LabNeeds>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("labs"))
        .context("cannot list labs/")?
        .flatten()
        .map(|entry| entry.path().join("lab.toml"))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files.iter().map(|path| parse(path)).collect()
}

fn parse(path: &Path) -> Result<LabNeeds> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: Manifest = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid lab.toml", path.display()))?;
    Ok(LabNeeds {
        package: manifest.package,
        nats_tests: manifest.needs.nats.map(|n| n.tests).unwrap_or_default(),
    })
}

/// Whether any lab asks for NATS.
pub fn any_wants_nats(labs: &[LabNeeds]) -> bool {
    labs.iter().any(|lab| !lab.nats_tests.is_empty())
}

/// The `cargo test` arguments that run the labs' NATS test targets.
fn nats_test_args(labs: &[LabNeeds]) -> Vec<String> {
    let mut args = vec!["test".to_owned(), "--workspace".to_owned()];
    for test in labs.iter().flat_map(|lab| &lab.nats_tests) {
        args.push("--test".to_owned());
        args.push(test.clone());
    }
    args
}

/// Start one `nats-server -js` and run every lab's NATS test targets against it.
pub fn run_nats_tests(root: &Path, labs: &[LabNeeds]) -> Result<()> {
    let server = nats::start(root)?;
    step::note(&format!("nats-server -js on {}", server.url));
    let asking: Vec<&str> = labs
        .iter()
        .filter(|lab| !lab.nats_tests.is_empty())
        .map(|lab| lab.package.as_str())
        .collect();
    let mut cmd = Command::new(tools::cargo());
    cmd.args(nats_test_args(labs)).env("NATS_URL", &server.url);
    step::run_checked(
        &mut cmd,
        &format!("the NATS JetStream tests of {}", asking.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `tests/<name>.rs` under `labs/`, by file stem, with the lab folder it is in.
    fn test_targets(root: &Path) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(root.join("labs"))
            .into_iter()
            .flatten()
        {
            let path = entry.path();
            let in_tests = path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|dir| dir == "tests");
            if !in_tests || path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let Ok(relative) = path.strip_prefix(root.join("labs")) else {
                continue;
            };
            let lab = relative
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push((stem, lab));
        }
        found
    }

    #[test]
    fn no_other_lab_has_a_test_target_named_like_a_nats_one() {
        // The NATS phase runs `cargo test --workspace --test NAME`, which runs every package's
        // target of that name with NATS_URL set: a lab's target named like another lab's NATS
        // one would run against NATS without being written for it.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace root");
        let mut nats_tests_of_lab = std::collections::BTreeMap::new();
        for path in std::fs::read_dir(root.join("labs"))
            .expect("labs/")
            .flatten()
        {
            let manifest = path.path().join("lab.toml");
            if manifest.is_file() {
                let needs = parse(&manifest).expect("a valid lab.toml");
                nats_tests_of_lab.insert(
                    path.file_name().to_string_lossy().into_owned(),
                    needs.nats_tests,
                );
            }
        }
        let targets = test_targets(root);
        for (lab, nats_tests) in &nats_tests_of_lab {
            for name in nats_tests {
                let clashes: Vec<&String> = targets
                    .iter()
                    .filter(|(stem, other)| stem == name && other != lab)
                    .filter(|(_, other)| {
                        !nats_tests_of_lab
                            .get(other)
                            .is_some_and(|tests| tests.contains(name))
                    })
                    .map(|(_, other)| other)
                    .collect();
                assert!(
                    clashes.is_empty(),
                    "labs/{lab}'s NATS test target {name:?} is also a test target of {clashes:?}, which would run against NATS too: rename one"
                );
            }
        }
    }

    #[test]
    fn a_lab_lists_the_tests_that_need_nats() {
        let dir = std::env::temp_dir().join(format!("needs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let path = dir.join("lab.toml");
        std::fs::write(
            &path,
            "package = \"lab-x\"\n[needs.nats]\ntests = [\"a\", \"b\"]\n",
        )
        .expect("a scratch lab.toml");
        let lab = parse(&path).expect("a valid lab.toml");
        assert_eq!(lab.package, "lab-x");
        assert_eq!(lab.nats_tests, ["a", "b"]);
        assert_eq!(
            nats_test_args(&[lab]),
            ["test", "--workspace", "--test", "a", "--test", "b"]
        );
        std::fs::write(&path, "package = \"lab-y\"\n").expect("a scratch lab.toml");
        let plain = parse(&path).expect("a lab.toml without needs is valid");
        assert!(
            !any_wants_nats(&[plain]),
            "a lab that lists no need gets no server"
        );
        std::fs::write(&path, "package = \"lab-z\"\n[needs.redis]\n").expect("a scratch lab.toml");
        assert!(
            parse(&path).is_err(),
            "an unknown need is an error, not silently ignored"
        );
        std::fs::remove_dir_all(&dir).expect("the scratch directory goes");
    }

    #[test]
    fn the_saga_lab_asks_for_nats() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace root");
        let labs = read(root).expect("every lab.toml parses");
        let saga = labs
            .iter()
            .find(|lab| lab.package == "lab-saga")
            .expect("the saga lab has a lab.toml");
        assert!(saga.nats_tests.contains(&"choreography".to_owned()));
    }
}
