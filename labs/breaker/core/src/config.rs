//! What a breaker is told: thresholds, window, waits. Defaults are resilience4j's.
//!
//! The fields are public so a config reads like a table (`Config { minimum_calls: 5,
//! ..Config::default() }`), and [`Config::validate`] turns nonsense into a typed
//! [`ConfigError`] before a breaker is built, so the state machine never has to guard
//! against a zero-sized window or a 150 % threshold.

use crate::time::Millis;
use serde::{Deserialize, Serialize};

// ANCHOR: window_kind
/// How the breaker remembers recent calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WindowKind {
    /// The last `size` recorded calls, however old (resilience4j's `COUNT_BASED`).
    CountBased {
        /// How many calls the window holds.
        size: u32,
    },
    /// The calls of the last `seconds` seconds, kept in one bucket per second
    /// (resilience4j's `TIME_BASED`). A call recorded during second `s` is forgotten
    /// once the clock reaches second `s + seconds`.
    TimeBased {
        /// How many one-second buckets the window holds.
        seconds: u32,
    },
}
// ANCHOR_END: window_kind

// ANCHOR: backoff
/// How the wait in Open grows when the breaker re-opens again and again.
///
/// The `k`-th consecutive opening (counted since the breaker was last Closed, the first
/// one being `k = 0`) waits `wait_in_open × multiplier^k`, capped at `max_wait`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Growth per re-open; `1.0` keeps the wait constant, `2.0` doubles it.
    pub multiplier: f64,
    /// The cap: no wait in Open is longer than this (before jitter).
    pub max_wait: Millis,
}
// ANCHOR_END: backoff

/// Everything a [`CircuitBreaker`](crate::CircuitBreaker) is configured with.
///
/// `Config::default()` is resilience4j's default configuration, so numbers from its
/// documentation carry over unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Open when at least this percentage of the recorded calls failed (`0 < x <= 100`).
    /// Default 50.
    pub failure_rate_threshold: f32,
    /// Open when at least this percentage of the recorded calls were slow (`0 < x <= 100`).
    /// Default 100 (only a window full of slow calls opens the breaker).
    pub slow_call_rate_threshold: f32,
    /// A call lasting this long or longer counts as slow. Default 60 s.
    pub slow_call_duration: Millis,
    /// How many trial calls HalfOpen admits before deciding. Default 10.
    pub permitted_calls_in_half_open: u32,
    /// Re-open if HalfOpen has not decided within this time (for example because no trial
    /// call came, or a trial never finished). `None` waits forever, like resilience4j's 0.
    pub max_wait_in_half_open: Option<Millis>,
    /// How recent calls are remembered. Default: the last 100 calls.
    pub window: WindowKind,
    /// No verdict before this many calls are in the window, so one failed call out of one
    /// does not open the breaker. For a count-based window the effective minimum is
    /// `min(minimum_calls, size)`, as in resilience4j. Default 100.
    pub minimum_calls: u32,
    /// How long Open rejects calls before letting trial calls through. Default 60 s.
    pub wait_in_open: Millis,
    /// Grow the wait on repeated re-opens. `None` (the default) keeps it constant.
    pub backoff: Option<Backoff>,
    /// Spread each wait in Open uniformly over `[w × (1 − jitter), w × (1 + jitter)]`
    /// so many clients do not all probe a recovering service at the same instant.
    /// `0.0` (the default) means no jitter; must be in `[0, 1)`.
    pub jitter: f64,
    /// Seed of the jitter's random numbers. `Some(n)`: a fixed seed, and the same seed gives
    /// the same waits (tests, replays, the playground). `None` (the default): each breaker
    /// seeds itself when it is built (see [`Config::jitter_seed`]), so two instances of a
    /// service, or two breakers in one process, do not wait alike and probe a recovering
    /// dependency at the same instant.
    pub seed: Option<u64>,
    /// Queue an [`Event`](crate::Event) for every call (success, failure, slow, ignored,
    /// rejected, released). State transitions are always queued. Turn this off on a hot
    /// path that only needs transitions and [`Metrics`](crate::Metrics). Default `true`.
    pub emit_call_events: bool,
    /// The most outputs kept for [`poll_output`](crate::CircuitBreaker::poll_output);
    /// when full, the oldest is dropped and counted in
    /// [`Metrics::dropped_outputs`](crate::Metrics::dropped_outputs). Default 1024.
    pub max_queued_outputs: usize,
}

