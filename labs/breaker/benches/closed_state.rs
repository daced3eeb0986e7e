//! The cost of a breaker when nothing is wrong: one admission plus one recorded success.
//!
//! That is the price every call pays forever, so it is the number that matters. The same
//! load runs through three breakers in the same process and the same run:
//!
//! - **ours** — [`breaker_tower::Breaker`]: a lock-free fast path in healthy Closed;
//! - **failsafe** — a `parking_lot::Mutex` around its state machine, locked per call;
//! - **recloser** — lock-free (epoch-based state swap plus a spin-locked ring buffer).
//!
//! Each side does "may I call? → it succeeded" with a window of 100 calls and no clock
//! read in the measured loop (failsafe's consecutive-failures policy and recloser read no
//! clock in Closed; ours takes the call's duration from the caller). With two threads,
//! both hammer one shared breaker; the figure is wall time divided by all calls made,
//! so perfect scaling would halve it and contention shows as growth.
//!
//! Only ours and the core alone keep a window on every call: failsafe's policy counts
//! consecutive failures (no window), recloser keeps a ring of the last 100 outcomes, and ours
//! batches healthy successes into its count window. `ours_time_window` is the case where ours
//! cannot batch: with a time-based window every outcome takes the lock and goes through the core.
//!
//! `cargo bench -p lab-breaker --bench closed_state`

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use breaker_core::{Config, Millis, Outcome, WindowKind};
use breaker_tower::Breaker;
use breaker_tower::clock::ManualClock;
use criterion::{Criterion, criterion_group, criterion_main};

/// One healthy call through each breaker.
trait HealthyCall: Send + Sync {
    fn healthy_call(&self);
}

fn ours() -> Breaker {
    let config = Config {
        window: WindowKind::CountBased { size: 100 },
        ..Config::default()
    };
    Breaker::new(config, ManualClock::default()).expect("valid config")
}

/// Ours over a 10-second time-based window: outcomes cannot be batched (they would be filed
/// under the wrong second), so every call takes the lock and runs the core.
fn ours_time_window() -> Breaker {
    let config = Config {
        window: WindowKind::TimeBased { seconds: 10 },
        ..Config::default()
    };
    Breaker::new(config, ManualClock::default()).expect("valid config")
}

impl HealthyCall for Breaker {
    #[inline]
    fn healthy_call(&self) {
        if let Ok(admission) = self.try_acquire() {
            admission.record(black_box(Outcome::Success), black_box(Millis(1)));
        }
    }
}

type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    (),
>;

fn failsafe() -> Failsafe {
    let policy = failsafe::failure_policy::consecutive_failures(
        100,
        failsafe::backoff::constant(Duration::from_secs(30)),
    );
    failsafe::StateMachine::new(policy, ())
}

impl HealthyCall for Failsafe {
    #[inline]
    fn healthy_call(&self) {
        if self.is_call_permitted() {
            self.on_success();
        }
    }
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .build()
}

impl HealthyCall for recloser::Recloser {
    #[inline]
    fn healthy_call(&self) {
        let _ = black_box(self.call(|| black_box(Ok::<(), ()>(()))));
    }
}

fn on_threads<B: HealthyCall + 'static>(breaker: &Arc<B>, threads: usize, iters: u64) -> Duration {
    let start_line = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (breaker, start_line) = (Arc::clone(breaker), Arc::clone(&start_line));
            std::thread::spawn(move || {
                start_line.wait();
                for _ in 0..iters {
                    breaker.healthy_call();
                }
            })
        })
        .collect();
    start_line.wait();
    let started = Instant::now();
    for worker in workers {
        worker.join().expect("bench thread");
    }
    // Per call: all calls made by all threads share the wall time.
    started.elapsed() / threads as u32
}

fn closed_state(c: &mut Criterion) {
    let mut single = c.benchmark_group("closed_state/1_thread");
    let ours = ours();
    single.bench_function("ours", |b| b.iter(|| ours.healthy_call()));
    let ours_time = ours_time_window();
    single.bench_function("ours_time_window", |b| b.iter(|| ours_time.healthy_call()));
    let failsafe = failsafe();
    single.bench_function("failsafe", |b| b.iter(|| failsafe.healthy_call()));
    // For reference: the pure core alone, `&mut`, no sharing at all.
    let mut core = breaker_core::CircuitBreaker::new(Config {
        window: WindowKind::CountBased { size: 100 },
        emit_call_events: false,
        ..Config::default()
    })
    .expect("valid config");
    single.bench_function("core_alone", |b| {
        b.iter(|| {
            if let Ok(permit) = core.try_acquire(black_box(Millis(1))) {
                let _ = core.on_outcome(Millis(1), permit, Outcome::Success, black_box(Millis(1)));
            }
        })
    });
    let recloser = recloser();
    single.bench_function("recloser", |b| b.iter(|| recloser.healthy_call()));
    single.finish();

    let mut shared = c.benchmark_group("closed_state/2_threads");
    let ours = Arc::new(self::ours());
    shared.bench_function("ours", |b| {
        b.iter_custom(|iters| on_threads(&ours, 2, iters))
    });
    let ours_time = Arc::new(ours_time_window());
    shared.bench_function("ours_time_window", |b| {
        b.iter_custom(|iters| on_threads(&ours_time, 2, iters))
    });
    let failsafe = Arc::new(self::failsafe());
    shared.bench_function("failsafe", |b| {
        b.iter_custom(|iters| on_threads(&failsafe, 2, iters))
    });
    let recloser = Arc::new(self::recloser());
    shared.bench_function("recloser", |b| {
        b.iter_custom(|iters| on_threads(&recloser, 2, iters))
    });
    shared.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = closed_state
}
criterion_main!(benches);
