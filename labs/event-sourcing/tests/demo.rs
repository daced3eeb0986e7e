//! The narrated demo's plain output (`NO_COLOR`, a pipe): every step is told, the clerks'
//! conflict and retry, time travel, the upcast, the snapshot's equal state, and the crash
//! with nothing lost, torn or gapped.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use lab_test_support::transcript::Transcript;

#[test]
fn the_demo_tells_an_orders_life_and_its_store_survives_the_crash() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lab-event-sourcing"));
    command.args(["--events", "2000"]).env("NO_COLOR", "1");
    let (transcript, status) = Transcript::run(command);
    assert!(status.success(), "{}", transcript.text());
    let text = transcript.durations().into_text();
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes on a pipe with NO_COLOR:\n{text}"
    );
    for line in [
        "1. An order's life, as events (each line: version, event, state after it)",
        "    shop     v1  OrderCreated { order 42, customer ada }      → open · no items · 0.00",
        "    shop     v4  QuantityUpdated { BOOK → 3 }                 → open · BOOK×3 PEN×1 · 47.50",
        "    both clerks loaded version 4 (open · BOOK×3 PEN×1 · 47.50)",
        "  ← 409 Conflict  clerk-2: expected version 4 but the stream is at version 5",
        "    clerk-2  v6  ItemRemoved { PEN }                          → open · BOOK×3 INK×2 · 53.00",
        "    shop     v7  OrderPlaced { total 53.00 }                  → placed · BOOK×3 INK×2 · 53.00",
        "    version 3   open · BOOK×2 PEN×1 · 32.50",
        "    version 7   placed · BOOK×3 INK×2 · 53.00",
        "    stored  QuantityUpdated schema 1  {\"product\":\"BOOK\",\"qty\":5}",
        "    read as QuantityUpdated { BOOK → 5 }  (schema 2: sku, quantity)",
        "5. A stream of 2000 events, loaded with and without a snapshot",
        "    without a snapshot: folded 2000 events in [duration]",
        "    with a snapshot at version 1990: folded 10 events in [duration]",
        "    same state either way: yes",
        "      acknowledged batches missing: 0",
        "      torn batches (part of a batch written): 0",
        "      streams with a gap in their versions: 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{text}"
        );
    }
    assert!(text.contains("no gap"), "{text}");
}