// ANCHOR: default_config
impl Default for Config {
    fn default() -> Self {
        Config {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: Millis::from_secs(60),
            permitted_calls_in_half_open: 10,
            max_wait_in_half_open: None,
            window: WindowKind::CountBased { size: 100 },
            minimum_calls: 100,
            wait_in_open: Millis::from_secs(60),
            backoff: None,
            jitter: 0.0,
            seed: None,
            emit_call_events: true,
            max_queued_outputs: 1024,
        }
    }
}
// ANCHOR_END: default_config

/// The most trial calls HalfOpen may admit: a permit names its trial slot, and the
/// breaker keeps one flag per slot.
pub const MAX_PERMITTED_CALLS_IN_HALF_OPEN: u32 = 10_000;

/// The largest window (calls or seconds): its memory is allocated up front.
pub const MAX_WINDOW_SIZE: u32 = 1_000_000;

/// A configuration that cannot describe a working breaker.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A rate threshold outside `(0, 100]`.
    #[error("{name} must be a percentage in (0, 100], got {value}")]
    ThresholdOutOfRange {
        /// Which field.
        name: &'static str,
        /// The rejected value.
        value: f32,
    },
    /// A window of zero calls or seconds, or larger than [`MAX_WINDOW_SIZE`].
    #[error("the sliding window must hold 1..={MAX_WINDOW_SIZE} calls or seconds, got {0}")]
    WindowSize(u32),
    /// `minimum_calls` is zero.
    #[error("minimum_calls must be at least 1")]
    ZeroMinimumCalls,
    /// `permitted_calls_in_half_open` is zero or above [`MAX_PERMITTED_CALLS_IN_HALF_OPEN`].
    #[error(
        "permitted_calls_in_half_open must be in 1..={MAX_PERMITTED_CALLS_IN_HALF_OPEN}, got {0}"
    )]
    PermittedCallsInHalfOpen(u32),
    /// `wait_in_open` is zero: Open would not reject anything.
    #[error("wait_in_open must be at least 1 ms")]
    ZeroWaitInOpen,
    /// `max_wait_in_half_open` is `Some(0)`: use `None` to wait forever.
    #[error("max_wait_in_half_open must be at least 1 ms (use None to wait forever)")]
    ZeroMaxWaitInHalfOpen,
    /// A backoff multiplier below 1 or not finite.
    #[error("backoff multiplier must be a finite number >= 1, got {0}")]
    BackoffMultiplier(f64),
    /// A backoff cap below `wait_in_open`.
    #[error("backoff max_wait ({max}) must be >= wait_in_open ({wait})")]
    BackoffCap {
        /// The configured `max_wait`: no wait in Open is longer (before jitter).
        max: Millis,
        /// The base wait.
        wait: Millis,
    },
    /// Jitter outside `[0, 1)`.
    #[error("jitter must be in [0, 1), got {0}")]
    Jitter(f64),
    /// `max_queued_outputs` is zero.
    #[error("max_queued_outputs must be at least 1")]
    ZeroOutputQueue,
}

