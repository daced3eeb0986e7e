//! Building and serving the book: tools, Mermaid's scripts, the playground's WASM, then mdBook.
//!
//! mdBook only warns when a preprocessor is missing, which would silently ship a book whose
//! diagrams are raw text; we install mdbook-mermaid ourselves and the browser tests count the
//! rendered diagrams, so that cannot happen unnoticed.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{step, tools, wasm};

/// Mermaid's runtime and its initialiser, written by `mdbook-mermaid install` (ignored by git:
/// they come from the pinned mdbook-mermaid, so the version lives in one place).
const MERMAID_FILES: &[&str] = &["mermaid.min.js", "mermaid-init.js"];

/// Everything before mdBook runs: tools, Mermaid's scripts, the playground's WASM.
///
/// On a fresh machine the pinned tools take most of the time (`cargo install` compiles them), so
/// the playground's WASM build runs beside their installation instead of after it.
fn prepare(root: &Path) -> Result<()> {
    let route = wasm::ensure_toolchain()?;
    let (installed, compiled) = std::thread::scope(|scope| {
        let tools = scope.spawn(tools::ensure_book_tools);
        let compiled = wasm::compile_playground(root, route);
        let installed = tools
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("installing the book's tools panicked")));
        (installed, compiled)
    });
    installed?;
    let wasm = compiled?;
    install_mermaid_assets(root)?;
    wasm::package(root, &wasm)
}

/// Build the book into `target/book`.
pub fn build(root: &Path) -> Result<()> {
    prepare(root)?;
    step::step("build the book (mdbook build)", || {
        let output = Command::new("mdbook")
            .arg("build")
            .current_dir(root)
            .output()
            .context("could not run mdbook")?;
        let log = String::from_utf8_lossy(&output.stderr);
        // mdBook reports a missing preprocessor or include as a warning and still succeeds;
        // for us either is a broken book.
        let problems: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN") || l.contains("[WARN]"))
            .collect();
        if !output.status.success() || !problems.is_empty() {
            eprintln!("{log}");
            bail!(
                "mdbook build reported problems:\n  {}",
                if problems.is_empty() {
                    "(see the log above)".to_string()
                } else {
                    problems.join("\n  ")
                }
            );
        }
        Ok(())
    })?;
    step::note(&format!(
        "the book is in {}",
        root.join("target/book").display()
    ));
    Ok(())
}

/// Build, then serve with live reload until interrupted.
pub fn serve(root: &Path, port: u16) -> Result<()> {
    build(root)?;
    eprintln!(
        "\nServing the book on http://127.0.0.1:{port} (live reload on changes in book/; \
         re-run `cargo xtask serve` after changing the playground's Rust). Ctrl-C stops."
    );
    let mut cmd = Command::new("mdbook");
    cmd.args([
        "serve",
        "--hostname",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ])
    .current_dir(root);
    step::run_checked(&mut cmd, "mdbook serve").context(format!(
        "is port {port} already in use? choose another with `cargo xtask serve --port N`"
    ))
}

/// Copy Mermaid's scripts from the pinned mdbook-mermaid into `book/theme/` when missing or stale.
fn install_mermaid_assets(root: &Path) -> Result<()> {
    let theme = root.join("book/theme");
    let stamp = theme.join(".mermaid-version");
    let current = std::fs::read_to_string(&stamp).unwrap_or_default();
    let present = MERMAID_FILES.iter().all(|f| theme.join(f).exists());
    if present && current.trim() == tools::MDBOOK_MERMAID {
        return Ok(());
    }
    step::step("install Mermaid's scripts (mdbook-mermaid install)", || {
        // mdbook-mermaid install also edits the book.toml it finds; run it in a scratch folder
        // so our book.toml stays as written.
        let scratch = root.join("target/mermaid-install");
        std::fs::create_dir_all(&scratch)?;
        std::fs::write(scratch.join("book.toml"), "[book]\ntitle = \"scratch\"\n")?;
        // It prints a usage example on stdout; only its errors matter here.
        let mut cmd = Command::new("mdbook-mermaid");
        cmd.arg("install")
            .arg(&scratch)
            .stdout(std::process::Stdio::null());
        step::run_checked(&mut cmd, "mdbook-mermaid install")?;
        std::fs::create_dir_all(&theme)?;
        for file in MERMAID_FILES {
            std::fs::copy(scratch.join(file), theme.join(file))
                .with_context(|| format!("mdbook-mermaid install did not write {file}"))?;
        }
        std::fs::write(&stamp, tools::MDBOOK_MERMAID)?;
        Ok(())
    })?;
    Ok(())
}
