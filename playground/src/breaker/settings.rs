//! The breaker playground's settings: what the page's controls set, their keys in the URL,
//! and the core's [`Config`] they describe.
//!
//! The keys, bounds and defaults are one table ([`Settings::FIELDS`]); reading and writing
//! the query string is the shared mechanism in [`crate::settings`].

use breaker_core::{Config, Millis, WindowKind};
use serde::Serialize;

use crate::settings::{Field, Kind, Settings, narrow};

/// How the simulated service behind the breaker behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Downstream {
    /// Answers quickly and correctly.
    Healthy,
    /// Fails (quickly, like a 503) a given percentage of the calls.
    Failing,
    /// Answers correctly but slowly: every call takes about the slow latency.
    Slow,
}

impl Downstream {
    /// Every behaviour, in the order the page's select lists them.
    pub const ALL: [Downstream; 3] = [Downstream::Healthy, Downstream::Failing, Downstream::Slow];

    /// The names the page's select and the URL use, in the order of [`Downstream::ALL`].
    const NAMES: [&'static str; 3] = [
        Downstream::Healthy.code(),
        Downstream::Failing.code(),
        Downstream::Slow.code(),
    ];

    /// The name the page's select and the URL use for this behaviour.
    pub(crate) const fn code(self) -> &'static str {
        match self {
            Downstream::Healthy => "healthy",
            Downstream::Failing => "failing",
            Downstream::Slow => "slow",
        }
    }

    /// Reads the names the page's select uses (`healthy`, `failing`, `slow`).
    pub fn parse(text: &str) -> Option<Downstream> {
        Downstream::ALL.into_iter().find(|mode| mode.code() == text)
    }
}

/// Steady traffic's calls per second: the `rate` setting, the `r` action and the page's control.
pub const RATE: Kind = Kind::Number { min: 1, max: 200 };

/// The failing downstream's share of failures, percent: the `pct` setting and the `p` action.
pub const FAILURE_PERCENT: Kind = Kind::Number { min: 0, max: 100 };

/// Everything the controls set. The field names in the query string are the names of the
/// page's form fields, so the page restores its controls from [`Settings::pairs`].
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerSettings {
    /// `true`: the window holds the last N calls; `false`: the calls of the last N seconds.
    pub count_window: bool,
    /// N, in calls or seconds.
    pub window_size: u32,
    /// Failure-rate threshold, percent.
    pub failure_threshold: u32,
    /// Slow-call-rate threshold, percent.
    pub slow_threshold: u32,
    /// A call at least this long is slow.
    pub slow_call_ms: u64,
    /// No verdict before this many calls are in the window.
    pub minimum_calls: u32,
    /// How long Open rejects before trial calls.
    pub wait_in_open_ms: u64,
    /// Trial calls in HalfOpen.
    pub half_open_calls: u32,
    /// Spread of the wait in Open, percent (0 = none).
    pub jitter_percent: u32,
    /// The downstream's behaviour.
    pub downstream: Downstream,
    /// Share of failing calls when the downstream is failing, percent.
    pub failure_percent: u32,
    /// Latency of a call to a slow downstream.
    pub slow_latency_ms: u64,
    /// Calls per second of steady traffic.
    pub rate: u32,
    /// Calls in one burst.
    pub burst: u32,
    /// Whether steady traffic runs.
    pub steady: bool,
    /// Seed of the downstream's randomness and of the breaker's jitter.
    pub seed: u64,
}

impl Default for BreakerSettings {
    /// Small numbers, so a reader sees the breaker trip within a few clicks.
    fn default() -> Self {
        BreakerSettings {
            count_window: true,
            window_size: 10,
            failure_threshold: 50,
            slow_threshold: 80,
            slow_call_ms: 1000,
            minimum_calls: 5,
            wait_in_open_ms: 5000,
            half_open_calls: 3,
            jitter_percent: 0,
            downstream: Downstream::Healthy,
            failure_percent: 70,
            slow_latency_ms: 1500,
            rate: 5,
            burst: 10,
            steady: false,
            seed: 42,
        }
    }
}

