//! The graded tests of the event sourcing lab: the specification of `evolve`, `decide` and
//! `check_expected`.
//!
//! `cargo xtask grade event-sourcing` runs them against the learner's copies (`--features
//! exercise`); `cargo test -p event-sourcing-core --test graded` against the reference. They
//! go from an empty stream to the edge cases a store lives with: a conflicting append that
//! must leave the stream as it was, a retried append, a snapshot plus its tail. Every
//! assertion says what it checks; the property tests name their `invariant: <name>`.

#![allow(clippy::unwrap_used)]

use event_sourcing_core::{
    AppendError, Command, Conflict, Event, ExpectedVersion, Line, MemoryStore, Order, Rejection,
    Snapshot, State, Status, check_expected, decide, decode, encode, evolve, fold, start_from,
};
use lab_test_support::check_property;
use proptest::prelude::*;

fn created() -> Event {
    Event::OrderCreated {
        order_id: "42".into(),
        customer: "ada".into(),
    }
}

fn added(sku: &str, quantity: u32, unit_price_cents: u64) -> Event {
    Event::ItemAdded {
        sku: sku.into(),
        quantity,
        unit_price_cents,
    }
}

/// An open order with 2 × A at 150 and 1 × B at 1000.
fn open_order() -> State {
    fold(None, &[created(), added("A", 2, 150), added("B", 1, 1_000)])
}

fn with_status(events: &[Event]) -> State {
    let mut all = vec![created(), added("A", 2, 150)];
    all.extend_from_slice(events);
    fold(None, &all)
}

// ANCHOR: empty_stream_test
#[test]
fn an_empty_stream_folds_to_no_order() {
    assert_eq!(fold(None, &[]), None, "no events, no order");
    assert_eq!(
        evolve(None, &added("A", 1, 100)),
        None,
        "an item event before OrderCreated finds no order to change"
    );
}
// ANCHOR_END: empty_stream_test

#[test]
fn order_created_opens_an_empty_order() {
    assert_eq!(
        evolve(None, &created()),
        Some(Order {
            id: "42".into(),
            customer: "ada".into(),
            lines: Default::default(),
            status: Status::Open,
        }),
        "OrderCreated gives an open order with the event's id and customer and no lines"
    );
    let again = Event::OrderCreated {
        order_id: "43".into(),
        customer: "bob".into(),
    };
    assert_eq!(
        evolve(evolve(None, &created()), &again).unwrap().id,
        "42",
        "a second OrderCreated does not replace the order"
    );
}

// ANCHOR: lines_test
#[test]
fn item_events_add_change_and_remove_lines() {
    let order = open_order().unwrap();
    assert_eq!(
        order.lines["A"],
        Line {
            quantity: 2,
            unit_price_cents: 150
        },
        "ItemAdded puts the line in with its quantity and price"
    );
    let updated = evolve(
        open_order(),
        &Event::QuantityUpdated {
            sku: "A".into(),
            quantity: 5,
        },
    )
    .unwrap();
    assert_eq!(
        updated.lines["A"].quantity, 5,
        "QuantityUpdated sets the quantity"
    );
    assert_eq!(
        updated.lines["A"].unit_price_cents, 150,
        "…and keeps the price the item was added at"
    );
    let removed = evolve(open_order(), &Event::ItemRemoved { sku: "A".into() }).unwrap();
    assert!(
        !removed.lines.contains_key("A"),
        "ItemRemoved takes the line out"
    );
    assert!(removed.lines.contains_key("B"), "…and only that line");
    let unknown = evolve(
        open_order(),
        &Event::QuantityUpdated {
            sku: "Z".into(),
            quantity: 5,
        },
    );
    assert_eq!(
        unknown,
        open_order(),
        "QuantityUpdated for a product not in the order changes nothing"
    );
}
// ANCHOR_END: lines_test

