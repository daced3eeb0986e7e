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

/// The `cargo test` arguments that run each lab's NATS test targets: one command per lab, its
/// package named, because `--test crash` across the workspace would also run every other
/// package's `crash` target, NATS-ready or not.
fn nats_test_args(labs: &[LabNeeds]) -> Vec<Vec<String>> {
    labs.iter()
        .filter(|lab| !lab.nats_tests.is_empty())
        .map(|lab| {
            let mut args = vec!["test".to_owned(), "-p".to_owned(), lab.package.clone()];
            for test in &lab.nats_tests {
                args.push("--test".to_owned());
                args.push(test.clone());
            }
            args
        })
        .collect()
}

/// Start one `nats-server -js` and run every lab's NATS test targets against it.
pub fn run_nats_tests(root: &Path, labs: &[LabNeeds]) -> Result<()> {
    let server = nats::start(root)?;
    step::note(&format!("nats-server -js on {}", server.url));
    for args in nats_test_args(labs) {
        let mut cmd = Command::new(tools::cargo());
        cmd.args(&args).env("NATS_URL", &server.url);
        step::run_checked(
            &mut cmd,
            &format!("the NATS JetStream tests of {}", args[2]),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let other = LabNeeds {
            package: "lab-w".to_owned(),
            nats_tests: vec!["a".to_owned()],
        };
        assert_eq!(
            nats_test_args(&[lab, other]),
            [
                vec!["test", "-p", "lab-x", "--test", "a", "--test", "b"],
                vec!["test", "-p", "lab-w", "--test", "a"],
            ],
            "each lab's targets run in its own package only"
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
