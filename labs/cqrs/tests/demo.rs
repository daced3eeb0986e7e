//! The narrated demo, run as a reader runs it (`cargo run -p lab-cqrs`, here without pauses
//! and with `NO_COLOR`): every step prints, the output has no colour codes, and the outcomes the
//! narration claims hold (fresh with the token, nothing lost or twice after the restart, the
//! rebuild equal to the live view, the gap held then declared).

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn the_demo_narrates_every_step_in_plain_text() {
    let output = Command::new(env!("CARGO_BIN_EXE_lab-cqrs"))
        .args(["--pace", "0"])
        .env("NO_COLOR", "1")
        .env_remove("NATS_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains('\u{1b}'),
        "NO_COLOR: no escape codes\n{text}"
    );
    for line in [
        "A burst of 120 orders",
        "order-details",
        "customer-summary",
        "read-freshness: fresh",
        "nothing lost, nothing twice",
        "the summary file counts 240",
        "equal to the live view: true",
        "→ applied 41  → applied 42",
        "43..=43 declared rolled back  → applied 44",
    ] {
        assert!(text.contains(line), "the demo should say {line:?}\n{text}");
    }
}