#[test]
fn placed_and_cancelled_events_close_the_order() {
    assert_eq!(
        with_status(&[Event::OrderPlaced { total_cents: 300 }])
            .unwrap()
            .status,
        Status::Placed { total_cents: 300 },
        "OrderPlaced records the agreed total"
    );
    assert_eq!(
        with_status(&[Event::OrderCancelled {
            reason: "too slow".into()
        }])
        .unwrap()
        .status,
        Status::Cancelled {
            reason: "too slow".into()
        },
        "OrderCancelled records why"
    );
}

#[test]
fn create_order_decides_order_created_once() {
    let command = Command::CreateOrder {
        order_id: "42".into(),
        customer: "ada".into(),
    };
    assert_eq!(
        decide(&None, command.clone()),
        Ok(vec![created()]),
        "on an empty stream, CreateOrder decides OrderCreated"
    );
    assert_eq!(
        decide(&open_order(), command),
        Err(Rejection::AlreadyCreated),
        "an order exists only once"
    );
}

#[test]
fn commands_before_the_order_exists_are_rejected() {
    for command in [
        Command::AddItem {
            sku: "A".into(),
            quantity: 1,
            unit_price_cents: 1,
        },
        Command::UpdateQuantity {
            sku: "A".into(),
            quantity: 1,
        },
        Command::RemoveItem { sku: "A".into() },
        Command::PlaceOrder,
        Command::CancelOrder { reason: "x".into() },
    ] {
        assert_eq!(
            decide(&None, command.clone()),
            Err(Rejection::NoOrder),
            "{command:?} needs an order to exist"
        );
    }
}

// ANCHOR: add_item_test
#[test]
fn add_item_decides_item_added_for_a_new_product() {
    assert_eq!(
        decide(
            &open_order(),
            Command::AddItem {
                sku: "C".into(),
                quantity: 3,
                unit_price_cents: 99
            }
        ),
        Ok(vec![added("C", 3, 99)]),
        "a product not yet in the order is added with its quantity and price"
    );
    assert_eq!(
        decide(
            &open_order(),
            Command::AddItem {
                sku: "A".into(),
                quantity: 1,
                unit_price_cents: 150
            }
        ),
        Err(Rejection::AlreadyInOrder { sku: "A".into() }),
        "a product already in the order is updated, not added twice"
    );
}
// ANCHOR_END: add_item_test

#[test]
fn quantities_must_be_positive() {
    assert_eq!(
        decide(
            &open_order(),
            Command::AddItem {
                sku: "C".into(),
                quantity: 0,
                unit_price_cents: 99
            }
        ),
        Err(Rejection::NonPositiveQuantity),
        "adding 0 of a product is refused"
    );
    assert_eq!(
        decide(
            &open_order(),
            Command::UpdateQuantity {
                sku: "A".into(),
                quantity: 0
            }
        ),
        Err(Rejection::NonPositiveQuantity),
        "setting a line to 0 is refused: remove the item instead"
    );
}

#[test]
fn update_quantity_and_remove_item_need_the_product_in_the_order() {
    assert_eq!(
        decide(
            &open_order(),
            Command::UpdateQuantity {
                sku: "A".into(),
                quantity: 4
            }
        ),
        Ok(vec![Event::QuantityUpdated {
            sku: "A".into(),
            quantity: 4
        }]),
        "a line in the order gets its new quantity"
    );
    assert_eq!(
        decide(&open_order(), Command::RemoveItem { sku: "B".into() }),
        Ok(vec![Event::ItemRemoved { sku: "B".into() }]),
        "a line in the order can be removed"
    );
    assert_eq!(
        decide(
            &open_order(),
            Command::UpdateQuantity {
                sku: "Z".into(),
                quantity: 4
            }
        ),
        Err(Rejection::NotInOrder { sku: "Z".into() }),
        "a product not in the order cannot be updated"
    );
    assert_eq!(
        decide(&open_order(), Command::RemoveItem { sku: "Z".into() }),
        Err(Rejection::NotInOrder { sku: "Z".into() }),
        "a product not in the order cannot be removed"
    );
}

