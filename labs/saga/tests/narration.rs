//! Snapshots of the demo's narration: the sequence a learner sees for a saga that fails at
//! inventory, orchestrated and choreographed, with the closing balances.
//!
//! The narration is the lab's user interface, so a change to it should be a decision, not an
//! accident: `cargo insta review` shows the new sequence next to the accepted one. Each run is
//! deterministic: in-memory databases, the in-process transport and bus, tokio's paused clock
//! on one thread (backoffs and polls take no real time and interleave the same way every run),
//! and colours stripped so the snapshot is plain text.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use lab_saga::bus::Bus;
use lab_saga::choreography::{self, Choreography, EventNarrator};
use lab_saga::narration;
use lab_saga::order::Narrator;
use lab_saga::system::{Options, Place, Seed, System, order_line};
use parking_lot::Mutex;

/// Out of stock: one unit on the shelf, two ordered.
fn out_of_stock() -> Seed {
    Seed {
        stock: 1,
        ..Seed::default()
    }
}

/// Removes terminal colour codes (`ESC [ … m`): the snapshot records what is said, not how
/// it is painted.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for code in chars.by_ref() {
                if code.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines written by the narrator, in order.
#[derive(Clone, Default)]
struct Transcript(Arc<Mutex<Vec<String>>>);

impl Transcript {
    /// Records `text` without colours or trailing spaces (the lane header pads its last lane).
    fn push(&self, text: String) {
        let text = plain(&text);
        let mut lines = self.0.lock();
        lines.extend(text.split('\n').map(|line| line.trim_end().to_owned()));
    }

    fn text(&self) -> String {
        self.0.lock().join("\n")
    }
}

#[tokio::test(start_paused = true)]
async fn orchestration_out_of_stock_refunds_then_cancels() {
    let transcript = Transcript::default();
    let writer = transcript.clone();
    let narrator: Narrator = Arc::new(move |note| {
        if let Some(line) = narration::orchestrator_line(note) {
            writer.push(line);
        }
    });
    let system = System::start(
        &Place::Memory,
        Some(&out_of_stock()),
        Options {
            narrator: Some(narrator),
            ..Options::default()
        },
    )
    .unwrap();
    transcript.push(narration::header());
    system
        .order
        .run_order(&order_line("order-1", 2))
        .await
        .unwrap();
    transcript.push(narration::balances(
        &system.balances("order-1").unwrap(),
        "order-1",
    ));
    insta::assert_snapshot!(transcript.text());
}

#[tokio::test(start_paused = true)]
async fn choreography_out_of_stock_publishes_stock_failed_then_refund() {
    let system = System::start(
        &Place::Memory,
        Some(&out_of_stock()),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    let transcript = Transcript::default();
    let writer = transcript.clone();
    let narrator: EventNarrator = Arc::new(move |service, message| {
        writer.push(narration::event_line(service, &message.event));
    });
    // Always the in-process bus: a snapshot must not depend on NATS_URL.
    let choreography = Choreography::start(&system, Bus::in_process(), Some(narrator))
        .await
        .unwrap();
    transcript.push(narration::header());
    choreography.place(&order_line("order-1", 2)).unwrap();
    choreography.settle("order-1", 2_000).await;
    // Let the relays narrate the last events (paused clock: no real wait).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(choreography.dead_letters().is_empty());
    transcript.push(narration::balances(
        &system.balances("order-1").unwrap(),
        "order-1",
    ));
    insta::assert_snapshot!(transcript.text());
}
