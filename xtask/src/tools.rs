//! The tools the project installs, at pinned versions, in one place, and how to install them.
//!
//! Every installer here first checks what is already present and does nothing when it matches, so
//! `cargo xtask serve` and `cargo xtask test` are fast on a second run. Cargo tools come from
//! crates.io with `cargo install --version`; system packages come from Debian's apt (as root) or,
//! when apt cannot be used, an error says exactly which command to run.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use anyhow::{Result, bail};

use crate::step;

/// mdBook, the book's builder. 0.5 changed the preprocessor interface, so mdbook-mermaid is
/// pinned to a release built against it.
pub const MDBOOK: &str = "0.5.4";
/// The Mermaid preprocessor for mdBook 0.5 (ships mermaid.js, so the book works offline).
pub const MDBOOK_MERMAID: &str = "0.17.1";
/// wasm-bindgen's CLI must equal the `wasm-bindgen` crate pinned with `=` in Cargo.toml;
/// `cargo xtask tidy` checks that they agree.
pub const WASM_BINDGEN: &str = "0.2.130";

/// Debian packages for the browser tests.
pub const APT_BROWSER: &[&str] = &["chromium", "chromium-driver", "fonts-noto-color-emoji"];
/// Debian packages for the offline WASM route (a wasm-capable rustc and std sources).
pub const APT_WASM_OFFLINE: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "lld-16"];
/// Debian package with the NATS server (JetStream with `-js`) for the broker-backed tests.
pub const APT_NATS: &[&str] = &["nats-server"];
/// Debian package with etcd (3.4), the discovery lab's benchmark peer; `cargo xtask bench
/// discovery` installs it when missing.
pub const APT_ETCD: &[&str] = &["etcd-server"];
/// Binaryen's `wasm-opt` from the npm registry (optional: only makes the WASM smaller).
/// Debian 12's binaryen (108) predates the reference-types output of current rustc and
/// wasm-bindgen and produces a module that fails to instantiate, so we use a current release.
pub const NPM_BINARYEN: &str = "132.0.0";
/// cargo-fuzz, for `cargo xtask fuzz` (not part of `cargo xtask test`).
pub const CARGO_FUZZ: &str = "0.13.1";
/// cargo-mutants, for `cargo xtask mutants` (not part of `cargo xtask test`).
pub const CARGO_MUTANTS: &str = "27.1.0";

/// The cargo that runs us (`cargo xtask` sets `CARGO`), so nested builds use the same toolchain.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// A tool installed with `cargo install`, recognised by its `--version` output.
struct CargoTool {
    binary: &'static str,
    krate: &'static str,
    version: &'static str,
}

const CARGO_TOOLS: &[CargoTool] = &[
    CargoTool {
        binary: "mdbook",
        krate: "mdbook",
        version: MDBOOK,
    },
    CargoTool {
        binary: "mdbook-mermaid",
        krate: "mdbook-mermaid",
        version: MDBOOK_MERMAID,
    },
    CargoTool {
        binary: "wasm-bindgen",
        krate: "wasm-bindgen-cli",
        version: WASM_BINDGEN,
    },
];

/// Install mdbook, mdbook-mermaid and wasm-bindgen-cli at their pinned versions if missing.
///
/// The missing ones are installed by one `cargo install`, so they share a target directory and
/// every dependency they have in common is compiled once.
pub fn ensure_book_tools() -> Result<()> {
    let missing: Vec<&CargoTool> = CARGO_TOOLS
        .iter()
        .filter(|tool| !installed_version_matches(tool))
        .collect();
    install_cargo_tools(&missing, &[])
}

/// `binary` may be a cargo subcommand spelled with its words (`cargo mutants`): some
/// subcommands answer `--version` only when called through cargo.
fn installed_version_matches(tool: &CargoTool) -> bool {
    let mut words = tool.binary.split_whitespace();
    let program = words.next().unwrap_or(tool.binary);
    let args: Vec<&str> = words.chain(["--version"]).collect();
    step::output_of(program, &args).is_some_and(|out| {
        out.split_whitespace()
            .any(|word| word.trim_start_matches('v') == tool.version)
    })
}

fn ensure_cargo_tool(tool: &CargoTool) -> Result<()> {
    ensure_cargo_tool_with(tool, &[])
}

/// Like [`ensure_cargo_tool`], with extra `cargo install` arguments (such as `--locked`).
fn ensure_cargo_tool_with(tool: &CargoTool, install_args: &[&str]) -> Result<()> {
    if installed_version_matches(tool) {
        return Ok(());
    }
    install_cargo_tools(&[tool], install_args)
}

/// Where `cargo install` builds the tools: kept between runs and shared by every tool, so a
/// second tool reuses the dependencies the first one compiled (relative to the workspace root,
/// which xtask makes its working directory).
const TOOLS_TARGET_DIR: &str = "target/tools/cargo";

