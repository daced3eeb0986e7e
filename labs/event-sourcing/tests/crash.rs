//! A real process crash: the store (`--role store`) is killed with SIGKILL while four clients
//! append batches over HTTP. Read straight from the SQLite file afterwards, every
//! acknowledged batch is there whole, nothing is half there, and `$all` has no gap; restarted,
//! the store serves the same streams and appends after them.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use lab_event_sourcing::writer::{BATCH, batch, inspect};
use lab_test_support::{Listening, LoggedChild, start_listening};
use serde_json::json;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("event-sourcing-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_store(dir: &Path, log: &str) -> Listening {
    start_listening("the store", 200, |port| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lab-event-sourcing"));
        command
            .args(["--role", "store", "--port", &port.to_string(), "--data"])
            .arg(dir.join("store.db"))
            .env("NO_COLOR", "1");
        LoggedChild::spawn(command, dir.join(log))
    })
}

fn body(n: u64) -> String {
    let events: Vec<_> = batch(n)
        .into_iter()
        .map(|e| json!({ "event_id": e.event_id, "type": e.event_type, "schema": e.schema, "data": e.data }))
        .collect();
    json!({ "expected_version": "no-stream", "events": events }).to_string()
}

// ANCHOR: crash_test
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_killed_mid_append_keeps_every_acknowledged_batch_and_no_torn_one() {
    let dir = scratch("crash");
    let store = start_store(&dir, "store.log");
    let base = store.base_url();
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let client = reqwest::Client::new();
    let clients: Vec<_> = (0..4u64)
        .map(|c| {
            let (client, base, acked) = (client.clone(), base.clone(), Arc::clone(&acked));
            tokio::spawn(async move {
                for n in (c * 100_000)..(c * 100_000 + 10_000) {
                    let sent = client
                        .post(format!("{base}/streams/order-{n}"))
                        .header("content-type", "application/json")
                        .body(body(n))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 201 => {
                            acked.lock().unwrap().insert(format!("order-{n}"));
                        }
                        Ok(response) => panic!("order-{n}: {}", response.status()),
                        Err(_) => return, // the store is gone
                    }
                }
            })
        })
        .collect();
    // Kill the store once appends are flowing, wherever they are.
    lab_test_support::wait::wait_until_async("40 acknowledged batches", 2_000, || {
        let count = acked.lock().unwrap().len();
        async move { (count >= 40).then_some(()) }
    })
    .await;
    let status = store.child.kill();
    assert!(!status.success(), "the store was killed, not stopped");
    for client in clients {
        client.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let check = inspect(&dir.join("store.db")).unwrap();
    assert!(
        check.torn.is_empty(),
        "half-written batches: {:?}",
        check.torn
    );
    assert!(
        check.gapped.is_empty(),
        "streams with a gap: {:?}",
        check.gapped
    );
    assert_eq!(
        check.events, check.last_position,
        "$all has no gap: {check:?}"
    );
    assert_eq!(check.events, check.streams * BATCH as u64, "{check:?}");
    let connection = rusqlite::Connection::open(dir.join("store.db")).unwrap();
    let mut query = connection
        .prepare("SELECT DISTINCT stream FROM events")
        .unwrap();
    let present: HashSet<String> = query
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let missing: Vec<_> = acked.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the file: {missing:?}"
    );

    // Restarted on the same file, the store serves the streams and appends after them.
    let again = start_store(&dir, "store-again.log");
    let some = acked.iter().next().unwrap();
    let state: serde_json::Value = client
        .get(format!("{}/streams/{some}/state", again.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["version"], BATCH as u64);
    let next: serde_json::Value = client
        .post(format!("{}/streams/order-999999", again.base_url()))
        .body(body(999_999))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        next["position"],
        check.last_position + BATCH as u64,
        "{next}"
    );
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}
// ANCHOR_END: crash_test
