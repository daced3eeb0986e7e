//! The store's contract, run against every backend: the in-memory reference, SQLite, and
//! NATS JetStream when `NATS_URL` is set (`cargo xtask test` runs this target once more
//! against a throwaway `nats-server -js`). Plus the race: N writers appending to one stream
//! with `Exact` versions, each on its own SQLite connection, seeded and repeated.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use event_sourcing_core::{
    AppendError, Conflict, Event, ExpectedVersion, Millis, NewEvent, SNAPSHOT_SCHEMA, Snapshot,
    SubscriptionConfig, encode,
};
use event_sourcing_store::{
    Delivery, Durability, EventStore, InMemory, JetStream, Sqlite, StoreError, load, load_at,
    subscribe,
};

/// A scratch file, removed with its WAL when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "event-store-{name}-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let scratch = Scratch(path);
        scratch.remove();
        scratch
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

fn created(id: &str) -> NewEvent {
    encode(
        &Event::OrderCreated {
            order_id: "1".into(),
            customer: "ada".into(),
        },
        id,
    )
}

fn added(id: &str, sku: &str) -> NewEvent {
    encode(
        &Event::ItemAdded {
            sku: sku.into(),
            quantity: 1,
            unit_price_cents: 100,
        },
        id,
    )
}

fn conflict(result: Result<event_sourcing_core::Appended, StoreError>) -> Conflict {
    match result {
        Err(StoreError::Append(AppendError::Conflict(conflict))) => conflict,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Every clause of the contract, against one empty store.
async fn contract(store: Arc<dyn EventStore>) {
    // Appending numbers the stream from 1 and `$all` from 1.
    let first = store
        .append(
            "order-1",
            ExpectedVersion::NoStream,
            vec![created("a"), added("b", "A")],
        )
        .await
        .unwrap();
    assert_eq!(
        (first.first_version, first.version, first.position),
        (1, 2, 2)
    );
    assert!(!first.already_appended);
    let other = store
        .append("order-2", ExpectedVersion::Any, vec![created("c")])
        .await
        .unwrap();
    assert_eq!(
        (other.version, other.position),
        (1, 3),
        "streams share $all"
    );

    // Each expectation is checked; a refused append writes nothing.
    let before = store.read_all(0, 100).await.unwrap();
    assert_eq!(
        conflict(
            store
                .append("order-1", ExpectedVersion::Exact(1), vec![added("d", "B")])
                .await
        ),
        Conflict {
            expected: ExpectedVersion::Exact(1),
            current: 2
        }
    );
    assert_eq!(
        conflict(
            store
                .append("order-1", ExpectedVersion::NoStream, vec![added("d", "B")])
                .await
        )
        .current,
        2
    );
    assert_eq!(
        conflict(
            store
                .append("order-9", ExpectedVersion::StreamExists, vec![created("d")])
                .await
        )
        .current,
        0
    );
    assert_eq!(
        store.read_all(0, 100).await.unwrap(),
        before,
        "refusals wrote nothing"
    );

    // A retried batch is recognised, whatever its expectation, and not written twice.
    let retry = store
        .append(
            "order-1",
            ExpectedVersion::NoStream,
            vec![created("a"), added("b", "A")],
        )
        .await
        .unwrap();
    assert!(retry.already_appended);
    assert_eq!((retry.version, retry.position), (2, 2));
    let half = store
        .append(
            "order-1",
            ExpectedVersion::Any,
            vec![added("b", "A"), added("e", "C")],
        )
        .await;
    assert!(
        matches!(
            half,
            Err(StoreError::Append(AppendError::PartlyAppended { .. }))
        ),
        "{half:?}"
    );
    assert_eq!(
        store.read_all(0, 100).await.unwrap(),
        before,
        "retries wrote nothing"
    );

    // Reads: a stream from a version, $all after a position, limits.
    let from_two = store.read_stream("order-1", 2, 10).await.unwrap();
    assert_eq!(from_two.len(), 1);
    assert_eq!(
        (from_two[0].version, from_two[0].event_id.as_str()),
        (2, "b")
    );
    let page = store.read_all(1, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].position, 2);
    assert!(
        store
            .read_stream("order-404", 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.version("order-1").await.unwrap(), 2);
    assert_eq!(store.version("order-404").await.unwrap(), 0);

    // Payloads come back as written.
    assert_eq!(page[0].data, added("b", "A").data);
    assert_eq!(page[0].schema, 1);

    // Snapshots: saved, loaded, a stale one ignored, time travel before and after it.
    let mut live = store.live();
    store
        .append("order-1", ExpectedVersion::Exact(2), vec![added("f", "B")])
        .await
        .unwrap();
    let notified = live.recv().await.unwrap();
    assert_eq!(
        (
            notified.stream.as_str(),
            notified.version,
            notified.position
        ),
        ("order-1", 3, 4)
    );
    let now = load(store.as_ref(), "order-1").await.unwrap();
    assert_eq!(now.version, 3);
    store
        .save_snapshot(
            "order-1",
            Snapshot::of(&load_at(store.as_ref(), "order-1", 2).await.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(store.snapshot("order-1").await.unwrap().unwrap().version, 2);
    assert_eq!(
        load(store.as_ref(), "order-1").await.unwrap(),
        now,
        "snapshot + tail = fold"
    );
    let at_one = load_at(store.as_ref(), "order-1", 1).await.unwrap();
    assert_eq!(at_one.version, 1);
    assert!(
        at_one.state.unwrap().lines.is_empty(),
        "at version 1 the order had no lines"
    );
    store
        .save_snapshot(
            "order-1",
            Snapshot {
                version: 3,
                schema: SNAPSHOT_SCHEMA + 1,
                state: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        load(store.as_ref(), "order-1").await.unwrap(),
        now,
        "a stale snapshot is ignored"
    );

    // A subscription catches up from a checkpoint, then goes live.
    let config = SubscriptionConfig {
        page_size: 2,
        checkpoint_every: 100,
        checkpoint_after: Millis(60_000),
        live_buffer: 100,
    };
    let mut feed = subscribe(Arc::clone(&store), 1, config);
    let mut seen = Vec::new();
    loop {
        match feed.recv().await.unwrap() {
            Delivery::Event(event) => seen.push(event.position),
            Delivery::Live { at } => {
                assert_eq!(at, 4);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    store
        .append("order-2", ExpectedVersion::Exact(1), vec![added("g", "A")])
        .await
        .unwrap();
    match feed.recv().await.unwrap() {
        Delivery::Event(event) => seen.push(event.position),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        seen,
        vec![2, 3, 4, 5],
        "after checkpoint 1, every position once"
    );
}

#[tokio::test]
async fn the_in_memory_store_keeps_the_contract() {
    contract(Arc::new(InMemory::new())).await;
}

#[tokio::test]
async fn the_sqlite_store_keeps_the_contract() {
    let file = Scratch::new("contract");
    contract(Arc::new(Sqlite::open(&file.0, Durability::Normal).unwrap())).await;
    // Reopened, the file holds the same streams.
    let reopened = Sqlite::open(&file.0, Durability::Normal).unwrap();
    assert_eq!(reopened.version("order-1").await.unwrap(), 3);
    assert_eq!(reopened.read_all(0, 100).await.unwrap().len(), 5);
}

#[tokio::test]
async fn the_jetstream_store_keeps_the_contract() {
    let Ok(url) = std::env::var("NATS_URL") else {
        eprintln!("NATS_URL is not set: the JetStream backend is not tested in this run");
        return;
    };
    // A stream of its own, so positions start at 1.
    let unique = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let name = format!("ES_CONTRACT_{unique}");
    let store = JetStream::connect(&url, &name, &format!("es_contract_{unique}"))
        .await
        .unwrap();
    contract(Arc::new(store)).await;
    let context = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let _ = context.delete_stream(&name).await;
    let _ = context.delete_key_value(format!("{name}_snapshots")).await;
}

// ANCHOR: race_test
#[test]
fn racing_writers_with_exact_versions_win_each_version_once() {
    let seed = lab_test_support::seeded::seed(11);
    eprintln!("race seed: {seed} (replay with PROPTEST_SEED={seed})");
    for round in 0..8u64 {
        let file = Scratch::new(&format!("race-{round}"));
        Sqlite::open(&file.0, Durability::Normal).unwrap();
        let writers = 4;
        let appends_each = 10;
        let handles: Vec<_> = (0..writers)
            .map(|writer| {
                let path = file.0.clone();
                let mut rng = fastrand::Rng::with_seed(seed ^ (round << 8) ^ writer);
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    runtime.block_on(async move {
                        // Each writer has its own connection, as separate processes would.
                        let store = Sqlite::open(&path, Durability::Normal).unwrap();
                        let (mut won, mut lost) = (Vec::new(), 0u32);
                        while won.len() < appends_each {
                            let version = store.version("order-1").await.unwrap();
                            if rng.bool() {
                                std::thread::yield_now();
                            }
                            let id = format!("w{writer}-{}", won.len());
                            match store
                                .append(
                                    "order-1",
                                    ExpectedVersion::Exact(version),
                                    vec![added(&id, "A")],
                                )
                                .await
                            {
                                Ok(appended) => won.push(appended.version),
                                Err(StoreError::Append(AppendError::Conflict(conflict))) => {
                                    assert!(
                                        conflict.current > version,
                                        "a conflict means someone else won"
                                    );
                                    lost += 1;
                                }
                                Err(other) => panic!("{other}"),
                            }
                        }
                        (won, lost)
                    })
                })
            })
            .collect();
        let mut versions: Vec<u64> = Vec::new();
        for handle in handles {
            let (won, _lost) = handle.join().unwrap();
            versions.extend(won);
        }
        versions.sort_unstable();
        let expected: Vec<u64> = (1..=(writers * appends_each as u64)).collect();
        assert_eq!(
            versions, expected,
            "every version won exactly once (seed {seed}, round {round})"
        );
        let store = Sqlite::open(&file.0, Durability::Normal).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let all = runtime.block_on(store.read_all(0, 1_000)).unwrap();
        let positions: Vec<u64> = all.iter().map(|event| event.position).collect();
        assert_eq!(positions, expected, "$all has no gap");
    }
}
// ANCHOR_END: race_test
