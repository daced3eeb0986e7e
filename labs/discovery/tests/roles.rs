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

/// A fresh directory for one test's logs (the tests run in parallel in one process).
fn scratch(test: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("discovery-roles-{}-{test}", std::process::id()));
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
    let root = scratch("kill");
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

/// The tracing lab's collector on a free port of `runtime`, keeping every trace and deciding on
/// one after half a second of quiet.
fn collector(
    runtime: &tokio::runtime::Runtime,
) -> (
    String,
    tokio::sync::broadcast::Receiver<std::sync::Arc<trace_context_core::Decision>>,
    lab_runtime::Running,
) {
    use trace_context_core::{CollectorConfig, SamplingPolicy};
    runtime.block_on(async {
        let config = CollectorConfig {
            decision_wait: lab_runtime::Millis(500),
            orphan_window: lab_runtime::Millis(1_000),
            policy: SamplingPolicy {
                slow_ns: u64::MAX,
                keep_per_mille: 1000,
                seed: 7,
            },
            ..CollectorConfig::default()
        };
        let store = lab_tracing::store::Store::open(None).unwrap();
        let handle = lab_tracing::collector::CollectorHandle::start(
            config,
            store,
            lab_runtime::TokioClock::new(),
        );
        let decisions = handle.decisions();
        let server = lab_runtime::spawn(
            lab_tracing::collector::router(handle),
            ([127, 0, 0, 1], 0).into(),
        )
        .await
        .unwrap();
        (format!("http://{}", server.addr), decisions, server)
    })
}

#[test]
fn with_an_otlp_endpoint_an_order_call_and_the_users_answer_are_one_trace() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (endpoint, mut decisions, _collector) = collector(&runtime);
    let traced = |args: &[&str]| {
        let mut command = role(args);
        command
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            // The batch exporter's interval, in ms (the SDK's default is 5 s).
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
        command
    };
    let root = scratch("traced");
    let mut services = Services::new(root.clone());
    let registry = services.start("registry", LISTEN_TRIES, |port| {
        traced(&["--role", "registry", "--port", &port.to_string()])
    });
    services.start("user-a", LISTEN_TRIES, |port| {
        traced(&[
            "--role",
            "user",
            "--port",
            &port.to_string(),
            "--id",
            "user-a",
            "--registry",
            &registry,
        ])
    });
    let _order = LoggedChild::spawn(
        traced(&["--role", "order", "--registry", &registry]),
        root.join("order.log"),
    );
    // The first decided trace that holds an order call: the order's root span, its client
    // span, and user-a's server span continuing the client span's context.
    let tree = runtime.block_on(async {
        loop {
            let decision =
                tokio::time::timeout(std::time::Duration::from_secs(60), decisions.recv())
                    .await
                    .expect("a decision within a minute")
                    .expect("the collector is running");
            if decision
                .tree
                .nodes
                .iter()
                .any(|n| n.span.service == "order")
            {
                return decision.tree.clone();
            }
        }
    });
    let described: Vec<String> = tree
        .nodes
        .iter()
        .map(|n| format!("{} {} (depth {})", n.span.service, n.span.name, n.depth))
        .collect();
    let at = |service: &str, name: &str| {
        tree.nodes
            .iter()
            .position(|n| n.span.service == service && n.span.name.starts_with(name))
            .unwrap_or_else(|| panic!("a {service} span {name} in {described:?}"))
    };
    let (call, client, server) = (
        at("order", "call user"),
        at("order", "GET"),
        at("user", "GET"),
    );
    assert_eq!(tree.nodes[call].parent, None, "{described:?}");
    assert_eq!(tree.nodes[client].parent, Some(call), "{described:?}");
    assert_eq!(
        tree.nodes[server].parent,
        Some(client),
        "the user instance continues the order's trace: {described:?}"
    );
    assert!(tree.nodes.iter().all(|n| !n.orphan), "{described:?}");
    drop(services);
    let _ = std::fs::remove_dir_all(root);
}