impl Config {
    /// Checks every field; the breaker's constructor calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("failure_rate_threshold", self.failure_rate_threshold),
            ("slow_call_rate_threshold", self.slow_call_rate_threshold),
        ] {
            // Written so that NaN fails too.
            if !(value > 0.0 && value <= 100.0) {
                return Err(ConfigError::ThresholdOutOfRange { name, value });
            }
        }
        let size = match self.window {
            WindowKind::CountBased { size } => size,
            WindowKind::TimeBased { seconds } => seconds,
        };
        if size == 0 || size > MAX_WINDOW_SIZE {
            return Err(ConfigError::WindowSize(size));
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::ZeroMinimumCalls);
        }
        if self.permitted_calls_in_half_open == 0
            || self.permitted_calls_in_half_open > MAX_PERMITTED_CALLS_IN_HALF_OPEN
        {
            return Err(ConfigError::PermittedCallsInHalfOpen(
                self.permitted_calls_in_half_open,
            ));
        }
        if self.wait_in_open == Millis::ZERO {
            return Err(ConfigError::ZeroWaitInOpen);
        }
        if self.max_wait_in_half_open == Some(Millis::ZERO) {
            return Err(ConfigError::ZeroMaxWaitInHalfOpen);
        }
        if let Some(backoff) = self.backoff {
            if !(backoff.multiplier.is_finite() && backoff.multiplier >= 1.0) {
                return Err(ConfigError::BackoffMultiplier(backoff.multiplier));
            }
            if backoff.max_wait < self.wait_in_open {
                return Err(ConfigError::BackoffCap {
                    max: backoff.max_wait,
                    wait: self.wait_in_open,
                });
            }
        }
        if !(self.jitter >= 0.0 && self.jitter < 1.0) {
            return Err(ConfigError::Jitter(self.jitter));
        }
        if self.max_queued_outputs == 0 {
            return Err(ConfigError::ZeroOutputQueue);
        }
        Ok(())
    }

    /// The seed a breaker built from this configuration gives its jitter: the fixed `seed`
    /// if there is one, otherwise a new per-instance seed on every call.
    ///
    /// The per-instance seed hashes a process-wide counter (so two breakers in one process
    /// differ) with std's [`RandomState`](std::hash::RandomState), whose keys are drawn
    /// from the operating system once per thread (so two processes differ, even when they
    /// start at the same instant on identical machines). That is the only randomness the
    /// breaker ever draws; everything after it is computed from the seed. On a target without
    /// a source of randomness (WebAssembly in a browser) std's keys may be fixed, and only
    /// the counter is sure to vary; the playground, like a test, fixes the seed anyway.
    pub fn jitter_seed(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};

        static BUILT: AtomicU64 = AtomicU64::new(0);
        if let Some(seed) = self.seed {
            return seed;
        }
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_u64(BUILT.fetch_add(1, Ordering::Relaxed));
        hasher.finish()
    }

    /// The number of calls the window must hold before rates are judged:
    /// `minimum_calls`, but never more than a count-based window can hold.
    pub fn effective_minimum_calls(&self) -> u32 {
        match self.window {
            WindowKind::CountBased { size } => self.minimum_calls.min(size),
            WindowKind::TimeBased { .. } => self.minimum_calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_resilience4j() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.failure_rate_threshold, 50.0);
        assert_eq!(config.window, WindowKind::CountBased { size: 100 });
        assert_eq!(config.wait_in_open, Millis(60_000));
        assert_eq!(config.permitted_calls_in_half_open, 10);
    }

    #[test]
    fn rejects_nonsense() {
        let bad = |f: fn(&mut Config)| {
            let mut config = Config::default();
            f(&mut config);
            config.validate()
        };
        assert!(matches!(
            bad(|c| c.failure_rate_threshold = 0.0),
            Err(ConfigError::ThresholdOutOfRange { .. })
        ));
        assert!(matches!(
            bad(|c| c.slow_call_rate_threshold = f32::NAN),
            Err(ConfigError::ThresholdOutOfRange { .. })
        ));
        assert_eq!(
            bad(|c| c.window = WindowKind::TimeBased { seconds: 0 }),
            Err(ConfigError::WindowSize(0))
        );
        assert_eq!(
            bad(|c| c.minimum_calls = 0),
            Err(ConfigError::ZeroMinimumCalls)
        );
        assert_eq!(
            bad(|c| c.permitted_calls_in_half_open = 0),
            Err(ConfigError::PermittedCallsInHalfOpen(0))
        );
        assert_eq!(
            bad(|c| c.wait_in_open = Millis::ZERO),
            Err(ConfigError::ZeroWaitInOpen)
        );
        assert_eq!(
            bad(|c| c.max_wait_in_half_open = Some(Millis::ZERO)),
            Err(ConfigError::ZeroMaxWaitInHalfOpen)
        );
        assert_eq!(
            bad(|c| c.backoff = Some(Backoff {
                multiplier: 0.5,
                max_wait: Millis(1)
            })),
            Err(ConfigError::BackoffMultiplier(0.5))
        );
        assert!(matches!(
            bad(|c| c.backoff = Some(Backoff {
                multiplier: 2.0,
                max_wait: Millis(1)
            })),
            Err(ConfigError::BackoffCap { .. })
        ));
        assert_eq!(bad(|c| c.jitter = 1.0), Err(ConfigError::Jitter(1.0)));
        assert_eq!(
            bad(|c| c.max_queued_outputs = 0),
            Err(ConfigError::ZeroOutputQueue)
        );
    }

    #[test]
    fn a_fixed_seed_is_kept_and_a_missing_one_differs_per_breaker() {
        let fixed = Config {
            seed: Some(7),
            ..Config::default()
        };
        assert_eq!(fixed.jitter_seed(), 7, "a fixed seed is used as it is");
        let unseeded = Config::default();
        assert_ne!(
            unseeded.jitter_seed(),
            unseeded.jitter_seed(),
            "without a fixed seed, every breaker built gets its own"
        );
    }

    #[test]
    fn count_based_minimum_is_capped_by_window_size() {
        let config = Config {
            window: WindowKind::CountBased { size: 5 },
            minimum_calls: 10,
            ..Config::default()
        };
        assert_eq!(config.effective_minimum_calls(), 5);
    }
}