impl Settings for BreakerSettings {
    const FIELDS: &'static [Field<Self>] = &[
        Field {
            key: "win",
            kind: Kind::Switch(["count", "time"]),
            get: |s| u64::from(!s.count_window),
            set: |s, v| s.count_window = v == 0,
        },
        Field {
            key: "size",
            kind: Kind::Number { min: 1, max: 1000 },
            get: |s| u64::from(s.window_size),
            set: |s, v| s.window_size = narrow(v),
        },
        Field {
            key: "fail",
            kind: Kind::Number { min: 1, max: 100 },
            get: |s| u64::from(s.failure_threshold),
            set: |s, v| s.failure_threshold = narrow(v),
        },
        Field {
            key: "slow",
            kind: Kind::Number { min: 1, max: 100 },
            get: |s| u64::from(s.slow_threshold),
            set: |s, v| s.slow_threshold = narrow(v),
        },
        Field {
            key: "slowms",
            kind: Kind::Number {
                min: 1,
                max: 600_000,
            },
            get: |s| s.slow_call_ms,
            set: |s, v| s.slow_call_ms = v,
        },
        Field {
            key: "min",
            kind: Kind::Number { min: 1, max: 1000 },
            get: |s| u64::from(s.minimum_calls),
            set: |s, v| s.minimum_calls = narrow(v),
        },
        Field {
            key: "wait",
            kind: Kind::Number {
                min: 1,
                max: 3_600_000,
            },
            get: |s| s.wait_in_open_ms,
            set: |s, v| s.wait_in_open_ms = v,
        },
        Field {
            key: "trial",
            kind: Kind::Number { min: 1, max: 100 },
            get: |s| u64::from(s.half_open_calls),
            set: |s, v| s.half_open_calls = narrow(v),
        },
        Field {
            key: "jitter",
            kind: Kind::Number { min: 0, max: 90 },
            get: |s| u64::from(s.jitter_percent),
            set: |s, v| s.jitter_percent = narrow(v),
        },
        Field {
            key: "down",
            kind: Kind::OneOf(&Downstream::NAMES),
            get: |s| s.downstream as u64,
            set: |s, v| {
                if let Some(mode) = usize::try_from(v).ok().and_then(|i| Downstream::ALL.get(i)) {
                    s.downstream = *mode;
                }
            },
        },
        Field {
            key: "pct",
            kind: FAILURE_PERCENT,
            get: |s| u64::from(s.failure_percent),
            set: |s, v| s.failure_percent = narrow(v),
        },
        Field {
            key: "lat",
            kind: Kind::Number {
                min: 1,
                max: 600_000,
            },
            get: |s| s.slow_latency_ms,
            set: |s, v| s.slow_latency_ms = v,
        },
        Field {
            key: "rate",
            kind: RATE,
            get: |s| u64::from(s.rate),
            set: |s, v| s.rate = narrow(v),
        },
        Field {
            key: "burst",
            kind: Kind::Number { min: 1, max: 500 },
            get: |s| u64::from(s.burst),
            set: |s, v| s.burst = narrow(v),
        },
        Field {
            key: "steady",
            kind: Kind::Switch(["0", "1"]),
            get: |s| u64::from(s.steady),
            set: |s, v| s.steady = v == 1,
        },
        Field {
            key: "seed",
            kind: Kind::Number {
                min: 0,
                max: u64::MAX,
            },
            get: |s| s.seed,
            set: |s, v| s.seed = v,
        },
    ];
}

impl BreakerSettings {
    /// The core's configuration these settings describe.
    pub fn config(&self) -> Config {
        Config {
            failure_rate_threshold: self.failure_threshold as f32,
            slow_call_rate_threshold: self.slow_threshold as f32,
            slow_call_duration: Millis(self.slow_call_ms),
            permitted_calls_in_half_open: self.half_open_calls,
            window: if self.count_window {
                WindowKind::CountBased {
                    size: self.window_size,
                }
            } else {
                WindowKind::TimeBased {
                    seconds: self.window_size,
                }
            },
            minimum_calls: self.minimum_calls,
            wait_in_open: Millis(self.wait_in_open_ms),
            jitter: f64::from(self.jitter_percent) / 100.0,
            seed: Some(self.seed),
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query;

    #[test]
    fn settings_round_trip_and_nonsense_falls_back_to_defaults() {
        let settings = BreakerSettings::from_query("win=time&size=30&fail=25&wait=9000&trial=7");
        assert!(!settings.count_window);
        assert_eq!(
            BreakerSettings::from_query(&query::to_query(settings.pairs())),
            settings
        );
        let nonsense = BreakerSettings::from_query("size=0&fail=250&down=exploding&do=zz.x");
        assert_eq!(nonsense, BreakerSettings::default());
    }

    #[test]
    fn the_breaker_table_keeps_the_shared_rules() {
        crate::settings::check_table::<BreakerSettings>();
    }

    #[test]
    fn links_read_as_they_always_did() {
        // A window kind that is not `time` reads as a count window, and `steady` is on only
        // for `1`, as before the settings were a table.
        assert!(BreakerSettings::from_query("win=time&win=garbage").count_window);
        assert!(!BreakerSettings::from_query("steady=1&steady=yes").steady);
        let edges = BreakerSettings::from_query("size=1000&seed=18446744073709551615&jitter=90");
        assert_eq!(
            (edges.window_size, edges.seed, edges.jitter_percent),
            (1000, u64::MAX, 90)
        );
        assert_eq!(
            BreakerSettings::from_query("seed=18446744073709551616&jitter=91"),
            BreakerSettings::default()
        );
    }
}
