//! Where the lab's time comes from: an injected [`Clock`], never `Instant::now()` inline.
//!
//! The core takes `now` as a [`Millis`] argument; something has to produce it.
//! In the demo that is [`TokioClock`], which reads tokio's clock, so a test
//! that starts the runtime with `start_paused = true` moves the breaker's time
//! exactly as it moves every `sleep` and `timeout`: seconds of scenario run in
//! microseconds, and the same way every time. [`ManualClock`] is for tests
//! without a runtime (threads hammering one breaker) that set time by hand.

use std::sync::atomic::{AtomicU64, Ordering};

use breaker_core::Millis;

/// A source of "now" for the breaker.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since this clock's own epoch; never goes backwards.
    fn now(&self) -> Millis;
}

/// Tokio's clock, counted from the moment this value was made.
///
/// Under `#[tokio::test(start_paused = true)]` this is virtual time.
///
/// It can also run faster than real time (`with_speed(4.0)`: one real second reads as
/// four), which is how the demo's `--fast` squeezes the same scenario into less time
/// without changing a single number the breaker is configured with.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch: tokio::time::Instant,
    speed: f64,
}

impl TokioClock {
    /// A clock whose zero is now, running at real speed.
    pub fn new() -> Self {
        Self::with_speed(1.0)
    }

    /// A clock whose zero is now, running `speed` times faster than real time.
    pub fn with_speed(speed: f64) -> Self {
        Self {
            epoch: tokio::time::Instant::now(),
            speed,
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Millis {
        let elapsed = self.epoch.elapsed();
        if self.speed == 1.0 {
            // u64 milliseconds last 584 million years; the saturation is for form's sake.
            return Millis(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        }
        // `as` saturates on overflow and maps NaN to 0: no panic for any speed.
        Millis((elapsed.as_secs_f64() * 1000.0 * self.speed).round() as u64)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Millis) -> Self {
        Self {
            now: AtomicU64::new(start.0),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Millis) {
        self.now.fetch_add(by.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        Millis(self.now.load(Ordering::SeqCst))
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now(&self) -> Millis {
        (**self).now()
    }
}
