//! `cargo xtask tidy`: the architecture invariants, checked by code instead of by memory.
//!
//! - every `.rs` file opens with a `//!` doc comment saying what it is for;
//! - a core crate (`*-core`) depends on nothing async or networked, and the playground depends
//!   only on core crates, so both build for `wasm32-unknown-unknown` without tokio;
//! - the `wasm-bindgen` crate is pinned with `=` to the CLI version xtask installs;
//! - the book includes code only by named anchors (never line numbers), and the anchors exist.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use walkdir::WalkDir;

use crate::tools;

/// Crates a core must never reach, directly or through its dependencies.
const FORBIDDEN_IN_CORES: &[&str] = &["tokio", "hyper", "axum", "reqwest", "mio", "tower"];

/// Run every check and report all problems at once.
pub fn run(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    problems.extend(doc_comments(root));
    problems.extend(pure_cores(root)?);
    problems.extend(wasm_bindgen_pin(root)?);
    problems.extend(book_includes(root)?);
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "tidy found {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

/// Source files we own: everything outside build output and VCS folders.
fn rust_files(root: &Path) -> impl Iterator<Item = PathBuf> {
    WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(e.depth() > 0
                && (name.starts_with('.') || name == "target" || name == "node_modules"))
        })
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.into_path())
}

fn doc_comments(root: &Path) -> Vec<String> {
    rust_files(root)
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            !first.trim_start().starts_with("//!")
        })
        .map(|path| {
            format!(
                "{} does not open with a `//!` doc comment saying what the file is for",
                relative(root, &path)
            )
        })
        .collect()
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn pure_cores(root: &Path) -> Result<Vec<String>> {
    let output = std::process::Command::new(tools::cargo())
        .args(["metadata", "--format-version", "1"])
        .current_dir(root)
        .output()
        .context("could not run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&output.stdout).context("cargo metadata's JSON")?;
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    // Normal (non-dev, non-build) dependency edges of the resolved graph, for the host target.
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in meta["resolve"]["nodes"].as_array().into_iter().flatten() {
        let Some(id) = node["id"].as_str() else {
            continue;
        };
        let deps = node["deps"].as_array().into_iter().flatten().filter(|d| {
            d["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null())
        });
        edges.insert(id, deps.filter_map(|d| d["pkg"].as_str()).collect());
    }
    let name_of = |id: &str| names.get(id).copied().unwrap_or("?");
    let mut problems = Vec::new();
    for member in &members {
        let name = name_of(member);
        let is_core = name.ends_with("-core");
        if !is_core && name != "playground" {
            continue;
        }
        if name == "playground" {
            for dep in edges.get(member).into_iter().flatten() {
                if members.contains(dep) && !name_of(dep).ends_with("-core") {
                    problems.push(format!(
                        "playground depends on workspace crate {}: it may depend only on core crates",
                        name_of(dep)
                    ));
                }
            }
        }
        // Breadth-first walk, remembering the path so the message shows how a crate got in.
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([(*member, vec![name])]);
        while let Some((id, path)) = queue.pop_front() {
            for dep in edges.get(id).into_iter().flatten() {
                if !seen.insert(*dep) {
                    continue;
                }
                let mut dep_path = path.clone();
                dep_path.push(name_of(dep));
                if FORBIDDEN_IN_CORES.contains(&name_of(dep)) {
                    problems.push(format!(
                        "{name} must stay pure (no async or network crates) but depends on {} via {}",
                        name_of(dep),
                        dep_path.join(" → ")
                    ));
                }
                queue.push_back((dep, dep_path));
            }
        }
    }
    Ok(problems)
}

fn wasm_bindgen_pin(root: &Path) -> Result<Vec<String>> {
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let value: toml::Table = toml::from_str(&manifest).context("parsing Cargo.toml")?;
    let pinned = value
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.get("wasm-bindgen"))
        .and_then(|v| {
            v.as_str()
                .or_else(|| v.get("version").and_then(toml::Value::as_str))
        })
        .unwrap_or("");
    let wanted = format!("={}", tools::WASM_BINDGEN);
    Ok(if pinned == wanted {
        Vec::new()
    } else {
        vec![format!(
            "Cargo.toml pins wasm-bindgen as {pinned:?} but xtask installs wasm-bindgen-cli {}: pin it as \"{wanted}\"",
            tools::WASM_BINDGEN
        )]
    })
}

/// Every `{{#include file.rs...}}` in the book names an anchor that exists in that file.
fn book_includes(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let src = root.join("book/src");
    for entry in WalkDir::new(&src).into_iter().filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "md") {
            continue;
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (line_no, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(start) = rest.find("{{#include ") {
                let after = &rest[start + "{{#include ".len()..];
                let Some(end) = after.find("}}") else { break };
                let spec = after[..end].trim();
                rest = &after[end..];
                let (file, anchor) = match spec.split_once(':') {
                    Some((f, a)) => (f, Some(a)),
                    None => (spec, None),
                };
                let at = format!("{}:{}", relative(root, path), line_no + 1);
                let Some(dir) = path.parent() else { continue };
                let target = dir.join(file);
                if !target.exists() {
                    problems.push(format!("{at}: includes {file}, which does not exist"));
                    continue;
                }
                if !file.ends_with(".rs") {
                    continue;
                }
                match anchor {
                    None => problems.push(format!(
                        "{at}: includes all of {file}; include code by a named anchor"
                    )),
                    Some(a) if a.chars().next().is_some_and(|c| c.is_ascii_digit()) => problems
                        .push(format!(
                            "{at}: includes {file} by line numbers ({a}); use a named anchor"
                        )),
                    Some(a) => {
                        let code = std::fs::read_to_string(&target).unwrap_or_default();
                        if !code.contains(&format!("ANCHOR: {a}"))
                            || !code.contains(&format!("ANCHOR_END: {a}"))
                        {
                            problems.push(format!("{at}: anchor `{a}` not found in {file}"));
                        }
                    }
                }
            }
        }
    }
    Ok(problems)
}
