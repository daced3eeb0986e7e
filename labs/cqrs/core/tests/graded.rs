//! The graded tests of the CQRS lab: the specification of the projection step ([`project`])
//! and the high-water mark ([`HighWater`]).
//!
//! `cargo xtask grade cqrs` runs them against the learner's copy (`--features exercise`);
//! `cargo test -p cqrs-core --test graded` against the reference. Every assertion says what it
//! checks, so a failure reads as a sentence; the property test names its `invariant: <name>`.

use cqrs_core::{
    Catalog, Details, Fact, HighWater, Millis, Offered, Positioned, Released, RowKey, Step,
    project, replay,
};
use event_sourcing_core::Event;
use lab_test_support::check_property;
use proptest::prelude::*;

/// The event at `position` of a small history: a customer and a product, two orders that use
/// them, a rename, and a placed order.
fn story() -> Vec<Positioned> {
    let order = |id: &str, event| Fact::Order {
        order_id: id.to_owned(),
        event,
    };
    let facts = vec![
        Fact::Catalog(Catalog::CustomerRegistered {
            customer_id: "c1".into(),
            name: "Ada".into(),
        }),
        Fact::Catalog(Catalog::ProductListed {
            sku: "mug".into(),
            name: "Blue mug".into(),
        }),
        order(
            "o1",
            Event::OrderCreated {
                order_id: "o1".into(),
                customer: "c1".into(),
            },
        ),
        order(
            "o1",
            Event::ItemAdded {
                sku: "mug".into(),
                quantity: 2,
                unit_price_cents: 450,
            },
        ),
        Fact::Other,
        order(
            "o2",
            Event::OrderCreated {
                order_id: "o2".into(),
                customer: "c1".into(),
            },
        ),
        Fact::Catalog(Catalog::CustomerRenamed {
            customer_id: "c1".into(),
            name: "Ada L.".into(),
        }),
        order("o1", Event::OrderPlaced { total_cents: 900 }),
    ];
    facts
        .into_iter()
        .enumerate()
        .map(|(index, fact)| Positioned {
            position: index as u64 + 1,
            fact,
        })
        .collect()
}

fn at(position: u64) -> Positioned {
    story()
        .into_iter()
        .find(|event| event.position == position)
        .expect("the story has this position")
}

/// An event carrying nothing a view uses, at any position.
fn other(position: u64) -> Positioned {
    Positioned {
        position,
        fact: Fact::Other,
    }
}

/// The view and checkpoint after projecting the story's first `count` events in order.
fn projected(count: u64) -> (Details, u64) {
    let mut view = Details::default();
    let mut checkpoint = 0;
    for event in story().iter().take(count as usize) {
        project(&mut view, &mut checkpoint, event);
    }
    (view, checkpoint)
}

// ANCHOR: first_tests
#[test]
fn an_event_updates_the_view() {
    let (mut view, mut checkpoint) = projected(2);
    let step = project(&mut view, &mut checkpoint, &at(3));
    assert_eq!(
        step,
        Step::Applied(vec![RowKey {
            table: "orders",
            key: "o1".into()
        }]),
        "OrderCreated at the next position is applied and names the row it wrote"
    );
    let row = view.orders.get("o1").expect("the order's row exists");
    assert_eq!(
        row.customer_name.as_deref(),
        Some("Ada"),
        "the row carries the customer's name, copied in (denormalised)"
    );
}

#[test]
fn the_checkpoint_moves_to_the_applied_position() {
    let (mut view, mut checkpoint) = projected(2);
    project(&mut view, &mut checkpoint, &at(3));
    assert_eq!(
        checkpoint, 3,
        "after applying position 3 the checkpoint is 3"
    );
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let (mut view, mut checkpoint) = projected(4);
    let before = view.clone();
    let step = project(&mut view, &mut checkpoint, &at(4));
    assert_eq!(
        step,
        Step::Redelivered,
        "position 4 again, with the checkpoint at 4, is a redelivery"
    );
    assert_eq!(
        view, before,
        "a redelivered ItemAdded must not add the line twice"
    );
    assert_eq!(checkpoint, 4, "a redelivery leaves the checkpoint alone");
}
// ANCHOR_END: first_tests

#[test]
fn an_older_event_changes_nothing() {
    let (mut view, mut checkpoint) = projected(4);
    let before = view.clone();
    assert_eq!(
        project(&mut view, &mut checkpoint, &at(1)),
        Step::Redelivered,
        "position 1 with the checkpoint at 4 was applied long ago"
    );
    assert_eq!(view, before, "an old event changes no row");
    assert_eq!(
        checkpoint, 4,
        "an old event does not move the checkpoint back"
    );
}

#[test]
fn an_early_event_is_not_applied() {
    let (mut view, mut checkpoint) = projected(2);
    let before = view.clone();
    assert_eq!(
        project(&mut view, &mut checkpoint, &at(4)),
        Step::Early,
        "position 4 with the checkpoint at 2 would skip position 3"
    );
    assert_eq!(view, before, "an early event changes no row");
    assert_eq!(checkpoint, 2, "an early event does not move the checkpoint");
}

