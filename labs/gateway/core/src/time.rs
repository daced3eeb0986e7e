//! Time as a plain number: the core never reads a clock, the driver passes `now` in.
//!
//! The same shape as the breaker core's `Millis`, so a reader meets one vocabulary in every
//! lab: the gateway maps tokio's clock onto it, the tests simply count. Keeping time out of
//! the rate limiter is what lets a test "wait" an hour in a microsecond and get the same
//! answer every run.

use core::fmt;
use core::ops::{Add, Sub};
use serde::{Deserialize, Serialize};

/// Milliseconds on the driver's clock (an instant) or a number of them (a span).
///
/// Arithmetic saturates: a limiter must never panic because a driver passed a strange time.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// Zero: the start of the driver's clock, or an empty span.
    pub const ZERO: Millis = Millis(0);

    /// A span of whole seconds.
    pub const fn from_secs(secs: u64) -> Millis {
        Millis(secs.saturating_mul(1000))
    }

    /// Whole seconds, rounded up: what a `Retry-After` header should say, so a client that
    /// waits exactly that long is never early.
    pub const fn as_secs_ceil(self) -> u64 {
        self.0.div_ceil(1000)
    }
}

impl Add for Millis {
    type Output = Millis;
    fn add(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Millis {
    type Output = Millis;
    fn sub(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_seconds_round_up() {
        assert_eq!(Millis(5) - Millis(7), Millis::ZERO);
        assert_eq!(Millis(u64::MAX) + Millis(1), Millis(u64::MAX));
        assert_eq!(Millis(1).as_secs_ceil(), 1);
        assert_eq!(Millis(1000).as_secs_ceil(), 1);
        assert_eq!(Millis(1001).as_secs_ceil(), 2);
        assert_eq!(Millis::ZERO.as_secs_ceil(), 0);
    }
}
