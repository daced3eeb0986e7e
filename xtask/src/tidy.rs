//! `cargo xtask tidy`: the architecture invariants, checked by code instead of by memory.
//!
//! - every `.rs` file opens with a `//!` doc comment saying what it is for, and no doc comment
//!   only restates a name (`/// The step.`): it says what the item is for, or the item allows
//!   `missing_docs`;
//! - a core crate (`*-core`) depends on nothing async or networked, and the playground depends
//!   only on core crates, so both build for `wasm32-unknown-unknown` without tokio;
//! - no crate depends on a lab's demo crate (`labs/<pattern>/`, crate `lab-<pattern>`): what
//!   another crate needs from a lab lives in a library crate of its own (`breaker-tower`);
//! - every lab's demo crate depends on `lab-runtime`, so every lab's services take their clock,
//!   their server and their command line from one place;
//! - every core crate under `labs/` implements `sansio_core::Machine` (the vocabulary's own
//!   crate, `sansio-core`, excepted), so every lab has the same shape;
//! - the `wasm-bindgen` crate is pinned with `=` to the CLI version xtask installs;
//! - the book includes code only by named anchors (never line numbers), and the anchors exist;
//! - the answer of an exercise is only on its solution page: no other page includes code from a
//!   file listed as a lab's `reference_files` in its `grading.toml` or repeats three of its
//!   lines in a code block, no page includes a solution page, and no grader pointer leads to
//!   a solution page.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
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
    problems.extend(name_only_doc_comments(root));
    problems.extend(pure_cores(root)?);
    problems.extend(lab_demos_are_not_libraries(root)?);
    problems.extend(cores_without_a_machine(&core_sources(root)?));
    problems.extend(wasm_bindgen_pin(root)?);
    problems.extend(book_includes(root)?);
    problems.extend(answers_stay_on_solution_pages(root)?);
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

/// Every doc comment in the tree that is a single line holding only an optional article and
/// one word, with its place.
fn name_only_doc_comments(root: &Path) -> Vec<String> {
    rust_files(root)
        .flat_map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let file = relative(root, &path);
            name_only_comment_lines(&text).into_iter().map(move |line| {
                format!(
                    "{file}:{line}: this doc comment only restates a name; say what the item \
                         is for, or put `#[allow(missing_docs)]` on the item"
                )
            })
        })
        .collect()
}

/// The 1-based numbers of the lines in `source` that are a whole doc comment (`///` or `//!`,
/// with no doc line of the same kind just above or below) made only of an optional article
/// and one word: `/// The step.`, `/// When.`. A last line of a longer comment (`/// another.`)
/// is not one.
fn name_only_comment_lines(source: &str) -> Vec<usize> {
    let lines: Vec<&str> = source.lines().map(str::trim_start).collect();
    let kind = |line: Option<&&str>| match line {
        Some(line) if line.starts_with("///") && !line.starts_with("////") => Some("///"),
        Some(line) if line.starts_with("//!") => Some("//!"),
        _ => None,
    };
    (0..lines.len())
        .filter(|&at| {
            let Some(marker) = kind(lines.get(at)) else {
                return false;
            };
            let above = at.checked_sub(1).and_then(|above| kind(lines.get(above)));
            let below = kind(lines.get(at + 1));
            above != Some(marker)
                && below != Some(marker)
                && only_a_name(&lines[at][marker.len()..])
        })
        .map(|at| at + 1)
        .collect()
}

/// True for an optional article and one word, with an optional full stop: `The step.`, `When`.
fn only_a_name(text: &str) -> bool {
    let text = text.trim();
    let text = text.strip_suffix('.').unwrap_or(text);
    let word = ["The ", "A ", "An "]
        .iter()
        .find_map(|article| text.strip_prefix(article))
        .unwrap_or(text);
    !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
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

/// A lab's demo crate (`labs/<pattern>/Cargo.toml`, named `lab-<pattern>`) is an end product,
/// with its demo services, narration and scenario: nothing takes it as a (non-dev) dependency.
fn lab_demos_are_not_libraries(root: &Path) -> Result<Vec<String>> {
    let output = std::process::Command::new(tools::cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
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
    let mut problems = dependencies_on_lab_demos(&meta);
    problems.extend(lab_demos_without_the_runtime(&meta));
    Ok(problems)
}

/// Every lab's demo crate (`labs/<pattern>/Cargo.toml`, named `lab-<pattern>`) in
/// `cargo metadata --no-deps` output that does not depend on `lab-runtime`.
fn lab_demos_without_the_runtime(meta: &Value) -> Vec<String> {
    let labs = Path::new(meta["workspace_root"].as_str().unwrap_or_default()).join("labs");
    let mut problems = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or("?");
        let folder = Path::new(package["manifest_path"].as_str().unwrap_or_default())
            .parent()
            .and_then(|dir| dir.strip_prefix(&labs).ok())
            .and_then(Path::to_str);
        let Some(pattern) = folder else { continue };
        if name.strip_prefix("lab-") != Some(pattern) {
            continue;
        }
        let uses_runtime = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|dep| dep["name"] == "lab-runtime" && dep["kind"].as_str() != Some("dev"));
        if !uses_runtime {
            problems.push(format!(
                "{name} does not depend on lab-runtime: a lab's services take their clock, server and --role/--port command line from it (see ARCHITECTURE.md, How to add a lab)"
            ));
        }
    }
    problems
}

