//! `cargo xtask new-lab NAME --chapter PAGE`: lays out a new lab in the shape every lab has.
//!
//! The skeleton compiles and is graded from the first minute: a core crate with a [`Machine`]
//! (a one-shot timer, to be replaced by the lab's pattern), its graded module and the learner's
//! copy with a `todo!()`, one graded test that fails on the untouched exercise, the grading
//! manifest, a service crate with a router on `lab-http` and a narrated demo, an integration test,
//! the chapter's fragment (run the lab, exercise, in production), a solution page listed in
//! `SUMMARY.md` right under the chapter, and the accepted-survivors list of a first mutation run
//! (`cargo xtask mutants NAME`, which new-lab runs last). ARCHITECTURE.md's "How to add a lab" says what to write
//! next and in which order.
//!
//! [`Machine`]: https://docs.rs/sansio-core

mod templates;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::step;

/// What the new lab is called, in every spelling the files need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `event-sourcing`: the folder under `labs/`, the grader's lab name, the book's file names.
    pub kebab: String,
    /// `event_sourcing`: Rust paths (`event_sourcing_core`).
    pub snake: String,
    /// `Event sourcing`: headings.
    pub title: String,
    /// `event-sourcing-core`: the core crate, unless `--core` names it otherwise (a lab called
    /// `tracing` cannot have a core called `tracing-core`, a crate the workspace already uses).
    pub core: String,
}

