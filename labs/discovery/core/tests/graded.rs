//! The graded tests of the Discovery lab: the specification of the graded module.
//!
//! `cargo xtask grade discovery` runs them against the learner's copy (`--features exercise`);
//! `cargo test -p discovery-core --test graded` against the reference. Every assertion says what it
//! checks and why, so a failure reads as a sentence.

use discovery_core::{Fired, Input, Machine, Millis, Timer, due_at};

// ANCHOR: fires_test
#[test]
fn an_armed_timer_fires_once_at_its_deadline() {
    let mut timer = Timer::new();
    timer
        .handle_input(Millis(100), Input::Arm { after: Millis(50) })
        .expect("a 50 ms delay is valid");
    assert_eq!(
        timer.poll_timeout(),
        Some(Millis(150)),
        "armed at 100 ms for 50 ms, the timer wants the clock at 150 ms"
    );
    timer.handle_timeout(Millis(149));
    assert_eq!(
        timer.poll_output(),
        None,
        "at 149 ms the deadline has not passed"
    );
    timer.handle_timeout(Millis(160));
    assert_eq!(
        timer.poll_output(),
        Some(Fired { at: Millis(150) }),
        "a late callback reports the deadline, not the late time"
    );
    assert_eq!(
        timer.poll_timeout(),
        None,
        "a one-shot timer wants nothing more"
    );
    assert_eq!(
        due_at(Millis(u64::MAX - 1), Millis(5)),
        Millis(u64::MAX),
        "a deadline past the end of time saturates instead of wrapping to the past"
    );
}
// ANCHOR_END: fires_test
