//! The `lab-breaker` binary as a reader runs it: the demo's opening in a pipe (plain text,
//! pinned by a snapshot with its ports normalised, its logs on standard error), and one role started alone from the
//! environment (`LAB_ROLE`, `LAB_PORT`), listening where it was told.
//!
//! The demo runs fast (`--speed 30`, one second of scenario) and nothing here asserts how
//! long anything took; the role is awaited by the line it prints once it listens.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use lab_test_support::{LoggedChild, Transcript, start_listening};

const BIN: &str = env!("CARGO_BIN_EXE_lab-breaker");

/// The variables the binary reads, removed so the caller's shell does not leak in.
const BREAKER_ENV: [&str; 9] = [
    "LAB_ROLE",
    "LAB_PORT",
    "BREAKER_UPSTREAM",
    "BREAKER_RATE",
    "BREAKER_SEED",
    "BREAKER_DURATION",
    "BREAKER_SPEED",
    "NO_COLOR",
    "RUST_LOG",
];

fn lab_breaker() -> Command {
    let mut command = Command::new(BIN);
    for name in BREAKER_ENV {
        command.env_remove(name);
    }
    command
}

#[test]
fn the_demo_in_a_pipe_opens_plainly_with_its_settings() {
    let mut command = lab_breaker();
    command
        .args(["--speed", "30", "--duration", "1", "--no-compare"])
        .env("RUST_LOG", "debug");
    let output = command.output().unwrap();
    let raw = String::from_utf8(output.stdout).unwrap();
    let errors = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{raw}\n{errors}");
    assert!(
        !raw.contains("DEBUG"),
        "logs go to standard error, not into the timeline:\n{raw}"
    );
    assert!(
        errors.contains("DEBUG"),
        "the logs asked for are there:\n{errors}"
    );
    assert!(
        !errors.contains('\u{1b}'),
        "no escape codes in piped logs:\n{errors:?}"
    );
    assert!(
        !raw.contains('\u{1b}'),
        "no escape codes in a pipe:\n{raw:?}"
    );
    let text = Transcript::new(&raw).ports().into_text();
    assert!(text.contains("Summary, with a breaker"), "{text}");
    // Everything up to the timeline's column header is the same every run but the ports.
    let opening = text
        .lines()
        .take_while(|line| !line.trim_start().starts_with("t │"))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("demo_opening", opening);
}

#[test]
fn the_payment_role_listens_on_the_port_the_environment_names() {
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("breaker-payment-role-{}.log", std::process::id()));
    let service = start_listening("the payment role", 500, |port| {
        let mut command = lab_breaker();
        command
            .env("LAB_ROLE", "payment")
            .env("LAB_PORT", port.to_string());
        LoggedChild::spawn(command, log.clone())
    });
    let output = service.child.output();
    assert!(
        output.contains(&format!("payment service on {}", service.base_url())),
        "{output}"
    );
    drop(service);
    let _ = std::fs::remove_file(log);
}