impl Names {
    /// Checks `name` (lower-case ASCII words joined by `-`) and spells it every way.
    pub fn parse(name: &str) -> Result<Names> {
        let valid = !name.is_empty()
            && name.split('-').all(|word| {
                !word.is_empty()
                    && word.starts_with(|c: char| c.is_ascii_lowercase())
                    && word
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
        if !valid {
            bail!(
                "`{name}` is not a lab name: use lower-case words joined by `-`, such as `discovery` or `event-sourcing`"
            );
        }
        let mut title = name.replace('-', " ");
        title[..1].make_ascii_uppercase();
        Ok(Names {
            kebab: name.to_owned(),
            snake: name.replace('-', "_"),
            title,
            core: format!("{name}-core"),
        })
    }

    /// The same names with the core crate called `core` (lower-case words joined by `-`,
    /// ending in `-core`, which is how tidy finds the crates that must implement `Machine`).
    pub fn with_core(self, core: &str) -> Result<Names> {
        let words = Names::parse(core)?;
        if !core.ends_with("-core") {
            bail!(
                "`{core}` is not a core crate's name: end it in `-core`, such as `trace-context-core`"
            );
        }
        Ok(Names {
            core: words.kebab,
            ..self
        })
    }

    /// The service crate, `lab-<name>`.
    pub fn lab_crate(&self) -> String {
        format!("lab-{}", self.kebab)
    }

    /// The core crate, `<name>-core`.
    pub fn core_crate(&self) -> String {
        self.core.clone()
    }

    /// The core crate as a Rust path, `event_sourcing_core`.
    pub fn core_snake(&self) -> String {
        self.core.replace('-', "_")
    }
}

/// One file of the skeleton: where it goes (relative to the workspace root) and what it holds.
#[derive(Debug)]
pub struct File {
    /// Path relative to the workspace root.
    pub path: PathBuf,
    /// The file's contents.
    pub contents: String,
}

/// Everything `new-lab` writes, for a chapter page `chapter` (relative to `book/src`, such as
/// `patterns/service-discovery.md`).
pub fn skeleton(names: &Names, chapter: &str) -> Vec<File> {
    templates::files(names, chapter)
        .into_iter()
        .map(|(path, contents)| File {
            path: PathBuf::from(path),
            contents,
        })
        .collect()
}

/// Crate names already taken: every package in `Cargo.lock` (the workspace's own and every
/// dependency), since a lab crate named like one of them (`tracing-core`) would shadow it.
fn taken_crate_names(root: &Path) -> Result<Vec<String>> {
    let lock =
        std::fs::read_to_string(root.join("Cargo.lock")).context("cannot read Cargo.lock")?;
    Ok(lock
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .collect())
}

/// Adds the two crates to the workspace's members and `[workspace.dependencies]`.
fn add_to_workspace(manifest: &str, names: &Names) -> Result<String> {
    let members_end = manifest
        .find("\n]")
        .filter(|&at| manifest[..at].contains("members = ["))
        .context("Cargo.toml has no `members = [ … ]` list")?;
    let mut text = manifest.to_owned();
    text.insert_str(
        members_end,
        &format!("\n    \"labs/{0}/core\",\n    \"labs/{0}\",", names.kebab),
    );
    let anchor = "sansio-core = { path = \"labs/sansio-core\" }\n";
    let at = text
        .find(anchor)
        .context("Cargo.toml's [workspace.dependencies] has no sansio-core line")?;
    text.insert_str(
        at,
        &format!(
            "{} = {{ path = \"labs/{}/core\" }}\n",
            names.core_crate(),
            names.kebab
        ),
    );
    Ok(text)
}

/// Lists the solution page in `SUMMARY.md` right under the chapter's own line.
fn add_to_summary(summary: &str, names: &Names, chapter: &str) -> Result<String> {
    let link = format!("]({chapter})");
    let mut lines: Vec<String> = summary.lines().map(str::to_owned).collect();
    let index = lines
        .iter()
        .position(|line| line.contains(&link))
        .with_context(|| format!("SUMMARY.md does not list {chapter}"))?;
    let indent: String = lines[index]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let dir = Path::new(chapter)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let page = if dir.is_empty() {
        format!("{}-solution.md", names.kebab)
    } else {
        format!("{dir}/{}-solution.md", names.kebab)
    };
    lines.insert(
        index + 1,
        format!(
            "{indent}  - [Solution: {}]({page})",
            names.title.to_lowercase()
        ),
    );
    Ok(lines.join("\n") + "\n")
}

/// Writes the skeleton for `name` into the workspace at `root`, beside the chapter `chapter`.
pub fn run(root: &Path, name: &str, core: Option<&str>, chapter: &Path) -> Result<()> {
    let names = match core {
        Some(core) => Names::parse(name)?.with_core(core)?,
        None => Names::parse(name)?,
    };
    let chapter = chapter
        .strip_prefix("book/src")
        .unwrap_or(chapter)
        .to_string_lossy()
        .trim_start_matches('/')
        .to_owned();
    let chapter_file = root.join("book/src").join(&chapter);
    if !chapter_file.is_file() {
        bail!(
            "{} is not a page of the book: pass the chapter the lab belongs to, such as book/src/patterns/service-discovery.md",
            chapter_file.display()
        );
    }
    if root.join("labs").join(&names.kebab).exists() {
        bail!("labs/{} exists already", names.kebab);
    }
    let taken = taken_crate_names(root)?;
    for krate in [names.lab_crate(), names.core_crate()] {
        if taken.contains(&krate) {
            bail!(
                "a crate named `{krate}` is already in Cargo.lock: name the lab otherwise (for example `distributed-{}`), or its core with `--core`",
                names.kebab
            );
        }
    }
    let files = skeleton(&names, &chapter);
    for file in &files {
        let path = root.join(&file.path);
        if path.exists() {
            bail!("{} exists already", file.path.display());
        }
    }
    let manifest_path = root.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)?;
    let summary_path = root.join("book/src/SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path)?;
    let manifest = add_to_workspace(&manifest, &names)?;
    let summary = add_to_summary(&summary, &names, &chapter)?;
    for file in &files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    std::fs::write(&manifest_path, manifest)?;
    std::fs::write(&summary_path, summary)?;
    let mut chapter_text = std::fs::read_to_string(&chapter_file)?;
    if !chapter_text.ends_with('\n') {
        chapter_text.push('\n');
    }
    chapter_text.push_str(&format!("\n{{{{#include {}-lab.md}}}}\n", names.kebab));
    std::fs::write(&chapter_file, chapter_text)?;
    step::note(&format!(
        "wrote labs/{0}/ ({1} files), the chapter's fragment and solution page",
        names.kebab,
        files.len()
    ));
    // The templates are written for reading; rustfmt decides the layout, before the graded
    // module's hash is taken below.
    let mut fmt = std::process::Command::new(crate::tools::cargo());
    fmt.args(["fmt", "-p", &names.core_crate(), "-p", &names.lab_crate()])
        .current_dir(root);
    step::run_checked(&mut fmt, "cargo fmt of the new lab")?;
    // The accepted-survivors list comes from a real mutation run, even for the placeholder:
    // `cargo xtask test` trusts the list, so nothing but cargo-mutants may write it.
    let mutation_run = crate::mutants::run(
        root,
        &crate::mutants::MutantsArgs {
            lab: Some(names.kebab.clone()),
            check: false,
            jobs: 1,
            timeout: None,
        },
    );
    if let Err(error) = &mutation_run {
        step::note(&format!(
            "the mutation run did not finish ({error:#}): run `cargo xtask mutants {}` before committing",
            names.kebab
        ));
    }
    step::note("next:");
    for line in templates::next_steps(&names) {
        eprintln!("    {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
