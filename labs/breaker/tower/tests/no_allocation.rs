//! The healthy path allocates nothing: not per call, not per flush.
//!
//! `allocation-counter` installs a counting global allocator in this test binary and
//! counts the allocations made on the current thread inside `measure`.
#![allow(clippy::unwrap_used)]

use breaker_core::{Config, Millis, Outcome};
use breaker_tower::Breaker;
use breaker_tower::clock::ManualClock;

#[test]
fn closed_state_acquire_and_record_do_not_allocate() {
    let breaker = Breaker::new(Config::default(), ManualClock::default()).unwrap();
    // Warm up: the window fills up and the thread gets its stripe.
    for _ in 0..1_000 {
        breaker
            .try_acquire()
            .unwrap()
            .record(Outcome::Success, Millis(1));
    }
    let info = allocation_counter::measure(|| {
        for _ in 0..10_000 {
            breaker
                .try_acquire()
                .unwrap()
                .record(Outcome::Success, Millis(1));
        }
        // A failure now and then takes the locked path; still no allocation.
        breaker
            .try_acquire()
            .unwrap()
            .record(Outcome::Failure, Millis(1));
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}