/// The release profile the tools are built with, as cargo's environment overrides (they take
/// precedence over the tools' own manifests). The tools' speed hardly matters here (mdBook
/// renders the book in about a second either way), their build time does: `opt-level = 1`
/// without LTO compiles in about half the time of a full release build.
const CHEAP_RELEASE_PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1"),
    ("CARGO_PROFILE_RELEASE_LTO", "off"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "0"),
    ("CARGO_PROFILE_RELEASE_INCREMENTAL", "false"),
];

/// `cargo install` the tools in one command, with `install_args` (nothing to do when the list is
/// empty).
fn install_cargo_tools(tools: &[&CargoTool], install_args: &[&str]) -> Result<()> {
    if tools.is_empty() {
        return Ok(());
    }
    let specs: Vec<String> = tools
        .iter()
        .map(|tool| format!("{}@{}", tool.krate, tool.version))
        .collect();
    let listed = specs.join(" ");
    let name = format!("install {listed} (cargo install, a few minutes the first time)");
    step::step(&name, || {
        // The book's tools go without --locked: some exact versions in their lock files are
        // not on every registry mirror, and a fresh resolution builds fine. A tool whose lock
        // file resolves passes --locked in `install_args`.
        let mut cmd = Command::new(cargo());
        cmd.arg("install")
            .args(&specs)
            .args(["--target-dir", TOOLS_TARGET_DIR])
            .args(install_args)
            .envs(CHEAP_RELEASE_PROFILE.iter().copied());
        step::run_checked(&mut cmd, &format!("cargo install {listed}")).map_err(|e| {
            e.context(format!(
                "could not install {listed}; check that crates.io is reachable, or install them \
                 yourself with `cargo install {listed}`"
            ))
        })?;
        for tool in tools {
            if !installed_version_matches(tool) {
                bail!(
                    "installed {} {}, but `{} --version` does not report it: is another {} earlier \
                     on PATH? ($CARGO_HOME/bin must come first)",
                    tool.krate,
                    tool.version,
                    tool.binary,
                    tool.binary
                );
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Install cargo-fuzz at its pinned version if missing.
pub fn ensure_cargo_fuzz() -> Result<()> {
    ensure_cargo_tool(&CargoTool {
        binary: "cargo-fuzz",
        krate: "cargo-fuzz",
        version: CARGO_FUZZ,
    })
}

/// Install cargo-mutants at its pinned version if missing.
pub fn ensure_cargo_mutants() -> Result<()> {
    // Its lock file resolves on crates.io, so it builds exactly as released.
    ensure_cargo_tool_with(
        &CargoTool {
            binary: "cargo mutants",
            krate: "cargo-mutants",
            version: CARGO_MUTANTS,
        },
        &["--locked"],
    )
}

/// Install Chromium, chromedriver and an emoji font (the book is full of emoji) when missing.
pub fn ensure_browser() -> Result<()> {
    let binaries_present =
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists();
    let missing: Vec<&str> = if step::output_of("dpkg-query", &["--version"]).is_some() {
        APT_BROWSER
            .iter()
            .copied()
            .filter(|p| !apt_has(p))
            .collect()
    } else if binaries_present {
        Vec::new()
    } else {
        APT_BROWSER.to_vec()
    };
    if missing.is_empty() {
        return Ok(());
    }
    step::step(
        "install Chromium, chromedriver and an emoji font (apt)",
        || apt_install(&missing),
    )?;
    Ok(())
}

/// Whether this process runs as root, which is when we may call apt-get ourselves.
fn is_root() -> bool {
    step::output_of("id", &["-u"]).is_some_and(|uid| uid.trim() == "0")
}

static APT_UPDATE: Once = Once::new();

/// `apt-get install -y` the packages, running `apt-get update` once per xtask run first.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let wanted = packages.join(" ");
    if !is_root() || step::output_of("apt-get", &["--version"]).is_none() {
        bail!(
            "these system packages are missing: {wanted}\n  install them with: sudo apt-get install -y {wanted}\n  \
             (xtask installs them itself only when it runs as root on a Debian-like system)"
        );
    }
    let mut update_result = Ok(());
    APT_UPDATE.call_once(|| {
        let mut cmd = Command::new("apt-get");
        cmd.args(["update", "-q"]);
        update_result = step::run_checked(&mut cmd, "apt-get update");
    });
    update_result?;
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages);
    step::run_checked(&mut cmd, &format!("apt-get install {wanted}"))
}

/// Whether a Debian package is installed (dpkg knows it in state "install ok installed").
pub fn apt_has(package: &str) -> bool {
    step::output_of("dpkg-query", &["-W", "-f=${Status}", package])
        .is_some_and(|status| status.contains("install ok installed"))
}
