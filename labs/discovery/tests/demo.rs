//! The narrated demo: its story (a killed instance keeps its share until its TTL runs out, a
//! new one is in use after one watch wake, two choices starves the slow instance) and its
//! plain output in a pipe.

use std::process::Command;

use lab_discovery::demo;
use lab_runtime::{Narrator, Palette};

#[test]
fn the_demo_tells_crash_join_and_slow_instance_stories() {
    let (lines, summary) = demo::run(Narrator::new(Palette::PLAIN));
    assert_eq!(
        summary.evicted_at,
        Some(16_001),
        "user-2's last heartbeat was at 6 s with a 10 s TTL: it leaves the passing list at 16.001 s"
    );
    assert!(
        summary.lost > 20,
        "between the crash at 7 s and the eviction, round-robin still sent it a third of the calls: {}",
        summary.lost
    );
    assert_eq!(
        summary.joined_at,
        Some(20_000),
        "user-4 registered at 20 s and got its first call on the same tick, after one wake"
    );
    assert!(
        summary.slow_share.1 * 5 < summary.slow_share.0,
        "two choices sends the slow instance far less than round-robin: {:?}",
        summary.slow_share
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("16.001s  order       watch woke")),
        "the eviction is on the timeline"
    );
}

#[test]
fn the_demo_prints_plain_text_in_a_pipe() {
    let output = Command::new(env!("CARGO_BIN_EXE_lab-discovery"))
        .env("NO_COLOR", "1")
        .env_remove("LAB_ROLE")
        .output()
        .expect("the demo runs");
    assert!(output.status.success(), "the demo exits cleanly");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(!text.contains('\u{1b}'), "no colour codes in a pipe");
    let expected = [
        "     7.000s  user-2      killed: no more heartbeats, no more answers",
        "    16.001s  order       watch woke (index 8): passing [\"user-1\", \"user-3\"]",
        "    20.000s  order       first call to user-4",
        "    round-robin  user-3 got 100 of 300 calls",
        "    user-2 crashed at 7s, left the passing list at 16.001s: 30 calls lost in between",
    ];
    for line in expected {
        assert!(
            text.lines().any(|l| l == line),
            "the transcript has {line:?}:\n{text}"
        );
    }
}
