//! The core's ungraded behaviour: facts decoded from recorded events, the two views, the
//! projector as a `Machine` (with the gap's timer, on the script driver), read-your-writes
//! waits, and the rebuild's phases; and the property over both views.

#![allow(clippy::unwrap_used)]

use cqrs_core::consistency::{Answer, Input as WaitInput};
use cqrs_core::projector::{Input, Output};
use cqrs_core::rebuild::{Event as RebuildEvent, Phase, RebuildError};
use cqrs_core::{
    Catalog, Details, Fact, Freshness, Machine, Millis, Positioned, Projector, RowKey, Summary,
    View, Waits, replay,
};
use event_sourcing_core::{Event, Recorded, encode};
use lab_test_support::check_property;
use proptest::prelude::*;
use sansio_core::script::{Step, run};

fn recorded(position: u64, stream: &str, event: event_sourcing_core::NewEvent) -> Recorded {
    Recorded {
        position,
        stream: stream.to_owned(),
        version: 1,
        event_id: event.event_id,
        event_type: event.event_type,
        schema: event.schema,
        data: event.data,
    }
}

fn order(id: &str, event: Event) -> Fact {
    Fact::Order {
        order_id: id.to_owned(),
        event,
    }
}

fn created(id: &str, customer: &str) -> Fact {
    order(
        id,
        Event::OrderCreated {
            order_id: id.into(),
            customer: customer.into(),
        },
    )
}

fn positioned(facts: Vec<Fact>) -> Vec<Positioned> {
    facts
        .into_iter()
        .enumerate()
        .map(|(index, fact)| Positioned {
            position: index as u64 + 1,
            fact,
        })
        .collect()
}

#[test]
fn recorded_events_decode_by_their_stream() {
    let event = Event::ItemAdded {
        sku: "mug".into(),
        quantity: 1,
        unit_price_cents: 5,
    };
    let decoded = Positioned::decode(&recorded(7, "order-o1", encode(&event, "e1"))).unwrap();
    assert_eq!(decoded.fact, order("o1", event));
    let rename = Catalog::CustomerRenamed {
        customer_id: "c1".into(),
        name: "Bo".into(),
    };
    let decoded = Positioned::decode(&recorded(8, &rename.stream(), rename.encode("e2"))).unwrap();
    assert_eq!(decoded.fact, Fact::Catalog(rename));
    let placed = encode(&Event::OrderPlaced { total_cents: 5 }, "e3");
    assert_eq!(
        Positioned::decode(&recorded(9, "audit-1", placed.clone()))
            .unwrap()
            .fact,
        Fact::Other
    );
    let mut broken = recorded(10, "customer-c1", placed);
    broken.data = serde_json::json!({ "nope": 1 });
    let error = Positioned::decode(&broken).unwrap_err();
    assert_eq!(error.position, 10, "the error names the event's position");
}

#[test]
fn a_rename_rewrites_every_row_that_shows_the_name() {
    let events = positioned(vec![
        created("o1", "c1"),
        created("o2", "c1"),
        created("o3", "c2"),
        Fact::Catalog(Catalog::CustomerRegistered {
            customer_id: "c1".into(),
            name: "Ada".into(),
        }),
    ]);
    let mut view: Details = replay(&events[..3]);
    let rows = view.apply(&events[3].fact);
    let key = |table, key: &str| RowKey {
        table,
        key: key.into(),
    };
    assert_eq!(
        rows,
        vec![
            key("customers", "c1"),
            key("orders", "o1"),
            key("orders", "o2")
        ],
        "a name that arrives after the orders fills in both of c1's rows"
    );
    assert_eq!(view.orders["o3"].customer_name, None);
}

#[test]
fn the_summary_counts_each_order_once_by_its_outcome() {
    let events = positioned(vec![
        created("o1", "c1"),
        created("o2", "c1"),
        order("o1", Event::OrderPlaced { total_cents: 900 }),
        order("o1", Event::OrderPlaced { total_cents: 900 }),
        order(
            "o2",
            Event::OrderCancelled {
                reason: "changed my mind".into(),
            },
        ),
        order("o9", Event::OrderPlaced { total_cents: 5 }),
    ]);
    let view: Summary = replay(&events);
    let summary = &view.customers["c1"];
    assert_eq!(
        (
            summary.open,
            summary.placed,
            summary.cancelled,
            summary.spent_cents
        ),
        (0, 1, 1, 900),
        "a second OrderPlaced of the same order (a different event, not a redelivery) is not counted twice"
    );
}

