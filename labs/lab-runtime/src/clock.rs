//! Where a service's "now" comes from: an injected [`Clock`], never `Instant::now()` inline.
//!
//! A core takes `now` as a [`Millis`] argument; something has to produce it. In a service
//! that is [`TokioClock`], which reads tokio's clock, so a test that starts the runtime with
//! `start_paused = true` moves the core's time exactly as it moves every `sleep` and
//! `timeout`: seconds of scenario run in microseconds, and the same way every time.
//! [`ManualClock`] is for tests without a runtime (threads hammering one shared core) that
//! set time by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sansio_core::Millis;

/// A source of "now" for a core.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since this clock's own epoch; never goes backwards.
    fn now(&self) -> Millis;
}

/// Tokio's clock, counted from the moment this value was made (plus a starting offset).
///
/// Under `#[tokio::test(start_paused = true)]` this is virtual time.
///
/// It can also run faster than real time (`with_speed(4.0)`: one real second reads as
/// four), which is how a demo's `--fast` squeezes the same scenario into less time without
/// changing a single number the core is configured with.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    epoch: tokio::time::Instant,
    start: Millis,
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
            start: Millis::ZERO,
            speed,
        }
    }

    /// A clock that reads `start` now and runs at real speed from there. A service whose
    /// log outlives the process starts from the wall clock, so a restarted process carries
    /// on forward, while its deadlines still follow tokio's (pausable) time.
    pub fn starting_at(start: Millis) -> Self {
        Self {
            start,
            ..Self::new()
        }
    }

    /// A clock that reads the wall clock's milliseconds since the Unix epoch now.
    pub fn from_wall_clock() -> Self {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            });
        Self::starting_at(Millis(wall))
    }

    /// The tokio instant at which this clock reads `at` (now, when `at` has passed).
    pub fn instant_at(&self, at: Millis) -> tokio::time::Instant {
        let now = self.now();
        tokio::time::Instant::now() + self.real(at.saturating_sub(now))
    }

    /// How long `span` of this clock's time takes in tokio's time.
    pub fn real(&self, span: Millis) -> Duration {
        let millis = Duration::from_millis(span.0);
        if self.speed == 1.0 {
            return millis;
        }
        // A speed of zero, below zero or NaN would never get there: treat it as real time.
        if self.speed.is_nan() || self.speed <= 0.0 {
            return millis;
        }
        Duration::try_from_secs_f64(millis.as_secs_f64() / self.speed).unwrap_or(Duration::MAX)
    }

    /// Sleeps until this clock reads `at` (returns at once when it has passed).
    pub async fn sleep_until(&self, at: Millis) {
        tokio::time::sleep_until(self.instant_at(at)).await;
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
            let elapsed = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            return Millis(self.start.0.saturating_add(elapsed));
        }
        // `as` saturates on overflow and maps NaN to 0: no panic for any speed.
        let elapsed = (elapsed.as_secs_f64() * 1000.0 * self.speed).round() as u64;
        Millis(self.start.0.saturating_add(elapsed))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time_from_its_start() {
        let clock = TokioClock::starting_at(Millis(1_000));
        assert_eq!(clock.now(), Millis(1_000));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(clock.now(), Millis(1_250));
        clock.sleep_until(Millis(2_000)).await;
        assert_eq!(clock.now(), Millis(2_000));
        // A deadline in the past returns at once.
        clock.sleep_until(Millis(10)).await;
        assert_eq!(clock.now(), Millis(2_000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_clock_reaches_a_deadline_in_less_tokio_time() {
        let clock = TokioClock::with_speed(4.0);
        let before = tokio::time::Instant::now();
        clock.sleep_until(Millis(4_000)).await;
        assert_eq!(before.elapsed(), Duration::from_secs(1));
        assert_eq!(clock.now(), Millis(4_000));
        assert_eq!(
            TokioClock::with_speed(f64::NAN).real(Millis(5)),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn the_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Millis(5));
        assert_eq!(clock.now(), Millis(5));
        clock.advance(Millis(10));
        assert_eq!(clock.now(), Millis(15));
    }
}
