//! The core's ungraded behaviour: the append rule, the memory store, schemas and upcasting,
//! snapshots, and the subscription across the catch-up/live switch (property-tested with a
//! store that grows while the subscription reads and notifications that get lost).

#![allow(clippy::unwrap_used)]

use event_sourcing_core::subscription::{Input, Output};
use event_sourcing_core::{
    AppendError, Conflict, DecodeError, Event, ExpectedVersion, Machine, MemoryStore, Millis,
    NewEvent, Plan, Snapshot, SnapshotPolicy, Subscription, SubscriptionConfig, decode, encode,
    plan_append, start_from,
};
use lab_test_support::check_property;
use proptest::prelude::*;
use serde_json::json;

fn event(id: &str) -> NewEvent {
    encode(&Event::ItemRemoved { sku: "A".into() }, id)
}

#[test]
fn a_retry_is_recognised_before_the_version_is_checked() {
    let plan = plan_append(ExpectedVersion::Exact(0), 2, &["a", "b"], |id| match id {
        "a" => Some(1),
        "b" => Some(2),
        _ => None,
    });
    assert_eq!(plan, Ok(Plan::AlreadyThere { version: 2 }));
}

#[test]
fn a_batch_half_in_the_stream_is_refused() {
    let plan = plan_append(ExpectedVersion::Any, 1, &["a", "b"], |id| {
        (id == "a").then_some(1)
    });
    assert!(matches!(plan, Err(AppendError::PartlyAppended { .. })));
}

#[test]
fn empty_batches_and_repeated_ids_are_refused() {
    assert_eq!(
        plan_append(ExpectedVersion::Any, 0, &[], |_| None),
        Err(AppendError::EmptyBatch)
    );
    assert_eq!(
        plan_append(ExpectedVersion::Any, 0, &["a", "a"], |_| None),
        Err(AppendError::DuplicateIdInBatch("a".into()))
    );
}

#[test]
fn the_memory_store_numbers_streams_and_all_without_gaps() {
    let mut store = MemoryStore::new();
    let first = store
        .append(
            "order-1",
            ExpectedVersion::NoStream,
            vec![event("a"), event("b")],
        )
        .unwrap();
    assert_eq!(
        (first.first_version, first.version, first.position),
        (1, 2, 2)
    );
    let other = store
        .append("order-2", ExpectedVersion::Any, vec![event("c")])
        .unwrap();
    assert_eq!((other.version, other.position), (1, 3));
    let conflict = store.append("order-1", ExpectedVersion::Exact(1), vec![event("d")]);
    assert_eq!(
        conflict,
        Err(AppendError::Conflict(Conflict {
            expected: ExpectedVersion::Exact(1),
            current: 2
        }))
    );
    let retry = store
        .append(
            "order-1",
            ExpectedVersion::NoStream,
            vec![event("a"), event("b")],
        )
        .unwrap();
    assert!(retry.already_appended);
    assert_eq!(
        (retry.first_version, retry.version, retry.position),
        (1, 2, 2)
    );
    assert_eq!(store.read_stream("order-1", 2, 10).len(), 1);
    let all: Vec<u64> = store.read_all(1, 10).iter().map(|e| e.position).collect();
    assert_eq!(all, vec![2, 3]);
}

#[test]
fn a_v1_quantity_update_reads_as_v2() {
    let old = json!({ "product": "A", "qty": 3 });
    assert_eq!(
        decode("QuantityUpdated", 1, &old),
        Ok(Event::QuantityUpdated {
            sku: "A".into(),
            quantity: 3
        })
    );
    let new = encode(
        &Event::QuantityUpdated {
            sku: "A".into(),
            quantity: 3,
        },
        "x",
    );
    assert_eq!(new.schema, 2);
    assert_eq!(new.data, json!({ "sku": "A", "quantity": 3 }));
}

