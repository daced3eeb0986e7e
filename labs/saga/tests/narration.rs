//! Snapshots of the demo's narration: the sequence a learner sees for a saga that fails at
//! inventory and for one that is approved (its money captured after the pivot), orchestrated
//! and choreographed, with the closing balances; and a saga stopped for an operator that
//! is resumed.
//!
//! The narration is the lab's user interface, so a change to it should be a decision, not an
//! accident: `cargo insta review` shows the new sequence next to the accepted one. Each run is
//! deterministic: in-memory databases, the in-process transport and bus, tokio's paused clock
//! on one thread (backoffs and polls take no real time and interleave the same way every run),
//! and the plain palette, so the snapshot is plain text (and proves the plain palette paints
//! nothing).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use lab_saga::bus::Bus;
use lab_saga::choreography::{self, Choreography, EventNarrator};
use lab_saga::narration::{self, Palette};
use lab_saga::order::{CrashPlan, Narrator};
use lab_saga::system::{Options, Place, Seed, System, order_line};
use parking_lot::Mutex;
use saga_core::{OrderStatus, SagaOutcome};

/// Out of stock: one unit on the shelf, two ordered.
fn out_of_stock() -> Seed {
    Seed {
        stock: 1,
        ..Seed::default()
    }
}

/// Lines written by the narrator, in order, and a signal each time some are added.
#[derive(Clone)]
struct Transcript {
    lines: Arc<Mutex<Vec<String>>>,
    added: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript {
            lines: Arc::default(),
            added: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl Transcript {
    /// Records `text` without trailing spaces (the lane header pads its last lane); it must
    /// carry no colour codes.
    fn push(&self, text: String) {
        assert!(
            !text.contains('\u{1b}'),
            "the plain palette paints: {text:?}"
        );
        let mut lines = self.lines.lock();
        lines.extend(text.split('\n').map(|line| line.trim_end().to_owned()));
        self.added.send_replace(lines.len());
    }

    fn text(&self) -> String {
        self.lines.lock().join("\n")
    }

    /// How many lines are written so far.
    fn len(&self) -> usize {
        self.lines.lock().len()
    }

    /// The lines from the `from`-th on.
    fn text_from(&self, from: usize) -> String {
        self.lines.lock()[from..].join("\n")
    }

    /// Waits until a line containing `needle` has been written.
    async fn wait_for(&self, needle: &str) {
        let mut added = self.added.subscribe();
        added
            .wait_for(|_| self.text().contains(needle))
            .await
            .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn orchestration_out_of_stock_refunds_then_cancels() {
    let transcript = Transcript::default();
    let writer = transcript.clone();
    let narrator: Narrator = Arc::new(move |note| {
        if let Some(line) = narration::orchestrator_line(note, Palette::PLAIN) {
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
        Palette::PLAIN,
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
        writer.push(narration::event_line(
            service,
            &message.event,
            Palette::PLAIN,
        ));
    });
    // Always the in-process bus: a snapshot must not depend on NATS_URL.
    let choreography = Choreography::start(&system, Bus::in_process(), Some(narrator))
        .await
        .unwrap();
    transcript.push(narration::header());
    choreography.place(&order_line("order-1", 2)).unwrap();
    assert_eq!(
        choreography.settle("order-1", 2_000).await,
        OrderStatus::Cancelled
    );
    // The last event's line is written by payment's relay right after it publishes.
    transcript.wait_for("publishes PaymentRefunded").await;
    assert!(choreography.dead_letters().is_empty());
    transcript.push(narration::balances(
        &system.balances("order-1").unwrap(),
        "order-1",
        Palette::PLAIN,
    ));
    insta::assert_snapshot!(transcript.text());
}

/// An orchestrated system whose narration goes to a new transcript.
fn narrated_orchestration(seed: &Seed) -> (System, Transcript) {
    let transcript = Transcript::default();
    let writer = transcript.clone();
    let narrator: Narrator = Arc::new(move |note| {
        if let Some(line) = narration::orchestrator_line(note, Palette::PLAIN) {
            writer.push(line);
        }
    });
    let system = System::start(
        &Place::Memory,
        Some(seed),
        Options {
            narrator: Some(narrator),
            ..Options::default()
        },
    )
    .unwrap();
    (system, transcript)
}

#[tokio::test(start_paused = true)]
async fn orchestration_approved_shows_the_money_captured_not_held() {
    let (system, transcript) = narrated_orchestration(&Seed::default());
    transcript.push(narration::header());
    system
        .order
        .run_order(&order_line("order-1", 2))
        .await
        .unwrap();
    transcript.push(narration::balances(
        &system.balances("order-1").unwrap(),
        "order-1",
        Palette::PLAIN,
    ));
    let text = transcript.text();
    assert!(
        text.contains("money held        0 cents") && text.contains("money captured    5000 cents"),
        "an approved order's money is captured, not held:\n{text}"
    );
    insta::assert_snapshot!(text);
}

#[tokio::test(start_paused = true)]
async fn choreography_approved_captures_after_shipping_then_approves() {
    let system = System::start(
        &Place::Memory,
        Some(&Seed::default()),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    let transcript = Transcript::default();
    let writer = transcript.clone();
    let narrator: EventNarrator = Arc::new(move |service, message| {
        writer.push(narration::event_line(
            service,
            &message.event,
            Palette::PLAIN,
        ));
    });
    let choreography = Choreography::start(&system, Bus::in_process(), Some(narrator))
        .await
        .unwrap();
    transcript.push(narration::header());
    choreography.place(&order_line("order-1", 2)).unwrap();
    assert_eq!(
        choreography.settle("order-1", 2_000).await,
        OrderStatus::Approved
    );
    transcript.wait_for("publishes PaymentCaptured").await;
    transcript.push(narration::balances(
        &system.balances("order-1").unwrap(),
        "order-1",
        Palette::PLAIN,
    ));
    let text = transcript.text();
    assert!(
        text.contains("money held        0 cents") && text.contains("money captured    5000 cents"),
        "an approved order's money is captured, not held:\n{text}"
    );
    insta::assert_snapshot!(text);
}

#[tokio::test(start_paused = true)]
async fn a_resumed_saga_is_narrated() {
    // Out of stock, so the saga compensates; payment is down for the whole compensation
    // window, so the refund never goes through and the saga stops for an operator.
    let (system, transcript) = narrated_orchestration(&Seed {
        stock: 1,
        ..Seed::default()
    });
    system.order.crash_at(CrashPlan {
        after_reply: Some(1),
        ..CrashPlan::default()
    });
    assert!(
        system
            .order
            .run_order(&order_line("order-1", 2))
            .await
            .is_err()
    );
    system.order.crash_at(CrashPlan::default());
    system
        .payment
        .faults
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        system.order.resume_unfinished().await.unwrap(),
        vec![("order-1".to_owned(), SagaOutcome::NeedsAttention)]
    );
    // Payment is back; the operator resumes the saga. Only what follows is the snapshot.
    system
        .payment
        .faults
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let stopped = transcript.len();
    assert_eq!(
        system.order.resume_saga("order-1").await.unwrap(),
        SagaOutcome::Compensated
    );
    transcript.push(narration::balances(
        &system.balances("order-1").unwrap(),
        "order-1",
        Palette::PLAIN,
    ));
    let after = transcript.text_from(stopped);
    assert!(
        after.contains("saga resumed"),
        "the resume is narrated:\n{after}"
    );
    let before = transcript.lines.lock()[..stopped].join("\n");
    assert!(
        before.contains("the compensation of reserve_payment keeps failing: NEEDS ATTENTION"),
        "the stop names its step:\n{before}"
    );
    insta::assert_snapshot!(after);
}
