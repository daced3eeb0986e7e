//! [`Millis`]: the one type of time every core takes, an instant or a span in milliseconds.

use core::fmt;
use core::ops::{Add, Sub};
use serde::{Deserialize, Serialize};

/// Milliseconds on the driver's clock (an instant) or a number of them (a span).
///
/// Arithmetic saturates instead of overflowing or wrapping: a state machine must never panic
/// because a driver passed a strange time.
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

    /// The whole seconds in this instant or span (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Whole seconds, rounded up: what a `Retry-After` header should say, so a client that
    /// waits exactly that long is never early.
    pub const fn as_secs_ceil(self) -> u64 {
        self.0.div_ceil(1000)
    }

    /// `self + rhs`, stopping at `u64::MAX` instead of overflowing.
    pub const fn saturating_add(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, stopping at zero instead of underflowing.
    pub const fn saturating_sub(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_sub(rhs.0))
    }
}

impl Add for Millis {
    type Output = Millis;
    fn add(self, rhs: Millis) -> Millis {
        self.saturating_add(rhs)
    }
}

impl Sub for Millis {
    type Output = Millis;
    fn sub(self, rhs: Millis) -> Millis {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for Millis {
    /// `850ms`, `1.5s`, `60s`: short enough for a narrated timeline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 1000 {
            write!(f, "{}ms", self.0)
        } else if self.0.is_multiple_of(1000) {
            write!(f, "{}s", self.0 / 1000)
        } else {
            // Drop trailing zeros of the fraction: 1.5s, 1.25s, 1.125s.
            let (secs, frac) = (self.0 / 1000, self.0 % 1000);
            if frac.is_multiple_of(100) {
                write!(f, "{secs}.{}s", frac / 100)
            } else if frac.is_multiple_of(10) {
                write!(f, "{secs}.{:02}s", frac / 10)
            } else {
                write!(f, "{secs}.{frac:03}s")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use alloc::string::ToString;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Millis(5) - Millis(7), Millis::ZERO);
        assert_eq!(Millis(u64::MAX) + Millis(1), Millis(u64::MAX));
        assert_eq!(Millis::from_secs(3), Millis(3000));
        assert_eq!(
            Millis(u64::MAX).saturating_sub(Millis(1)),
            Millis(u64::MAX - 1)
        );
    }

    #[test]
    fn seconds_round_down_or_up() {
        assert_eq!(Millis(2999).as_secs(), 2);
        assert_eq!(Millis(1).as_secs_ceil(), 1);
        assert_eq!(Millis(1000).as_secs_ceil(), 1);
        assert_eq!(Millis(1001).as_secs_ceil(), 2);
        assert_eq!(Millis::ZERO.as_secs_ceil(), 0);
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(Millis(850).to_string(), "850ms");
        assert_eq!(Millis(60_000).to_string(), "60s");
        assert_eq!(Millis(1500).to_string(), "1.5s");
        assert_eq!(Millis(1250).to_string(), "1.25s");
        assert_eq!(Millis(1001).to_string(), "1.001s");
    }

    #[test]
    fn serializes_as_a_bare_number() {
        // `transparent`: configs and logs written before the types were shared still read back.
        assert_eq!(serde_json::to_string(&Millis(1500)).unwrap(), "1500");
        assert_eq!(serde_json::from_str::<Millis>("250").unwrap(), Millis(250));
    }
}