#[test]
fn unknown_types_schemas_and_fields_are_decode_errors() {
    assert!(matches!(
        decode("OrderShipped", 1, &json!({})),
        Err(DecodeError::UnknownType(_))
    ));
    assert!(matches!(
        decode("QuantityUpdated", 3, &json!({})),
        Err(DecodeError::UnknownSchema { .. })
    ));
    assert!(matches!(
        decode("QuantityUpdated", 1, &json!({ "sku": "A" })),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        decode("ItemAdded", 1, &json!({ "sku": "A" })),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn every_event_round_trips_through_the_store_format() {
    let events = [
        Event::OrderCreated {
            order_id: "1".into(),
            customer: "ada".into(),
        },
        Event::ItemAdded {
            sku: "A".into(),
            quantity: 2,
            unit_price_cents: 150,
        },
        Event::QuantityUpdated {
            sku: "A".into(),
            quantity: 3,
        },
        Event::ItemRemoved { sku: "A".into() },
        Event::OrderPlaced { total_cents: 0 },
        Event::OrderCancelled {
            reason: "changed mind".into(),
        },
    ];
    for event in events {
        let stored = encode(&event, "id");
        assert_eq!(stored.event_type, event.event_type());
        assert_eq!(
            decode(&stored.event_type, stored.schema, &stored.data),
            Ok(event)
        );
    }
}

#[test]
fn a_stale_snapshot_is_ignored() {
    let stale = Snapshot {
        version: 7,
        schema: 0,
        state: None,
    };
    assert_eq!(start_from(Some(stale)).version, 0);
    let current = Snapshot {
        version: 7,
        schema: event_sourcing_core::SNAPSHOT_SCHEMA,
        state: None,
    };
    assert_eq!(start_from(Some(current)).version, 7);
}

#[test]
fn a_snapshot_is_due_when_an_append_crosses_a_multiple() {
    let policy = SnapshotPolicy { every: 100 };
    assert!(!policy.due(0, 99));
    assert!(policy.due(99, 100));
    assert!(policy.due(95, 205));
    assert!(!policy.due(100, 199));
}

fn config() -> SubscriptionConfig {
    SubscriptionConfig {
        page_size: 3,
        checkpoint_every: 4,
        checkpoint_after: Millis(1_000),
        live_buffer: 5,
    }
}

#[test]
fn a_subscription_checkpoints_a_while_after_its_first_unsaved_event() {
    let mut store = MemoryStore::new();
    store
        .append("s", ExpectedVersion::Any, vec![event("a")])
        .unwrap();
    let mut subscription = Subscription::new(0, config());
    assert_eq!(
        subscription.poll_output(),
        Some(Output::Read { after: 0, limit: 3 })
    );
    subscription
        .handle_input(Millis(10), Input::Page(store.read_all(0, 3)))
        .unwrap();
    assert!(matches!(subscription.poll_output(), Some(Output::Deliver(e)) if e.position == 1));
    assert_eq!(subscription.poll_output(), Some(Output::Live { at: 1 }));
    assert_eq!(subscription.poll_timeout(), Some(Millis(1_010)));
    subscription.handle_timeout(Millis(1_009));
    assert_eq!(subscription.poll_output(), None);
    subscription.handle_timeout(Millis(1_010));
    assert_eq!(subscription.poll_output(), Some(Output::Checkpoint(1)));
    assert_eq!(subscription.poll_timeout(), None);
    assert_eq!(
        subscription.handle_input(Millis(2_000), Input::Page(Vec::new())),
        Err(event_sourcing_core::subscription::SubscriptionError::UnexpectedPage)
    );
}

/// One step of the world around a subscription.
#[derive(Clone, Debug)]
enum Step {
    /// A writer appends this many events; the notification of each is kept or lost (and the
    /// driver told it lagged).
    Append(Vec<bool>),
    /// The driver answers the outstanding read, if any.
    AnswerRead,
    /// The driver passes on the oldest pending notification.
    Notify,
}

fn steps() -> impl Strategy<Value = (u64, Vec<Step>)> {
    let step = prop_oneof![
        prop::collection::vec(prop::bool::weighted(0.8), 1..4).prop_map(Step::Append),
        Just(Step::AnswerRead),
        Just(Step::Notify),
    ];
    (0u64..5, prop::collection::vec(step, 1..60))
}

#[test]
fn a_subscription_delivers_every_position_once_in_order_across_the_switch() {
    check_property(300, 16, &steps(), |(preloaded, steps)| {
        let mut store = MemoryStore::new();
        for n in 0..preloaded {
            store
                .append("s", ExpectedVersion::Any, vec![event(&format!("p{n}"))])
                .unwrap();
        }
        let mut subscription = Subscription::new(0, config());
        let mut pending_read = None;
        let mut notifications = std::collections::VecDeque::new();
        let mut delivered = Vec::new();
        let mut checkpoints = Vec::new();
        let mut next_id = 0;
        let mut now = Millis(0);
        let drain = |subscription: &mut Subscription,
                     pending_read: &mut Option<(u64, usize)>,
                     delivered: &mut Vec<u64>,
                     checkpoints: &mut Vec<u64>| {
            while let Some(output) = subscription.poll_output() {
                match output {
                    Output::Read { after, limit } => {
                        prop_assert!(pending_read.is_none(), "one read at a time");
                        *pending_read = Some((after, limit));
                    }
                    Output::Deliver(event) => delivered.push(event.position),
                    Output::Checkpoint(position) => checkpoints.push(position),
                    Output::Live { .. } => {}
                }
            }
            Ok(())
        };
        let all_steps = steps
            .into_iter()
            .chain(std::iter::repeat_n(Step::Notify, 20))
            .chain(std::iter::repeat_n(Step::AnswerRead, 20));
        for step in all_steps {
            drain(
                &mut subscription,
                &mut pending_read,
                &mut delivered,
                &mut checkpoints,
            )?;
            now = now + Millis(100);
            match step {
                Step::Append(kept) => {
                    let batch = kept
                        .iter()
                        .map(|_| {
                            next_id += 1;
                            event(&format!("e{next_id}"))
                        })
                        .collect();
                    let appended = store.append("s", ExpectedVersion::Any, batch).unwrap();
                    let events = store.read_all(appended.position - kept.len() as u64, 10);
                    for (event, kept) in events.into_iter().zip(kept) {
                        notifications.push_back(kept.then_some(event));
                    }
                }
                Step::AnswerRead => {
                    if let Some((after, limit)) = pending_read.take() {
                        subscription
                            .handle_input(now, Input::Page(store.read_all(after, limit)))
                            .unwrap();
                    }
                }
                Step::Notify => match notifications.pop_front() {
                    Some(Some(event)) => {
                        subscription.handle_input(now, Input::Live(event)).unwrap()
                    }
                    Some(None) => subscription.handle_input(now, Input::Lagged).unwrap(),
                    None => {}
                },
            }
        }
        drain(
            &mut subscription,
            &mut pending_read,
            &mut delivered,
            &mut checkpoints,
        )?;
        let expected: Vec<u64> = (1..=store.head()).collect();
        prop_assert_eq!(
            &delivered,
            &expected,
            "invariant: every position once, in order (delivered {:?})",
            delivered
        );
        prop_assert!(
            checkpoints.windows(2).all(|pair| pair[0] < pair[1]),
            "invariant: checkpoints only move forward: {:?}",
            checkpoints
        );
        prop_assert!(checkpoints.iter().all(|c| *c <= store.head()));
        Ok(())
    });
}