/// The problems of [`lab_demos_are_not_libraries`] in `cargo metadata --no-deps` output.
fn dependencies_on_lab_demos(meta: &Value) -> Vec<String> {
    let labs = Path::new(meta["workspace_root"].as_str().unwrap_or_default()).join("labs");
    let is_demo = |name: &str, path: &str| {
        let pattern = Path::new(path)
            .strip_prefix(&labs)
            .ok()
            .and_then(Path::to_str);
        pattern.is_some_and(|p| name.strip_prefix("lab-") == Some(p))
    };
    let mut problems = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or("?");
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let (Some(dep_name), Some(dep_path)) = (dep["name"].as_str(), dep["path"].as_str())
            else {
                continue;
            };
            if dep["kind"].as_str() != Some("dev") && is_demo(dep_name, dep_path) {
                problems.push(format!(
                    "{name} depends on {dep_name}, a lab's demo crate: move what it needs into a library crate of its own (as breaker-tower holds the breaker's handle and layer)"
                ));
            }
        }
    }
    problems
}

/// The crate that defines `Machine`: the one core that does not implement it.
const VOCABULARY_CRATE: &str = "sansio-core";

/// Every `*-core` crate under `labs/` but the vocabulary's own: its folder (relative to the
/// root) → the text of its `src/` files.
fn core_sources(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut cores = BTreeMap::new();
    for entry in WalkDir::new(root.join("labs"))
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(name.starts_with('.') || name == "target" || name == "node_modules")
        })
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.file_name() == "Cargo.toml")
    {
        let text = std::fs::read_to_string(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        let manifest: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", entry.path().display()))?;
        let name = manifest
            .get("package")
            .and_then(|package| package.get("name"))
            .and_then(toml::Value::as_str)
            .unwrap_or_default();
        if !name.ends_with("-core") || name == VOCABULARY_CRATE {
            continue;
        }
        let dir = entry.path().parent().unwrap_or(root);
        let mut sources = String::new();
        for file in rust_files(&dir.join("src")) {
            sources.push_str(&std::fs::read_to_string(&file).unwrap_or_default());
            sources.push('\n');
        }
        cores.insert(relative(root, dir), sources);
    }
    Ok(cores)
}

/// The cores (folder → sources) that implement no `Machine`: a line of code (not a comment)
/// that starts with `impl` and names `Machine for`.
fn cores_without_a_machine(cores: &BTreeMap<String, String>) -> Vec<String> {
    cores
        .iter()
        .filter(|(_, sources)| {
            !sources.lines().map(str::trim_start).any(|line| {
                !line.starts_with("//") && line.starts_with("impl") && line.contains("Machine for ")
            })
        })
        .map(|(dir, _)| {
            format!(
                "{dir} has no `impl … Machine for` in its src/: every core implements \
                 sansio_core::Machine, the vocabulary all cores share"
            )
        })
        .collect()
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

/// How the book recognises the page that walks through an exercise's reference solution: its
/// file name ends with this (`patterns/circuit-breaker-solution.md`). Only such a page may
/// include code from a graded reference file.
pub const SOLUTION_PAGE_SUFFIX: &str = "-solution.md";

/// Whether the markdown file at `path` is a solution page.
fn is_solution_page(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().ends_with(SOLUTION_PAGE_SUFFIX))
}

/// One book page as the solution-page check sees it: its path relative to the repository
/// root (`book/src/patterns/saga.md`) and its markdown.
struct BookPage {
    path: PathBuf,
    text: String,
}

