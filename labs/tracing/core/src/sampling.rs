//! Tail sampling: which finished traces the collector keeps.

use serde::{Deserialize, Serialize};

use crate::ids::{TraceId, mix};

/// The tail-sampling policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplingPolicy {
    /// A trace at least this long (root to last end, in nanoseconds) is one of the slow ones:
    /// always kept.
    pub slow_ns: u64,
    /// Of the other traces, this many per thousand are kept.
    pub keep_per_mille: u32,
    /// Seeds the ratio's choice, so a run replays (and two collectors with one seed agree).
    pub seed: u64,
}

impl Default for SamplingPolicy {
    fn default() -> SamplingPolicy {
        SamplingPolicy {
            slow_ns: 100_000_000,
            keep_per_mille: 100,
            seed: 0,
        }
    }
}

// ANCHOR: verdict
/// The decision on one trace, with its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Kept: a span ended in error.
    KeptError,
    /// Kept: the trace was slow.
    KeptSlow,
    /// Kept by the ratio.
    KeptByRatio,
    /// Dropped by the ratio.
    DroppedByRatio,
}
// ANCHOR_END: verdict

impl Verdict {
    /// Whether the trace is stored.
    pub fn kept(self) -> bool {
        self != Verdict::DroppedByRatio
    }

    /// A few words for a log or a page.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::KeptError => "kept: a span failed",
            Verdict::KeptSlow => "kept: slow",
            Verdict::KeptByRatio => "kept: sampled by ratio",
            Verdict::DroppedByRatio => "dropped: not sampled by ratio",
        }
    }
}

impl SamplingPolicy {
    /// Errors first, then slowness, then the seeded ratio (the same trace id gets the same
    /// answer for the same seed).
    pub fn decide(&self, trace_id: TraceId, error: bool, duration_ns: u64) -> Verdict {
        if error {
            Verdict::KeptError
        } else if duration_ns >= self.slow_ns {
            Verdict::KeptSlow
        } else {
            let low = trace_id.as_u128() as u64;
            if mix(self.seed ^ low) % 1000 < u64::from(self.keep_per_mille) {
                Verdict::KeptByRatio
            } else {
                Verdict::DroppedByRatio
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_then_slow_then_ratio() {
        let policy = SamplingPolicy {
            slow_ns: 10,
            keep_per_mille: 0,
            seed: 1,
        };
        assert_eq!(policy.decide(TraceId([1; 16]), true, 0), Verdict::KeptError);
        assert_eq!(
            policy.decide(TraceId([1; 16]), false, 10),
            Verdict::KeptSlow
        );
        assert_eq!(
            policy.decide(TraceId([1; 16]), false, 9),
            Verdict::DroppedByRatio
        );
        let all = SamplingPolicy {
            keep_per_mille: 1000,
            ..policy
        };
        assert_eq!(all.decide(TraceId([1; 16]), false, 9), Verdict::KeptByRatio);
    }

    #[test]
    fn the_ratio_keeps_about_its_share() {
        let policy = SamplingPolicy {
            slow_ns: u64::MAX,
            keep_per_mille: 250,
            seed: 42,
        };
        let kept = (0..4000u128)
            .filter(|&i| {
                policy
                    .decide(TraceId((i * 7919 + 1).to_be_bytes()), false, 0)
                    .kept()
            })
            .count();
        assert!((800..1200).contains(&kept), "kept {kept} of 4000 at 25 %");
    }
}