#[test]
fn a_command_that_changes_nothing_decides_no_events() {
    assert_eq!(
        decide(
            &open_order(),
            Command::UpdateQuantity {
                sku: "A".into(),
                quantity: 2
            }
        ),
        Ok(vec![]),
        "setting a quantity to what it already is records nothing"
    );
}

// ANCHOR: place_test
#[test]
fn placing_an_order_records_the_total_of_its_lines() {
    assert_eq!(
        decide(&open_order(), Command::PlaceOrder),
        Ok(vec![Event::OrderPlaced { total_cents: 1_300 }]),
        "2 × 150 + 1 × 1000 = 1300 cents: the total comes from the items"
    );
    let emptied = fold(
        None,
        &[
            created(),
            added("A", 1, 5),
            Event::ItemRemoved { sku: "A".into() },
        ],
    );
    assert_eq!(
        decide(&emptied, Command::PlaceOrder),
        Err(Rejection::EmptyOrder),
        "an order whose lines were all removed cannot be placed"
    );
    assert_eq!(
        decide(&fold(None, &[created()]), Command::PlaceOrder),
        Err(Rejection::EmptyOrder),
        "an empty order cannot be placed"
    );
}
// ANCHOR_END: place_test

#[test]
fn cancel_order_records_the_reason() {
    assert_eq!(
        decide(
            &open_order(),
            Command::CancelOrder {
                reason: "found it cheaper".into()
            }
        ),
        Ok(vec![Event::OrderCancelled {
            reason: "found it cheaper".into()
        }]),
        "an open order can be cancelled, with its reason"
    );
}

fn every_change() -> Vec<Command> {
    vec![
        Command::AddItem {
            sku: "C".into(),
            quantity: 1,
            unit_price_cents: 1,
        },
        Command::UpdateQuantity {
            sku: "A".into(),
            quantity: 9,
        },
        Command::RemoveItem { sku: "A".into() },
        Command::PlaceOrder,
        Command::CancelOrder { reason: "x".into() },
    ]
}

#[test]
fn nothing_changes_after_the_order_is_placed() {
    let placed = with_status(&[Event::OrderPlaced { total_cents: 300 }]);
    for command in every_change() {
        assert_eq!(
            decide(&placed, command.clone()),
            Err(Rejection::Closed),
            "{command:?} on a placed order is refused"
        );
    }
}

#[test]
fn nothing_changes_after_the_order_is_cancelled() {
    let cancelled = with_status(&[Event::OrderCancelled { reason: "x".into() }]);
    for command in every_change() {
        assert_eq!(
            decide(&cancelled, command.clone()),
            Err(Rejection::Closed),
            "{command:?} on a cancelled order is refused"
        );
    }
}

// ANCHOR: expected_test
#[test]
fn each_expected_version_holds_only_where_it_should() {
    assert_eq!(
        check_expected(ExpectedVersion::Any, 0),
        Ok(()),
        "Any: an empty stream"
    );
    assert_eq!(
        check_expected(ExpectedVersion::Any, 7),
        Ok(()),
        "Any: any version"
    );
    assert_eq!(
        check_expected(ExpectedVersion::NoStream, 0),
        Ok(()),
        "NoStream: empty"
    );
    assert_eq!(
        check_expected(ExpectedVersion::StreamExists, 1),
        Ok(()),
        "StreamExists: 1 event"
    );
    assert_eq!(
        check_expected(ExpectedVersion::Exact(3), 3),
        Ok(()),
        "Exact(3) at version 3"
    );
    assert_eq!(
        check_expected(ExpectedVersion::Exact(0), 0),
        Ok(()),
        "Exact(0): empty"
    );
}

