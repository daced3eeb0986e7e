//! A real process crash between commit and acknowledgement: the projector (`--role project`,
//! one transaction per event) is told to stop right after committing its view and checkpoint
//! for a position and before acknowledging it, and is killed there with SIGKILL while the
//! write side (`--role write`) keeps taking orders. Restarted on the same files, it catches
//! up; read straight from the SQLite files, every order is counted exactly once. Over the
//! in-process bus by default, over NATS JetStream when `NATS_URL` is set (then the messages
//! the killed projector never acknowledged are redelivered, and its checkpoint absorbs them).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cqrs_core::{Details, Summary, View};
use lab_test_support::{Listening, LoggedChild, start_listening};
use serde_json::json;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cqrs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(dir: &Path, role: &str, log: &str, halt_after: Option<u64>) -> Listening {
    start_listening(role, 400, |port| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lab-cqrs"));
        command
            .args([
                "--role",
                role,
                "--port",
                &port.to_string(),
                "--batch",
                "1",
                "--data",
            ])
            .arg(dir)
            .env("NO_COLOR", "1")
            .env_remove("CQRS_HALT_AFTER_COMMIT");
        if let Some(position) = halt_after {
            command.env("CQRS_HALT_AFTER_COMMIT", position.to_string());
        }
        LoggedChild::spawn(command, dir.join(log))
    })
}

async fn orders(client: &reqwest::Client, base: &str, from: u64, to: u64) -> u64 {
    let mut token = 0;
    for n in from..to {
        let url = format!("{base}/orders/o{n}");
        let bodies = [
            json!({ "type": "CreateOrder", "order_id": format!("o{n}"), "customer": format!("c{}", n % 4) }),
            json!({ "type": "AddItem", "sku": "mug", "quantity": 1, "unit_price_cents": 100 }),
            json!({ "type": "PlaceOrder" }),
        ];
        for body in bodies {
            let response = client.post(&url).json(&body).send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            token = response.headers()["position-token"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
        }
    }
    token
}

fn checkpoint(dir: &Path, view: &str) -> u64 {
    let path = lab_cqrs::system::view_path(dir, view);
    if !path.exists() {
        return 0;
    }
    let connection = lab_cqrs::viewdb::open(&path).unwrap();
    lab_cqrs::viewdb::active_checkpoint(&connection)
        .unwrap()
        .position
}

// ANCHOR: crash_test
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_between_commit_and_ack_counts_every_event_once() {
    let dir = scratch("crash");
    let write = start(&dir, "write", "write.log", None);
    let client = reqwest::Client::new();
    orders(&client, &write.base_url(), 0, 20).await;
    // Stop right after committing position 30 (of 60), before acknowledging it.
    let mut project = start(&dir, "project", "project.log", Some(30));
    project
        .child
        .wait_for("both views' commit before the kill", 2_000, |out, _| {
            out.contains("order-details: committed up to")
                && out.contains("customer-summary: committed up to")
        });
    let status = project.child.kill();
    assert!(!status.success(), "the projector was killed, not stopped");
    let at_kill = checkpoint(&dir, Details::NAME).min(checkpoint(&dir, Summary::NAME));
    assert!(
        at_kill >= 30,
        "both views committed past 30 before the kill: {at_kill}"
    );

    // More writes while it is down, then a restart on the same files.
    let head = orders(&client, &write.base_url(), 20, 40).await;
    let again = start(&dir, "project", "project-again.log", None);
    lab_test_support::wait::wait_until_async("both views at the head", 4_000, || {
        let caught_up =
            checkpoint(&dir, Details::NAME) >= head && checkpoint(&dir, Summary::NAME) >= head;
        async move { caught_up.then_some(()) }
    })
    .await;

    // Straight from the files: every order once, in both views.
    let details =
        lab_cqrs::viewdb::open(&lab_cqrs::system::view_path(&dir, Details::NAME)).unwrap();
    let (details, _) = lab_cqrs::viewdb::load::<Details>(&details, 1).unwrap();
    assert_eq!(details.orders.len(), 40, "40 order rows");
    assert!(
        details
            .orders
            .values()
            .all(|row| row.total_cents == 100 && row.status == "placed"),
        "every order has its one line once and is placed"
    );
    let summary =
        lab_cqrs::viewdb::open(&lab_cqrs::system::view_path(&dir, Summary::NAME)).unwrap();
    let (summary, _) = lab_cqrs::viewdb::load::<Summary>(&summary, 1).unwrap();
    let placed: u64 = summary.customers.values().map(|row| row.placed).sum();
    let spent: u64 = summary.customers.values().map(|row| row.spent_cents).sum();
    let open: u64 = summary.customers.values().map(|row| row.open).sum();
    assert_eq!(
        (placed, spent, open),
        (40, 4_000, 0),
        "each order counted exactly once: {summary:?}"
    );
    for view in [Details::NAME, Summary::NAME] {
        let connection = lab_cqrs::viewdb::open(&lab_cqrs::system::view_path(&dir, view)).unwrap();
        let saved = lab_cqrs::viewdb::active_checkpoint(&connection).unwrap();
        assert_eq!(
            (saved.position, saved.applied),
            (head, head),
            "{view}: every one of the {head} events applied exactly once, none twice across the kill"
        );
    }
    drop(again);
    drop(write);
    let _ = std::fs::remove_dir_all(&dir);
}
// ANCHOR_END: crash_test