#[test]
fn a_view_restored_from_its_rows_equals_the_view() {
    let events = positioned(vec![
        Fact::Catalog(Catalog::ProductListed {
            sku: "mug".into(),
            name: "Mug".into(),
        }),
        created("o1", "c1"),
        order(
            "o1",
            Event::ItemAdded {
                sku: "mug".into(),
                quantity: 2,
                unit_price_cents: 3,
            },
        ),
    ]);
    let mut view = Details::default();
    let mut rows = Vec::new();
    for event in &events {
        rows.extend(view.apply(&event.fact));
    }
    let mut restored = Details::default();
    for key in rows {
        let row = view.row(&key).unwrap();
        restored.restore(key, row).unwrap();
    }
    assert_eq!(
        restored, view,
        "the rows a view names are all it needs to come back"
    );
    assert_eq!(restored.orders["o1"].total_cents, 6);
}

#[test]
fn the_projector_waits_for_a_gap_then_declares_it() {
    let events = positioned(vec![
        created("o1", "c1"),
        created("o2", "c1"),
        created("o3", "c2"),
    ]);
    let mut projector = Projector::new(Details::default(), 0, Millis(100));
    let timeline = run(
        &mut projector,
        [
            Step::Input(Millis(0), Input::Deliver(events[0].clone())),
            Step::Input(Millis(10), Input::Deliver(events[2].clone())),
            Step::Input(Millis(20), Input::Deliver(events[0].clone())),
            Step::AdvanceTo(Millis(500)),
        ],
    );
    let outputs: Vec<(Millis, Output)> = timeline.outputs;
    assert_eq!(
        outputs,
        vec![
            (
                Millis(0),
                Output::Applied {
                    position: 1,
                    rows: vec![RowKey {
                        table: "orders",
                        key: "o1".into()
                    }]
                }
            ),
            (Millis(20), Output::Redelivered { position: 1 }),
            (Millis(110), Output::GapDeclared { from: 2, to: 2 }),
            (
                Millis(110),
                Output::Applied {
                    position: 3,
                    rows: vec![RowKey {
                        table: "orders",
                        key: "o3".into()
                    }]
                }
            ),
        ],
        "1 applied, its redelivery acknowledged, 2 given up at 10 + 100 ms, then 3 applied"
    );
    assert_eq!(projector.checkpoint(), 3);
    assert!(!projector.view().orders.contains_key("o2"));
}

#[test]
fn a_query_with_a_token_waits_for_it_or_answers_stale() {
    let mut waits = Waits::new(5, Millis(200));
    let timeline = run(
        &mut waits,
        [
            Step::Input(Millis(0), WaitInput::Wait { id: 1, token: 4 }),
            Step::Input(Millis(0), WaitInput::Wait { id: 2, token: 7 }),
            Step::Input(Millis(0), WaitInput::Wait { id: 3, token: 9 }),
            Step::Input(Millis(50), WaitInput::Reached(7)),
            Step::AdvanceTo(Millis(300)),
        ],
    );
    assert_eq!(
        timeline.outputs,
        vec![
            (
                Millis(0),
                Answer {
                    id: 1,
                    freshness: Freshness::Fresh { checkpoint: 5 }
                }
            ),
            (
                Millis(50),
                Answer {
                    id: 2,
                    freshness: Freshness::Fresh { checkpoint: 7 }
                }
            ),
            (
                Millis(200),
                Answer {
                    id: 3,
                    freshness: Freshness::Stale {
                        checkpoint: 7,
                        token: 9
                    }
                }
            ),
        ],
        "a reached token answers at once, a coming one when reached, a far one stale at the bound"
    );
    assert_eq!(waits.waiting(), 0);
}

