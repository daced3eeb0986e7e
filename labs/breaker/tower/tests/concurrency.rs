//! Many tasks, one breaker: HalfOpen never admits more than its N trial calls, however
//! the threads interleave; and the lock-free healthy path loses no outcome.
//!
//! These run on a multi-threaded runtime with real parallelism (the interleavings are
//! the point), with time from a `ManualClock` so nothing depends on how fast they run.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use breaker_core::{Config, Millis, Outcome, State, WindowKind};
use breaker_tower::Breaker;
use breaker_tower::clock::ManualClock;
use tokio::sync::Barrier;

const TRIALS: u32 = 5;
const TASKS: usize = 64;

fn half_open_breaker(clock: &Arc<ManualClock>) -> Arc<Breaker> {
    let config = Config {
        window: WindowKind::CountBased { size: 4 },
        minimum_calls: 4,
        permitted_calls_in_half_open: TRIALS,
        wait_in_open: Millis(1_000),
        ..Config::default()
    };
    let breaker = Arc::new(Breaker::new(config, Arc::clone(clock)).unwrap());
    for _ in 0..4 {
        breaker
            .try_acquire()
            .unwrap()
            .record(Outcome::Failure, Millis(1));
    }
    clock.advance(Millis(1_000));
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker
}

// ANCHOR: invariant
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_never_admits_more_than_n_calls_at_once_under_contention() {
    let clock = Arc::new(ManualClock::default());
    let breaker = half_open_breaker(&clock);
    let admitted_now = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let admitted_total = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(TASKS));

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (breaker, start) = (Arc::clone(&breaker), Arc::clone(&start));
            let (now, most, total) = (
                Arc::clone(&admitted_now),
                Arc::clone(&most_at_once),
                Arc::clone(&admitted_total),
            );
            tokio::spawn(async move {
                start.wait().await;
                for _ in 0..200 {
                    // Hold the admission across a yield, then drop it unrecorded (a
                    // cancelled call): the slot comes back and someone else may take it.
                    if let Ok(admission) = breaker.try_acquire_owned() {
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(running, Ordering::SeqCst);
                        total.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        drop(admission);
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let most = most_at_once.load(Ordering::SeqCst);
    assert!(most <= TRIALS as usize, "{most} trial calls ran at once");
    assert!(
        admitted_total.load(Ordering::SeqCst) > TRIALS as usize,
        "slots were reused"
    );
    assert_eq!(breaker.state(), State::HalfOpen, "nothing was recorded");
}
// ANCHOR_END: invariant

#[test]
fn half_open_admits_exactly_n_when_nobody_lets_go() {
    let clock = Arc::new(ManualClock::default());
    let breaker = half_open_breaker(&clock);
    let admitted = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        let mut held = Vec::new();
        for _ in 0..8 {
            let (breaker, admitted) = (Arc::clone(&breaker), Arc::clone(&admitted));
            held.push(scope.spawn(move || {
                let mut mine = Vec::new();
                for _ in 0..1_000 {
                    if let Ok(admission) = breaker.try_acquire_owned() {
                        admitted.fetch_add(1, Ordering::SeqCst);
                        mine.push(admission);
                    }
                }
                // Keep them until every thread is done trying.
                mine
            }));
        }
        let all: Vec<_> = held.into_iter().flat_map(|h| h.join().unwrap()).collect();
        assert_eq!(all.len(), TRIALS as usize);
    });
    assert_eq!(admitted.load(Ordering::SeqCst), TRIALS as usize);
}

#[test]
fn the_lock_free_healthy_path_loses_no_outcome() {
    let config = Config {
        window: WindowKind::CountBased { size: 1_000 },
        minimum_calls: 1_000,
        ..Config::default()
    };
    let breaker = Arc::new(Breaker::new(config, ManualClock::default()).unwrap());
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let breaker = Arc::clone(&breaker);
            scope.spawn(move || {
                for call in 0..10_000 {
                    // One failure in a hundred: far below the threshold, so the breaker
                    // stays Closed and both paths (fast and locked) are exercised.
                    let outcome = if (call + thread) % 100 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    breaker.try_acquire().unwrap().record(outcome, Millis(1));
                }
            });
        }
    });
    let metrics = breaker.metrics();
    assert_eq!(metrics.core.state, State::Closed);
    assert_eq!(metrics.successes + metrics.failures, 40_000);
    assert_eq!(metrics.failures, 400);
    assert_eq!(metrics.stale, 0);
    assert_eq!(metrics.core.buffered_calls, 1_000);
}
