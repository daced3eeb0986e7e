//! Building the playground crate to WebAssembly and placing it where the book picks it up.
//!
//! Two routes to a wasm32 standard library, tried in order:
//! 1. rustup's `wasm32-unknown-unknown` target (the normal route on a reader's machine);
//! 2. offline, from Debian: a wasm-capable `rustc` plus the std sources, building std with
//!    `-Zbuild-std` (see `shared/notes/wasm-toolchain.md`). It uses its own target directory,
//!    because the Debian compiler is another version than rustup's and would otherwise make each
//!    toolchain rebuild what the other built.
//!
//! The output of `wasm-bindgen --target web` goes to `book/src/playground/pkg/` (ignored by git),
//! which mdBook copies into the built book like any other static file, so `mdbook serve` sees it too.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{step, tools};

const TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile for WASM (size-optimised, LTO): see `[profile.wasm]` in Cargo.toml.
const PROFILE: &str = "wasm";
/// Set to `debian` to force the offline route (used to test it on machines where rustup works).
const ROUTE_ENV: &str = "MIM_WASM_ROUTE";

/// Which compiler builds the WASM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The toolchain running xtask, with its wasm32 std installed.
    Rustup,
    /// Debian's `rustc-web` building std from source.
    Debian,
}

/// Make sure some route to a wasm32 std exists, installing one if needed; returns the route.
pub fn ensure_toolchain() -> Result<Route> {
    if std::env::var(ROUTE_ENV).is_ok_and(|v| v == "debian") {
        return ensure_debian();
    }
    if host_has_wasm_std() {
        return Ok(Route::Rustup);
    }
    if step::output_of("rustup", &["--version"]).is_some() {
        let added = step::step("add the wasm32 target (rustup target add)", || {
            let mut cmd = Command::new("rustup");
            cmd.args(["target", "add", TARGET]);
            step::run_checked(&mut cmd, "rustup target add wasm32-unknown-unknown")
        });
        if added.is_ok() && host_has_wasm_std() {
            return Ok(Route::Rustup);
        }
        step::note("rustup could not add the target; falling back to Debian's offline toolchain");
    }
    ensure_debian()
}

fn host_has_wasm_std() -> bool {
    step::output_of("rustc", &["--print", "target-libdir", "--target", TARGET])
        .map(|dir| PathBuf::from(dir.trim()))
        .is_some_and(|dir| {
            dir.is_dir() && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
        })
}

fn ensure_debian() -> Result<Route> {
    let missing: Vec<&str> = tools::APT_WASM_OFFLINE
        .iter()
        .copied()
        .filter(|p| !tools::apt_has(p))
        .collect();
    if !missing.is_empty() {
        step::step("install Debian's offline WASM toolchain (apt)", || tools::apt_install(&missing))
            .context("no route to a wasm32 standard library: `rustup target add wasm32-unknown-unknown` failed and Debian's packages could not be installed")?;
    }
    Ok(Route::Debian)
}

/// Compile the playground to WASM (installing a wasm32 route first if needed); returns the module.
///
/// This needs no tool that `cargo install` provides, so the book's build runs it while the tools
/// are still being installed.
pub fn compile_playground(root: &Path, route: Route) -> Result<PathBuf> {
    Ok(step::step(
        &format!("build the playground to WebAssembly ({route:?} route)"),
        || compile(root, route),
    )?
    .0)
}

/// Run wasm-bindgen (and wasm-opt when available) on the compiled module, into the book.
pub fn package(root: &Path, wasm: &Path) -> Result<()> {
    let pkg = root.join("book/src/playground/pkg");
    let bindgen_out = pkg.join("playground_bg.wasm");
    if !(is_newer(&bindgen_out, wasm) && pkg.join("playground.js").exists()) {
        step::step(
            "generate the JS bindings (wasm-bindgen --target web)",
            || {
                let mut cmd = Command::new("wasm-bindgen");
                cmd.args(["--target", "web", "--no-typescript", "--out-dir"])
                    .arg(&pkg)
                    .arg(wasm);
                step::run_checked(&mut cmd, "wasm-bindgen")
            },
        )?;
        optimise(root, &bindgen_out);
    }
    copy_web_assets(root, &pkg)?;
    report_sizes(&pkg);
    Ok(())
}

/// Copy the playground's hand-written JS and CSS (`playground/web/`) next to the bindings.
///
/// Only files whose contents changed are written, so `mdbook serve` does not reload for nothing.
fn copy_web_assets(root: &Path, pkg: &Path) -> Result<()> {
    let web = root.join("playground/web");
    let Ok(entries) = std::fs::read_dir(&web) else {
        return Ok(());
    };
    std::fs::create_dir_all(pkg)?;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let contents =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let target = pkg.join(name);
        if std::fs::read(&target).ok().as_deref() != Some(contents.as_slice()) {
            std::fs::write(&target, contents)
                .with_context(|| format!("writing {}", target.display()))?;
        }
    }
    Ok(())
}