#[test]
fn a_rebuild_builds_catches_up_switches_and_drops() {
    let phase = Phase::Idle { serving: 1 };
    let phase = phase.next(RebuildEvent::Start { head: 100 }).unwrap();
    assert_eq!(
        phase,
        Phase::Building {
            serving: 1,
            building: 2,
            at: 0,
            target: 100
        }
    );
    assert_eq!(
        phase.next(RebuildEvent::Start { head: 100 }),
        Err(RebuildError::AlreadyRebuilding)
    );
    let phase = phase
        .next(RebuildEvent::Progress { at: 60, live: 110 })
        .unwrap();
    assert_eq!(
        phase.serving(),
        1,
        "the old generation serves while the new one builds"
    );
    let phase = phase
        .next(RebuildEvent::Progress { at: 100, live: 120 })
        .unwrap();
    assert!(matches!(phase, Phase::CatchingUp { at: 100, .. }));
    let phase = phase
        .next(RebuildEvent::Progress { at: 120, live: 120 })
        .unwrap();
    assert_eq!(
        phase,
        Phase::Switching {
            serving: 1,
            building: 2
        }
    );
    assert_eq!(
        phase.next(RebuildEvent::Dropped),
        Err(RebuildError::OutOfTurn)
    );
    let phase = phase.next(RebuildEvent::Switched).unwrap();
    assert_eq!(phase, Phase::Dropping { serving: 2, old: 1 });
    let phase = phase.next(RebuildEvent::Dropped).unwrap();
    assert_eq!(phase, Phase::Idle { serving: 2 });
    assert!(!phase.is_running());
}

/// A history of orders over three customers and two products, with renames.
fn history() -> impl Strategy<Value = Vec<Fact>> {
    let fact = (0u8..7, 0u8..4, 0u8..3, 1u32..4).prop_map(|(kind, o, c, q)| {
        let order_id = format!("o{o}");
        let customer = format!("c{c}");
        let sku = format!("p{}", c % 2);
        match kind {
            0 => created(&order_id, &customer),
            1 => order(
                &order_id,
                Event::ItemAdded {
                    sku,
                    quantity: q,
                    unit_price_cents: 100,
                },
            ),
            2 => order(&order_id, Event::QuantityUpdated { sku, quantity: q }),
            3 => order(&order_id, Event::OrderPlaced { total_cents: 100 }),
            4 => Fact::Catalog(Catalog::CustomerRenamed {
                customer_id: customer,
                name: format!("name{q}"),
            }),
            5 => Fact::Catalog(Catalog::ProductRenamed {
                sku,
                name: format!("product{q}"),
            }),
            _ => Fact::Other,
        }
    });
    proptest::collection::vec(fact, 1..30)
}

/// A delivery of `count` positions: each once or twice, displaced by at most 3 places.
fn delivery_of(count: usize) -> impl Strategy<Value = Vec<u64>> {
    (
        proptest::collection::vec(0u64..4, count),
        proptest::collection::vec(any::<bool>(), count),
    )
        .prop_map(|(shifts, repeats)| {
            let mut keyed = Vec::new();
            for (index, (shift, repeat)) in shifts.iter().zip(&repeats).enumerate() {
                let position = index as u64 + 1;
                keyed.push((position + shift, position));
                if *repeat {
                    keyed.push((position + 3, position));
                }
            }
            keyed.sort();
            keyed.into_iter().map(|(_, position)| position).collect()
        })
}

fn project_all<V: View>(events: &[Positioned], order: &[u64]) -> (V, u64) {
    let mut projector = Projector::new(V::default(), 0, Millis(1_000));
    for (tick, position) in order.iter().enumerate() {
        let event = events[*position as usize - 1].clone();
        projector
            .handle_input(Millis(tick as u64), Input::Deliver(event))
            .unwrap();
        while projector.poll_output().is_some() {}
    }
    (projector.view().clone(), projector.checkpoint())
}

#[test]
fn every_view_fed_a_repeating_reordering_delivery_equals_one_clean_replay() {
    let case = history().prop_flat_map(|facts| {
        let count = facts.len();
        (Just(facts), delivery_of(count))
    });
    check_property(200, 18, &case, |(facts, order)| {
        let events = positioned(facts);
        let (details, at) = project_all::<Details>(&events, &order);
        prop_assert_eq!(&details, &replay::<Details>(&events), "details differ");
        prop_assert_eq!(at, events.len() as u64);
        let (summary, _) = project_all::<Summary>(&events, &order);
        prop_assert_eq!(&summary, &replay::<Summary>(&events), "summaries differ");
        Ok(())
    });
}
