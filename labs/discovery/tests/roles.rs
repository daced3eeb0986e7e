//! The binary's roles as the chapter runs them, each its own process on loopback: a registry
//! (`--role registry`), two user instances that register and heartbeat (`--role user`), and
//! the order service (`--role order`) that finds them through blocking queries. One user
//! process is SIGKILLed; the order role keeps picking it until its TTL runs out, then never.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lab_test_support::{LoggedChild, Services, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_lab-discovery");
/// Pauses of `lab_test_support::wait::PAUSE` (20 ms) a process gets to listen: 20 s.
const LISTEN_TRIES: u32 = 1_000;
/// Pauses the order role gets to show a change: 30 s, several TTLs and calls.
const TRIES: u32 = 1_500;

fn role(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn");
    command
}

fn scratch() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("discovery-roles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// The order role's lines after its first `skip` ones.
fn lines_after(order: &LoggedChild, skip: usize) -> Vec<String> {
    order
        .output()
        .lines()
        .skip(skip)
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_sigkilled_user_process_stops_getting_calls_from_the_order_role_after_its_ttl() {
    let root = scratch();
    let mut services = Services::new(root.clone());
    let registry = services.start("registry", LISTEN_TRIES, |port| {
        role(&["--role", "registry", "--port", &port.to_string()])
    });
    for id in ["user-a", "user-b"] {
        services.start(id, LISTEN_TRIES, |port| {
            role(&[
                "--role",
                "user",
                "--port",
                &port.to_string(),
                "--id",
                id,
                "--ttl",
                "2s",
                "--registry",
                &registry,
            ])
        });
    }
    // The order role listens on nothing: it prints what it sees and whom it calls.
    let mut order = LoggedChild::spawn(
        role(&[
            "--role",
            "order",
            "--balance",
            "round-robin",
            "--registry",
            &registry,
        ]),
        root.join("order.log"),
    );
    wait_until("the order role to call both users", TRIES, || {
        let output = order.output();
        (output.contains("user-a: 200") && output.contains("user-b: 200")).then_some(())
    });

    let status = services.kill("user-a");
    assert!(!status.success(), "SIGKILLed: {status:?}");
    let killed_at = order.output().lines().count();
    // The registry evicts it once its TTL runs out; the watch's next answer lists user-b only.
    let evicted = wait_until("a watch answer without user-a", TRIES, || {
        lines_after(&order, killed_at)
            .iter()
            .position(|line| line.contains(r#"watch (index"#) && line.contains(r#"["user-b"]"#))
            .map(|at| killed_at + at + 1)
    });
    wait_until("three calls after the eviction", TRIES, || {
        let calls = lines_after(&order, evicted)
            .iter()
            .filter(|line| line.contains("user-b: 200"))
            .count();
        (calls >= 3).then_some(())
    });
    let after = lines_after(&order, evicted);
    assert!(
        after.iter().all(|line| !line.contains("user-a")),
        "no call goes to user-a after the watch dropped it:\n{}",
        after.join("\n")
    );
    assert!(
        order.try_wait().is_none(),
        "the order role is still running"
    );
    drop(order);
    drop(services);
    let _ = std::fs::remove_dir_all(root);
}
