//! A quick, dependency-free measurement of the closed-path cost (acquire + record).
//!
//! `cargo run --release -p breaker-core --example closed_path` prints nanoseconds per call.
//! The lab's criterion benchmark (`cargo bench -p lab-breaker`) is the real comparison with
//! failsafe and recloser; this example exists so the core's own cost can be checked in a
//! second, without the service side. It reads the wall clock, which the core itself never does.

use std::hint::black_box;
use std::time::Instant;

use breaker_core::{CircuitBreaker, Config, Millis, WindowKind};

fn measure(label: &str, config: Config) {
    let mut breaker = CircuitBreaker::new(config).expect("valid config");
    let calls: u64 = 20_000_000;
    let started = Instant::now();
    for i in 0..calls {
        let now = Millis(i / 1_000);
        let permit = black_box(&mut breaker)
            .try_acquire(now)
            .expect("a healthy service keeps the breaker closed");
        let _ = breaker.on_success(now, permit, Millis(3));
        while breaker.poll_output().is_some() {}
    }
    let elapsed = started.elapsed();
    println!(
        "{label}: {:.1} ns per acquire + record",
        elapsed.as_nanos() as f64 / calls as f64
    );
}

fn main() {
    let quiet = Config {
        emit_call_events: false,
        ..Config::default()
    };
    measure("count window, no call events", quiet.clone());
    measure("count window, call events drained", Config::default());
    measure(
        "time window, no call events",
        Config {
            window: WindowKind::TimeBased { seconds: 60 },
            ..quiet
        },
    );
}
