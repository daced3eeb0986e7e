//! The breaker's states and the permits it hands out.
//!
//! A [`Permit`] is the breaker's receipt for one admitted call. It is neither `Copy` nor
//! `Clone`: it is handed back by value, so a driver cannot hand the same permit back twice by
//! accident (a drop guard holds it and gives it up once, however the call ends). It remembers
//! the *generation* that admitted it: every state transition starts a new generation, so an
//! outcome that arrives after the breaker has moved on (a slow call admitted while Closed that
//! finishes after the breaker opened) is recognised as stale and cannot pollute the new
//! state's statistics. It also carries its *admission* number, so a HalfOpen trial slot that
//! was released and handed to another call is not freed by the old permit: a duplicate made
//! by deserializing a recorded permit is refused.

use core::fmt;
use serde::{Deserialize, Serialize};

// ANCHOR: state
/// Where the breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls flow; outcomes are recorded in the sliding window.
    Closed,
    /// Calls are rejected at once until the wait in Open has elapsed.
    Open,
    /// A fixed number of trial calls is let through; their outcomes decide.
    HalfOpen,
    /// An operator holds the breaker open: everything is rejected until reset.
    ForcedOpen,
    /// An operator switched the breaker off: everything is admitted, nothing recorded.
    Disabled,
}
// ANCHOR_END: state

impl State {
    /// Every state, in the order of the enum.
    pub const ALL: [State; 5] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::Disabled,
    ];

    /// A short lowercase name: `closed`, `open`, `half-open`, `forced-open`, `disabled`.
    pub const fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
            State::ForcedOpen => "forced-open",
            State::Disabled => "disabled",
        }
    }

    /// Whether calls are admitted in this state (HalfOpen admits only its trial calls).
    pub const fn admits_calls(self) -> bool {
        matches!(self, State::Closed | State::HalfOpen | State::Disabled)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The breaker's receipt for one admitted call; hand it back exactly once with an outcome
/// ([`on_outcome`](crate::CircuitBreaker::on_outcome)) or without one
/// ([`release`](crate::CircuitBreaker::release)).
///
/// The fields are private: only a breaker makes permits, so a driver cannot forge one. A
/// permit is not `Copy` or `Clone`, because a copy could be handed back after the original
/// and free a slot that by then belongs to another call:
///
/// ```compile_fail
/// fn copies<T: Clone>(_: &T) {}
/// let mut breaker = breaker_core::CircuitBreaker::new(breaker_core::Config::default())?;
/// let permit = breaker.try_acquire(breaker_core::Millis(0))?;
/// copies(&permit); // error: `Permit` is not `Clone`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// It is `Serialize` and `Deserialize` so a trace of [`Input`](crate::Input)s can be
/// recorded and replayed; a deserialized duplicate of a permit already handed back is
/// refused with [`BreakerError::UnknownPermit`](crate::BreakerError::UnknownPermit) (in
/// HalfOpen always; in Closed and Disabled, which count permits instead of remembering each,
/// once no other permit of the generation is outstanding).
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Permit {
    generation: u32,
    slot: u32,
    admission: u32,
    admitted_in: State,
}

impl Permit {
    /// Made only by the state machine. `slot` is the HalfOpen trial slot (0 otherwise);
    /// `admission` tells this admission apart from earlier ones that held the same slot.
    // The learner's untouched copy of the state machine makes no permits yet.
    #[cfg_attr(feature = "exercise", allow(dead_code))]
    pub(crate) const fn new(
        generation: u32,
        admitted_in: State,
        slot: u32,
        admission: u32,
    ) -> Permit {
        Permit {
            generation,
            slot,
            admission,
            admitted_in,
        }
    }

    /// The generation (count of state transitions) in which the call was admitted.
    pub const fn generation(&self) -> u32 {
        self.generation
    }

    /// The state that admitted the call: Closed, HalfOpen or Disabled.
    pub const fn admitted_in(&self) -> State {
        self.admitted_in
    }

    /// Whether this permit holds one of HalfOpen's trial slots.
    pub const fn is_trial(&self) -> bool {
        matches!(self.admitted_in, State::HalfOpen)
    }

    /// The HalfOpen trial slot this permit holds (0 for other permits).
    pub const fn slot(&self) -> u32 {
        self.slot
    }

    /// Which admission this is: the breaker numbers its admissions, so a slot's current
    /// holder is told apart from a permit that held the slot before it.
    pub const fn admission(&self) -> u32 {
        self.admission
    }
}