/// The exercise's answer stays on its solution page: reads every `labs/*/grading.toml` and
/// every page of `book/src`, then applies [`answers_outside_solution_pages`].
fn answers_stay_on_solution_pages(root: &Path) -> Result<Vec<String>> {
    let mut graded = BTreeMap::new();
    let mut problems = Vec::new();
    for manifest in grading_manifests(root)? {
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let origin = relative(root, &manifest);
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {origin}"))?;
        for file in reference_files(&table) {
            match std::fs::read_to_string(root.join(&file)) {
                Ok(source) => {
                    graded.insert(PathBuf::from(file), source);
                }
                Err(error) => problems.push(format!(
                    "{origin}: lists {file} in reference_files, which cannot be read: {error}"
                )),
            }
        }
        problems.extend(pointers_to_solution_pages(&origin, &table));
    }
    let mut pages = Vec::new();
    for entry in WalkDir::new(root.join("book/src"))
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
    {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "md") {
            continue;
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        pages.push(BookPage {
            path: PathBuf::from(relative(root, path)),
            text,
        });
    }
    problems.extend(answers_outside_solution_pages(&pages, &graded));
    Ok(problems)
}

/// `labs/<lab>/grading.toml` for every lab that has one, sorted.
fn grading_manifests(root: &Path) -> Result<Vec<PathBuf>> {
    let labs = root.join("labs");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&labs).with_context(|| format!("reading {}", labs.display()))? {
        let manifest = entry?.path().join("grading.toml");
        if manifest.is_file() {
            found.push(manifest);
        }
    }
    found.sort();
    Ok(found)
}

/// A manifest's `reference_files`, as written (relative to the repository root).
fn reference_files(manifest: &toml::Table) -> Vec<String> {
    manifest
        .get("reference_files")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Every `[[test]]` whose `pointer` sends the learner to a solution page: the hints lead to
/// the chapter that teaches the design, never to the answer.
fn pointers_to_solution_pages(origin: &str, manifest: &toml::Table) -> Vec<String> {
    let solution_html = SOLUTION_PAGE_SUFFIX.replace(".md", ".html");
    manifest
        .get("test")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|test| {
            let pointer = test.get("pointer")?.as_str()?;
            let page = pointer.split('#').next().unwrap_or(pointer);
            (page.ends_with(&solution_html) || page.ends_with(SOLUTION_PAGE_SUFFIX)).then(|| {
                let id = test.get("id").and_then(toml::Value::as_str).unwrap_or("?");
                format!(
                    "{origin}: {id}'s pointer {pointer:?} leads to a solution page; point it at \
                     the chapter section that explains what the test needs"
                )
            })
        })
        .collect()
}

/// The problems with `pages` (paths relative to the repository root): a page that is not a
/// solution page includes something from a file in `graded` (the labs' `reference_files`,
/// with their source), pastes lines of one into a code block, or includes a solution page
/// (which would show the solution's code on that page).
fn answers_outside_solution_pages(
    pages: &[BookPage],
    graded: &BTreeMap<PathBuf, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let pasted = graded
        .iter()
        .map(|(path, source)| (path, code_runs(reference_code(source))))
        .collect::<Vec<_>>();
    for page in pages.iter().filter(|page| !is_solution_page(&page.path)) {
        let dir = page.path.parent().unwrap_or(Path::new(""));
        for block in fenced_blocks(&page.text) {
            if let Some((line, path)) = pasted
                .iter()
                .find_map(|(path, runs)| Some((first_paste(&block, runs)?, path)))
            {
                problems.push(format!(
                    "{}:{line}: a code block repeats lines of {}, a graded reference file; \
                     explain the design instead, and show the code on the lab's solution page",
                    page.path.display(),
                    path.display()
                ));
            }
        }
        for include in includes(&page.text) {
            let target = lexically_normal(&dir.join(include.file));
            let at = format!("{}:{}", page.path.display(), include.line);
            if graded.contains_key(&target) {
                problems.push(format!(
                    "{at}: includes {}{} from {}, a graded reference file: a learner would paste \
                     it. Teach it with prose, diagrams, the public API and the graded tests, and \
                     walk through the code on the lab's solution page (a page whose file name \
                     ends in {SOLUTION_PAGE_SUFFIX})",
                    include.anchor.map_or("all", |_| "anchor `"),
                    include.anchor.map_or(String::new(), |a| format!("{a}`")),
                    target.display()
                ));
            } else if is_solution_page(&target) {
                problems.push(format!(
                    "{at}: includes the solution page {}; link to it instead, so its code stays \
                     on its own page",
                    target.display()
                ));
            }
        }
    }
    problems
}