#[test]
fn an_event_the_view_ignores_still_moves_the_checkpoint() {
    let (mut view, mut checkpoint) = projected(4);
    let before = view.clone();
    assert_eq!(
        project(&mut view, &mut checkpoint, &at(5)),
        Step::Applied(Vec::new()),
        "an event of another stream is applied as a no-op: it changes no row"
    );
    assert_eq!(view, before, "nothing in the view changed");
    assert_eq!(
        checkpoint, 5,
        "its position is passed all the same, or the projection would wait for it for ever"
    );
}

// ANCHOR: gap_tests
#[test]
fn events_in_order_are_released_at_once() {
    let mut mark = HighWater::new(0, Millis(100));
    assert_eq!(mark.offer(Millis(0), other(1)), Offered::Held);
    assert_eq!(
        mark.release(Millis(0)),
        Some(Released::Event(other(1))),
        "the next position is released as soon as it is offered"
    );
    assert_eq!(mark.release(Millis(0)), None, "nothing else is there");
    assert_eq!(mark.checkpoint(), 1, "the mark has released up to 1");
}

#[test]
fn a_new_mark_starts_after_its_checkpoint() {
    let mut mark = HighWater::new(40, Millis(100));
    assert_eq!(
        mark.checkpoint(),
        40,
        "a mark restarted from 40 has released 40"
    );
    mark.offer(Millis(0), other(41));
    assert_eq!(
        mark.release(Millis(0)),
        Some(Released::Event(other(41))),
        "after checkpoint 40 the next position is 41"
    );
}

#[test]
fn an_event_past_a_gap_is_held() {
    let mut mark = HighWater::new(40, Millis(100));
    assert_eq!(mark.offer(Millis(0), other(42)), Offered::Held);
    assert_eq!(
        mark.release(Millis(0)),
        None,
        "42 is visible but 41 is not: releasing 42 would skip 41 for ever"
    );
    assert_eq!(mark.held(), 1, "42 waits behind the gap");
    assert_eq!(mark.checkpoint(), 40, "the mark stays at 40");
}

#[test]
fn a_gap_that_fills_releases_everything_in_order() {
    let mut mark = HighWater::new(40, Millis(100));
    mark.offer(Millis(0), other(43));
    mark.offer(Millis(1), other(42));
    mark.offer(Millis(2), other(41));
    let released: Vec<Released> = std::iter::from_fn(|| mark.release(Millis(3))).collect();
    assert_eq!(
        released,
        vec![
            Released::Event(other(41)),
            Released::Event(other(42)),
            Released::Event(other(43))
        ],
        "once 41 arrives, 41, 42 and 43 are released in position order"
    );
    assert_eq!(mark.deadline(), None, "no gap is left to wait for");
    assert_eq!(mark.held(), 0, "everything held was released");
}
// ANCHOR_END: gap_tests

#[test]
fn there_is_no_deadline_without_a_gap() {
    let mut mark = HighWater::new(0, Millis(100));
    assert_eq!(mark.deadline(), None, "an empty mark waits for nothing");
    mark.offer(Millis(5), other(1));
    assert_eq!(
        mark.deadline(),
        None,
        "the next position held is no gap: nothing is missing"
    );
    mark.offer(Millis(5), other(2));
    assert_eq!(mark.held(), 2, "1 and 2 are held until released");
    assert_eq!(mark.release(Millis(6)), Some(Released::Event(other(1))));
    assert_eq!(
        mark.deadline(),
        None,
        "after releasing 1, the event held first is 2, the next one: still no gap"
    );
}

#[test]
fn a_gap_that_times_out_is_declared_rolled_back() {
    let mut mark = HighWater::new(40, Millis(100));
    mark.offer(Millis(10), other(42));
    assert_eq!(
        mark.deadline(),
        Some(Millis(110)),
        "41 is missing since 10 ms; with a 100 ms wait it is given up at 110 ms"
    );
    assert_eq!(
        mark.release(Millis(109)),
        None,
        "at 109 ms 41 may still come"
    );
    assert_eq!(
        mark.release(Millis(110)),
        Some(Released::Gap { from: 41, to: 41 }),
        "at 110 ms 41 is declared a rolled-back transaction"
    );
    assert_eq!(
        mark.release(Millis(110)),
        Some(Released::Event(other(42))),
        "then 42 is released"
    );
    assert_eq!(mark.checkpoint(), 42, "the mark is past the gap");
}

#[test]
fn a_gap_of_several_positions_is_declared_at_once() {
    let mut mark = HighWater::new(0, Millis(50));
    mark.offer(Millis(0), other(4));
    assert_eq!(
        mark.release(Millis(50)),
        Some(Released::Gap { from: 1, to: 3 }),
        "1, 2 and 3 are one gap, declared together, up to the first held event"
    );
}