/// Print the size of what a reader downloads: the WASM and every JS/CSS file, raw.
fn report_sizes(pkg: &Path) {
    let Ok(entries) = std::fs::read_dir(pkg) else {
        return;
    };
    let total: u64 = entries
        .flatten()
        .map(|entry| entry.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    step::note(&format!(
        "playground assets: {:.1} KiB before compression",
        total as f64 / 1024.0
    ));
}

/// Run the playground's wasm-bindgen-test tests under Node (`wasm-bindgen-test-runner`).
pub fn test(root: &Path) -> Result<()> {
    let route = ensure_toolchain()?;
    if step::output_of("node", &["--version"]).is_none() {
        step::step("install Node.js (apt) for wasm-bindgen-test", || {
            tools::apt_install(&["nodejs"])
        })?;
    }
    let (mut cmd, _) = cargo_for(root, route, "test");
    cmd.env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
        "wasm-bindgen-test-runner",
    )
    .args(["--target", TARGET, "-p", "playground"]);
    step::run_checked(&mut cmd, "the playground's wasm-bindgen tests (under Node)")
}

/// A cargo command (`build`, `test`) for the wasm32 target by the given route, and its target dir.
fn cargo_for(root: &Path, route: Route, subcommand: &str) -> (Command, PathBuf) {
    match route {
        Route::Rustup => {
            let mut cmd = Command::new(tools::cargo());
            cmd.arg(subcommand);
            (cmd, root.join("target"))
        }
        Route::Debian => {
            let target_dir = root.join("target/wasm");
            let mut cmd = Command::new("/usr/bin/cargo");
            cmd.env("RUSTC", "/usr/bin/rustc")
                // Only -Zbuild-std needs the bootstrap switch; it is scoped to this one command.
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", "wasm-ld-16")
                .env("CARGO_TARGET_DIR", &target_dir)
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("CARGO")
                .args([subcommand, "-Zbuild-std=std,panic_abort"]);
            (cmd, target_dir)
        }
    }
}

fn compile(root: &Path, route: Route) -> Result<PathBuf> {
    let (mut cmd, target_dir) = cargo_for(root, route, "build");
    cmd.args([
        "--quiet",
        "--target",
        TARGET,
        "--profile",
        PROFILE,
        "-p",
        "playground",
    ]);
    step::run_checked(&mut cmd, "the WASM build of the playground")?;
    let wasm = target_dir
        .join(TARGET)
        .join(PROFILE)
        .join("playground.wasm");
    if !wasm.exists() {
        bail!("the WASM build finished but {} is missing", wasm.display());
    }
    Ok(wasm)
}

/// Shrink the module with binaryen's `wasm-opt -Oz`; skipping it only costs size.
fn optimise(root: &Path, wasm: &Path) {
    let Some(wasm_opt) = ensure_wasm_opt(root) else {
        step::note("wasm-opt unavailable (needs npm): the WASM is left unoptimised");
        return;
    };
    let status = Command::new(wasm_opt)
        .args([
            "-Oz",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
            "-o",
        ])
        .arg(wasm)
        .arg(wasm)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        step::note("wasm-opt failed: the WASM is left unoptimised (it still works)");
    }
}

/// The pinned binaryen from npm, installed under `target/tools/binaryen` on first use.
fn ensure_wasm_opt(root: &Path) -> Option<PathBuf> {
    let prefix = root.join("target/tools/binaryen");
    let binary = prefix.join("node_modules/.bin/wasm-opt");
    let wanted = format!(
        "version {}",
        tools::NPM_BINARYEN.split('.').next().unwrap_or("")
    );
    let current = step::output_of(&binary.to_string_lossy(), &["--version"]);
    if current.is_some_and(|v| v.contains(&wanted)) {
        return Some(binary);
    }
    step::output_of("npm", &["--version"])?;
    let installed = step::step(
        &format!("install wasm-opt (npm binaryen@{})", tools::NPM_BINARYEN),
        || {
            let mut cmd = Command::new("npm");
            cmd.args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&prefix)
                .arg(format!("binaryen@{}", tools::NPM_BINARYEN));
            step::run_checked(&mut cmd, "npm install binaryen")
        },
    );
    installed.ok().map(|_| binary)
}

/// Whether `output` exists and was modified after `input`.
fn is_newer(output: &Path, input: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(output), modified(input)), (Some(o), Some(i)) if o > i)
}