/// How many consecutive lines of a graded file make a paste: one line may be a fragment the
/// chapter quotes on purpose (a formula, a signature), three are a body.
const PASTED_LINES: usize = 3;

/// The part of a graded file a learner would paste: everything before its unit tests.
fn reference_code(source: &str) -> &str {
    source.split("#[cfg(test)]").next().unwrap_or(source)
}

/// Whether a code line says enough to identify a paste: not blank, not a comment, not a lone
/// brace or keyword.
fn substantive(line: &str) -> Option<&str> {
    let line = line.trim();
    (line.len() >= 12 && !line.starts_with("//")).then_some(line)
}

/// Every run of [`PASTED_LINES`] consecutive substantive lines of `code`, joined by newlines.
fn code_runs(code: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = code.lines().filter_map(substantive).collect();
    lines
        .windows(PASTED_LINES)
        .map(|window| window.join("\n"))
        .collect()
}

/// The substantive lines of each fenced code block of a markdown page, with their line numbers.
fn fenced_blocks(text: &str) -> Vec<Vec<(usize, &str)>> {
    let mut blocks = Vec::new();
    let mut block: Option<Vec<(usize, &str)>> = None;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            match block.take() {
                Some(lines) => blocks.push(lines),
                None => block = Some(Vec::new()),
            }
        } else if let Some(lines) = block.as_mut()
            && let Some(code) = substantive(line)
        {
            lines.push((index + 1, code));
        }
    }
    blocks
}

/// Where `block` first repeats [`PASTED_LINES`] consecutive lines found in `runs`: the page's
/// line number.
fn first_paste(block: &[(usize, &str)], runs: &BTreeSet<String>) -> Option<usize> {
    block.windows(PASTED_LINES).find_map(|window| {
        let joined: Vec<&str> = window.iter().map(|(_, line)| *line).collect();
        runs.contains(&joined.join("\n")).then_some(window[0].0)
    })
}

/// One `{{#include …}}` (or `{{#rustdoc_include …}}`) of a markdown page.
struct Include<'a> {
    /// 1-based line of the page.
    line: usize,
    /// The included file, relative to the page's folder.
    file: &'a str,
    /// What follows the first `:`: an anchor name or a line range.
    anchor: Option<&'a str>,
}

/// Every include of `text`, in order.
fn includes(text: &str) -> Vec<Include<'_>> {
    let mut found = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{#") {
            let after = &rest[start + "{{#".len()..];
            let Some(end) = after.find("}}") else { break };
            let directive = &after[..end];
            rest = &after[end..];
            let Some(spec) = directive
                .strip_prefix("include ")
                .or_else(|| directive.strip_prefix("rustdoc_include "))
            else {
                continue;
            };
            let spec = spec.trim();
            let (file, anchor) = match spec.split_once(':') {
                Some((f, a)) => (f, Some(a)),
                None => (spec, None),
            };
            found.push(Include {
                line: line_no + 1,
                file,
                anchor,
            });
        }
    }
    found
}