#[test]
fn the_gap_wait_starts_when_the_gap_is_first_seen() {
    let mut mark = HighWater::new(0, Millis(100));
    mark.offer(Millis(0), other(3));
    mark.offer(Millis(60), other(4));
    assert_eq!(
        mark.deadline(),
        Some(Millis(100)),
        "a later event behind the same gap does not restart its wait"
    );
}

#[test]
fn a_gap_exposed_by_a_release_waits_from_then() {
    let mut mark = HighWater::new(40, Millis(100));
    mark.offer(Millis(0), other(42));
    mark.offer(Millis(0), other(44));
    mark.offer(Millis(90), other(41));
    assert_eq!(mark.release(Millis(90)), Some(Released::Event(other(41))));
    assert_eq!(mark.release(Millis(90)), Some(Released::Event(other(42))));
    assert_eq!(
        mark.release(Millis(90)),
        None,
        "43 is missing now: 44 waits behind it"
    );
    assert_eq!(
        mark.deadline(),
        Some(Millis(190)),
        "43 gets the whole wait from when its gap showed (90 ms), not the rest of 41's"
    );
}

#[test]
fn a_redelivery_to_the_mark_is_dropped() {
    let mut mark = HighWater::new(0, Millis(100));
    mark.offer(Millis(0), other(1));
    mark.release(Millis(0));
    assert_eq!(
        mark.offer(Millis(1), other(1)),
        Offered::Redelivered,
        "1 was released already"
    );
    mark.offer(Millis(1), other(3));
    assert_eq!(
        mark.offer(Millis(2), other(3)),
        Offered::Redelivered,
        "3 is held already: a second copy is a redelivery"
    );
    assert_eq!(mark.held(), 1, "one copy of 3 is held");
}

#[test]
fn an_event_that_arrives_after_its_gap_was_declared_is_a_redelivery() {
    let mut mark = HighWater::new(0, Millis(10));
    mark.offer(Millis(0), other(2));
    mark.release(Millis(10));
    mark.release(Millis(10));
    assert_eq!(
        mark.offer(Millis(11), other(1)),
        Offered::Redelivered,
        "1 was declared rolled back: when it shows up late it is not applied out of order"
    );
    assert_eq!(mark.release(Millis(11)), None, "nothing is released for it");
}

#[test]
fn a_rebuild_equals_the_incremental_view() {
    let mut incremental = Details::default();
    let mut checkpoint = 0;
    let events = story();
    for (index, event) in events.iter().enumerate() {
        project(&mut incremental, &mut checkpoint, event);
        // The transport delivers the previous event again now and then.
        project(&mut incremental, &mut checkpoint, &events[index / 2]);
    }
    let rebuilt: Details = replay(&events);
    assert_eq!(
        incremental, rebuilt,
        "the view built live, with redeliveries, equals one clean replay from position zero"
    );
    let row = rebuilt.orders.get("o1").expect("o1 is in the view");
    assert_eq!(
        (
            row.customer_name.as_deref(),
            row.status.as_str(),
            row.total_cents
        ),
        (Some("Ada L."), "placed", 900),
        "the rename reached the row, and the order is placed at 900"
    );
}

/// A delivery of the story: every position at least once, some twice, each displaced by at most
/// `window` places from its position order.
fn delivery() -> impl Strategy<Value = Vec<u64>> {
    let count = story().len() as u64;
    (
        proptest::collection::vec(0u64..3, count as usize),
        proptest::collection::vec(any::<bool>(), count as usize),
    )
        .prop_map(move |(shifts, repeats)| {
            let mut keyed: Vec<(u64, u64)> = Vec::new();
            for position in 1..=count {
                let index = (position - 1) as usize;
                keyed.push((position + shifts[index], position));
                if repeats[index] {
                    keyed.push((position + 2, position));
                }
            }
            keyed.sort();
            keyed.into_iter().map(|(_, position)| position).collect()
        })
}

// ANCHOR: property
#[test]
fn any_repeating_reordering_delivery_equals_one_clean_replay() {
    check_property(200, 18, &delivery(), |order| {
        let mut mark = HighWater::new(0, Millis(1_000));
        let mut view = Details::default();
        let mut checkpoint = 0;
        for (tick, position) in order.iter().enumerate() {
            let now = Millis(tick as u64);
            mark.offer(now, at(*position));
            while let Some(released) = mark.release(now) {
                match released {
                    Released::Event(event) => {
                        project(&mut view, &mut checkpoint, &event);
                    }
                    Released::Gap { from, to } => prop_assert!(
                        false,
                        "invariant: no_false_gap: {from}..={to} declared missing, yet every \
                         position came within the wait (delivery {order:?})"
                    ),
                }
            }
        }
        let clean: Details = replay(&story());
        prop_assert_eq!(
            &view,
            &clean,
            "invariant: replay_equivalence: delivery {:?} left another view than one clean replay",
            order
        );
        prop_assert_eq!(
            checkpoint,
            story().len() as u64,
            "invariant: replay_equivalence: the checkpoint is not at the last position"
        );
        Ok(())
    });
}
// ANCHOR_END: property