#[test]
fn a_conflict_carries_the_current_version() {
    for (expected, current) in [
        (ExpectedVersion::NoStream, 1),
        (ExpectedVersion::StreamExists, 0),
        (ExpectedVersion::Exact(3), 2),
        (ExpectedVersion::Exact(3), 4),
        (ExpectedVersion::Exact(0), 1),
    ] {
        assert_eq!(
            check_expected(expected, current),
            Err(Conflict { expected, current }),
            "{expected:?} against a stream at version {current} is a conflict naming both"
        );
    }
}
// ANCHOR_END: expected_test

/// Decides `command` against `stream` at its current state and appends what it decided.
fn handle(
    store: &mut MemoryStore,
    stream: &str,
    expected: ExpectedVersion,
    command: Command,
    ids: &[&str],
) -> Result<event_sourcing_core::Appended, AppendError> {
    let events = store.read_stream(stream, 1, usize::MAX);
    let state = events.iter().fold(None, |state, recorded| {
        evolve(
            state,
            &decode(&recorded.event_type, recorded.schema, &recorded.data).unwrap(),
        )
    });
    let decided = decide(&state, command).unwrap();
    let batch = decided
        .iter()
        .zip(ids)
        .map(|(event, id)| encode(event, *id))
        .collect();
    store.append(stream, expected, batch)
}

// ANCHOR: conflict_test
#[test]
fn a_conflicting_append_leaves_the_stream_unchanged() {
    let mut store = MemoryStore::new();
    let create = Command::CreateOrder {
        order_id: "42".into(),
        customer: "ada".into(),
    };
    handle(
        &mut store,
        "order-42",
        ExpectedVersion::NoStream,
        create,
        &["e1"],
    )
    .unwrap();
    let add = |sku: &str| Command::AddItem {
        sku: sku.into(),
        quantity: 1,
        unit_price_cents: 100,
    };
    // Two clerks loaded version 1; the first one's append wins.
    handle(
        &mut store,
        "order-42",
        ExpectedVersion::Exact(1),
        add("A"),
        &["e2"],
    )
    .unwrap();
    let before = store.read_all(0, 100);
    let second = handle(
        &mut store,
        "order-42",
        ExpectedVersion::Exact(1),
        add("B"),
        &["e3"],
    );
    assert_eq!(
        second,
        Err(AppendError::Conflict(Conflict {
            expected: ExpectedVersion::Exact(1),
            current: 2
        })),
        "the second clerk decided from version 1, but the stream is at 2"
    );
    assert_eq!(
        store.read_all(0, 100),
        before,
        "the refused append wrote nothing"
    );
}
// ANCHOR_END: conflict_test

#[test]
fn an_idempotent_retry_is_not_written_twice() {
    let mut store = MemoryStore::new();
    let create = Command::CreateOrder {
        order_id: "42".into(),
        customer: "ada".into(),
    };
    let first = handle(
        &mut store,
        "order-42",
        ExpectedVersion::NoStream,
        create.clone(),
        &["e1"],
    )
    .unwrap();
    // The answer was lost; the client sends the same event again. Deciding CreateOrder again
    // on the state now is refused, so the retry resends the batch it already decided.
    assert_eq!(
        decide(&fold(None, &[created()]), create),
        Err(Rejection::AlreadyCreated),
        "deciding again on the new state would refuse"
    );
    let retry = store
        .append(
            "order-42",
            ExpectedVersion::NoStream,
            vec![encode(&created(), "e1")],
        )
        .unwrap();
    assert!(
        retry.already_appended,
        "the store says the event was already there"
    );
    assert_eq!(
        (retry.version, retry.position),
        (first.version, first.position),
        "…at the version and position the first append gave it"
    );
    assert_eq!(store.head(), 1, "one event in the store, not two");
}