/// `path` with `.` and `..` resolved without touching the file system
/// (`book/src/patterns/../../../labs/x.rs` → `labs/x.rs`).
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(path: &str, text: &str) -> BookPage {
        BookPage {
            path: PathBuf::from(path),
            text: text.to_owned(),
        }
    }

    /// A graded file whose body a chapter could paste.
    const CIRCUIT: &str = "//! The graded part.\n\
        fn verdict(&self, counts: WindowSnapshot, minimum: u32) -> Option<TransitionReason> {\n\
            if counts.calls < minimum {\n\
                return None;\n\
            }\n\
            let failure_rate = counts.failure_rate();\n\
            if failure_rate >= self.config.failure_rate_threshold {\n\
                return Some(TransitionReason::FailureRateExceeded { rate: failure_rate });\n\
            }\n\
            None\n\
        }\n\
        #[cfg(test)]\n\
        mod tests {\n\
            assert_eq!(normalize_path(\"/a\"), Ok(String::from(\"/a\")));\n\
            assert_eq!(normalize_path(\"/b\"), Ok(String::from(\"/b\")));\n\
            assert_eq!(normalize_path(\"/c\"), Ok(String::from(\"/c\")));\n\
        }\n";

    #[test]
    fn a_crate_depending_on_a_lab_demo_is_refused() {
        let dep = |name: &str, path: &str, kind: Option<&str>| serde_json::json!({ "name": name, "path": path, "kind": kind });
        let meta = serde_json::json!({
            "workspace_root": "/w",
            "packages": [
                { "name": "lab-gateway", "dependencies": [
                    dep("lab-breaker", "/w/labs/breaker", None),
                    dep("breaker-tower", "/w/labs/breaker/tower", None),
                    dep("lab-http", "/w/labs/lab-http", None),
                    dep("tokio", "", None),
                ] },
                { "name": "book-tests", "dependencies": [
                    dep("lab-saga", "/w/labs/saga", Some("dev")),
                ] },
            ],
        });
        let problems = dependencies_on_lab_demos(&meta);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("lab-gateway depends on lab-breaker, a lab's demo crate"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_lab_demo_without_the_runtime_is_refused() {
        let meta = serde_json::json!({
            "workspace_root": "/w",
            "packages": [
                { "name": "lab-saga", "manifest_path": "/w/labs/saga/Cargo.toml", "dependencies": [
                    { "name": "lab-runtime", "path": "/w/labs/lab-runtime", "kind": null },
                ] },
                { "name": "lab-breaker", "manifest_path": "/w/labs/breaker/Cargo.toml", "dependencies": [
                    { "name": "lab-runtime", "path": "/w/labs/lab-runtime", "kind": "dev" },
                ] },
                { "name": "breaker-tower", "manifest_path": "/w/labs/breaker/tower/Cargo.toml", "dependencies": [] },
                { "name": "lab-http", "manifest_path": "/w/labs/lab-http/Cargo.toml", "dependencies": [] },
            ],
        });
        let problems = lab_demos_without_the_runtime(&meta);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("lab-breaker does not depend on lab-runtime"),
            "{problems:?}"
        );
    }

    fn graded() -> BTreeMap<PathBuf, String> {
        BTreeMap::from([(
            PathBuf::from("labs/breaker/core/src/circuit.rs"),
            CIRCUIT.to_owned(),
        )])
    }

    #[test]
    fn a_chapter_including_a_graded_anchor_is_refused() {
        let pages = [page(
            "book/src/patterns/circuit-breaker-core.md",
            "intro\n```rust\n{{#include ../../../labs/breaker/core/src/circuit.rs:record}}\n```\n",
        )];
        let problems = answers_outside_solution_pages(&pages, &graded());
        assert_eq!(
            problems.len(),
            1,
            "one include of a graded anchor: {problems:?}"
        );
        assert!(
            problems[0].starts_with(
                "book/src/patterns/circuit-breaker-core.md:3: includes anchor `record`"
            ),
            "the problem names the page, the line and the anchor: {problems:?}"
        );
    }

    #[test]
    fn a_chapter_including_a_graded_file_by_any_spelling_is_refused() {
        let pages = [page(
            "book/src/patterns/circuit-breaker.md",
            "{{#rustdoc_include ../../../labs/breaker/core/./src/circuit.rs:verdict}}\n\
             {{#include ../../../labs/breaker/core/src/circuit.rs}}\n",
        )];
        assert_eq!(
            answers_outside_solution_pages(&pages, &graded()).len(),
            2,
            "a rustdoc_include, a `./` and a whole-file include are all includes of the graded file"
        );
    }

    #[test]
    fn a_solution_page_may_include_a_graded_anchor() {
        let pages = [page(
            "book/src/patterns/circuit-breaker-solution.md",
            "{{#include ../../../labs/breaker/core/src/circuit.rs:record}}\n",
        )];
        assert_eq!(
            answers_outside_solution_pages(&pages, &graded()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_chapter_may_include_the_graded_tests_and_the_types_around_the_graded_file() {
        let pages = [page(
            "book/src/patterns/circuit-breaker-core.md",
            "{{#include ../../../labs/breaker/core/tests/graded.rs:stale_permit_test}}\n\
             {{#include ../../../labs/breaker/core/src/error.rs:rejected}}\n\
             {{#include circuit-breaker-lab.md}}\n",
        )];
        assert_eq!(
            answers_outside_solution_pages(&pages, &graded()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_chapter_including_a_solution_page_is_refused() {
        let pages = [page(
            "book/src/patterns/saga.md",
            "{{#include saga-solution.md}}\n",
        )];
        let problems = answers_outside_solution_pages(&pages, &graded());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("includes the solution page"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_chapter_pasting_a_graded_body_is_refused() {
        let pages = [page(
            "book/src/patterns/circuit-breaker-core.md",
            "The verdict:\n\n```rust\n\
             if counts.calls < minimum {\n\
                 return None;\n\
             }\n\
             let failure_rate = counts.failure_rate();\n\
             if failure_rate >= self.config.failure_rate_threshold {\n\
             ```\n",
        )];
        let problems = answers_outside_solution_pages(&pages, &graded());
        assert_eq!(problems.len(), 1, "one pasted block: {problems:?}");
        assert!(
            problems[0].starts_with("book/src/patterns/circuit-breaker-core.md:4: a code block repeats lines of labs/breaker/core/src/circuit.rs"),
            "the problem names the page, the line and the graded file: {problems:?}"
        );
    }

    #[test]
    fn a_chapter_may_quote_one_line_or_the_unit_tests_of_a_graded_file() {
        let pages = [page(
            "book/src/patterns/circuit-breaker-core.md",
            "```rust\n\
             let failure_rate = counts.failure_rate();\n\
             ```\n\
             \n\
             ```rust\n\
             assert_eq!(normalize_path(\"/a\"), Ok(String::from(\"/a\")));\n\
             assert_eq!(normalize_path(\"/b\"), Ok(String::from(\"/b\")));\n\
             assert_eq!(normalize_path(\"/c\"), Ok(String::from(\"/c\")));\n\
             ```\n\
             let failure_rate = counts.failure_rate();\n\
             if failure_rate >= self.config.failure_rate_threshold {\n\
                 return Some(TransitionReason::FailureRateExceeded { rate: failure_rate });\n",
        )];
        assert_eq!(
            answers_outside_solution_pages(&pages, &graded()),
            Vec::<String>::new(),
            "a one-line fragment, the file's unit tests and prose outside code blocks are no paste"
        );
    }

    #[test]
    fn a_core_without_a_machine_impl_is_refused() {
        let cores = BTreeMap::from([
            (
                "labs/breaker/core".to_owned(),
                "//! The breaker.\nimpl Machine for CircuitBreaker {\n".to_owned(),
            ),
            (
                "labs/gateway/core".to_owned(),
                "//! The gateway.\nimpl sansio_core::Machine for RateLimiter {\n".to_owned(),
            ),
            (
                "labs/tracing/core".to_owned(),
                "//! A core that only says it would:\n// impl Machine for Span\n\
                 /// impl Machine for Span\nfn handle_input() {}\n"
                    .to_owned(),
            ),
        ]);
        let problems = cores_without_a_machine(&cores);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("labs/tracing/core has no `impl … Machine for`"),
            "the problem names the crate; comments do not count: {problems:?}"
        );
    }

    #[test]
    fn a_pointer_to_a_solution_page_is_refused() {
        let manifest: toml::Table = toml::from_str(
            r#"
            reference_files = ["labs/saga/core/src/decide.rs"]
            [[test]]
            id = "saga-01"
            pointer = "patterns/saga.html#the-decision-function"
            [[test]]
            id = "saga-02"
            pointer = "patterns/saga-solution.html#next_action"
            "#,
        )
        .expect("valid TOML");
        let problems = pointers_to_solution_pages("labs/saga/grading.toml", &manifest);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("saga-02"), "{problems:?}");
        assert_eq!(reference_files(&manifest), ["labs/saga/core/src/decide.rs"]);
    }

    #[test]
    fn a_doc_comment_that_only_restates_a_name_is_refused() {
        let source = "//! The steps of a saga, for this test.\n\
            pub struct Step {\n\
                /// The step.\n\
                pub index: usize,\n\
                /// When.\n\
                pub at: u64,\n\
                //! Inner.\n\
                /// The step's index in the definition, from 0.\n\
                pub again: usize,\n\
                /// Two hosts: the gateway and the upstream might each pick\n\
                /// another.\n\
                pub host: String,\n\
                #[allow(missing_docs)]\n\
                pub rest: u8,\n\
                // The plain comment.\n\
            }\n";
        assert_eq!(
            name_only_comment_lines(source),
            [3, 5, 7],
            "refused: `/// The step.`, `/// When.`, `//! Inner.`; accepted: a comment that says \
             what the item is for, the last line of a longer comment, an allow, a plain comment"
        );
    }
}