/// A random command on one order.
fn command() -> impl Strategy<Value = Command> {
    let sku = prop::sample::select(vec!["A", "B", "C"]).prop_map(String::from);
    prop_oneof![
        1 => Just(Command::CreateOrder { order_id: "42".into(), customer: "ada".into() }),
        4 => (sku.clone(), 0u32..4, 1u64..500).prop_map(|(sku, quantity, unit_price_cents)| {
            Command::AddItem { sku, quantity, unit_price_cents }
        }),
        3 => (sku.clone(), 0u32..4).prop_map(|(sku, quantity)| Command::UpdateQuantity { sku, quantity }),
        2 => sku.prop_map(|sku| Command::RemoveItem { sku }),
        1 => Just(Command::PlaceOrder),
        1 => Just(Command::CancelOrder { reason: "x".into() }),
    ]
}

/// A valid history: the events `decide` accepted for a run of random commands, each with
/// the state after it.
fn history(commands: Vec<Command>) -> (Vec<Event>, Vec<State>) {
    let mut state = None;
    let mut events = Vec::new();
    let mut states = vec![None];
    for command in std::iter::once(Command::CreateOrder {
        order_id: "42".into(),
        customer: "ada".into(),
    })
    .chain(commands)
    {
        if let Ok(decided) = decide(&state, command) {
            for event in decided {
                state = evolve(state, &event);
                events.push(event);
                states.push(state.clone());
            }
        }
    }
    (events, states)
}

// ANCHOR: prefix_property
#[test]
fn folding_any_prefix_equals_the_state_at_that_version() {
    check_property(
        200,
        18,
        &prop::collection::vec(command(), 0..40),
        |commands| {
            let (events, states) = history(commands);
            for version in 0..=events.len() {
                prop_assert_eq!(
                    &fold(None, &events[..version]),
                    &states[version],
                    "invariant: prefix_fold: the first {} events folded from nothing differ from \
                 the state the order had at version {}",
                    version,
                    version
                );
            }
            Ok(())
        },
    );
}
// ANCHOR_END: prefix_property

#[test]
fn a_valid_history_keeps_the_orders_rules() {
    check_property(
        200,
        19,
        &prop::collection::vec(command(), 0..40),
        |commands| {
            let (events, states) = history(commands);
            for state in states.iter().flatten() {
                prop_assert!(
                    state.lines.values().all(|line| line.quantity > 0),
                    "invariant: positive_quantities: a line with quantity 0 in {:?}",
                    state
                );
            }
            let closed = events.iter().position(|e| {
                matches!(e, Event::OrderPlaced { .. } | Event::OrderCancelled { .. })
            });
            if let Some(at) = closed {
                prop_assert_eq!(
                    at + 1,
                    events.len(),
                    "invariant: closed_is_final: events were decided after {:?}: {:?}",
                    &events[at],
                    &events[at + 1..]
                );
                if let Event::OrderPlaced { total_cents } = events[at] {
                    let before = states[at].as_ref().unwrap();
                    prop_assert_eq!(
                        total_cents,
                        before.total_cents(),
                        "invariant: total_from_items: placed at a total that is not the lines' sum"
                    );
                    prop_assert!(
                        !before.lines.is_empty(),
                        "invariant: closed_is_final: an empty order was placed"
                    );
                }
            }
            Ok(())
        },
    );
}

#[test]
fn a_snapshot_plus_its_tail_equals_the_full_fold() {
    let strategy = (prop::collection::vec(command(), 0..40), 0usize..60);
    check_property(200, 20, &strategy, |(commands, at)| {
        let (events, _) = history(commands);
        let at = at.min(events.len());
        let snapshot = Snapshot::of(&start_from(None).fold_tail(&events[..at]));
        // The snapshot goes through its stored form, as the store keeps it.
        let stored: Snapshot =
            serde_json::from_str(&serde_json::to_string(&snapshot).unwrap()).unwrap();
        let loaded = start_from(Some(stored)).fold_tail(&events[at..]);
        prop_assert_eq!(
            loaded.state,
            fold(None, &events),
            "invariant: snapshot_tail: a snapshot at version {} plus the events after it \
             differ from folding all {} events",
            at,
            events.len()
        );
        prop_assert_eq!(
            loaded.version,
            events.len() as u64,
            "invariant: snapshot_tail"
        );
        Ok(())
    });
}
