//! The placeholder machine: a one-shot timer, in the vocabulary every core shares.
//!
//! Armed with a delay, it asks its driver to call back at the deadline (`poll_timeout`) and
//! emits [`Fired`] once when `handle_timeout` finds the deadline passed. Replace it with the
//! lab's pattern; keep the shape: inputs in with `now`, outputs drained with `poll_output`.

use std::collections::VecDeque;

use sansio_core::{Machine, Millis};
use serde::{Deserialize, Serialize};

use crate::deadline::due_at;

// ANCHOR: types
/// What the driver tells the timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Fire once, `after` from now (re-arming replaces the previous deadline).
    Arm {
        /// How long from now.
        after: Millis,
    },
    /// Forget the deadline; nothing fires.
    Disarm,
}

/// What the timer tells its driver: it fired at `at` (its deadline, not the driver's late `now`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// The deadline that passed.
    pub at: Millis,
}
// ANCHOR_END: types

/// Inputs the timer refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    /// A zero delay would fire before anyone could see it armed.
    ZeroDelay,
}

impl std::fmt::Display for TimerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimerError::ZeroDelay => f.write_str("a timer needs a delay of at least 1 ms"),
        }
    }
}

impl std::error::Error for TimerError {}

/// A one-shot timer.
#[derive(Debug, Default)]
pub struct Timer {
    deadline: Option<Millis>,
    outputs: VecDeque<Fired>,
}

impl Timer {
    /// A timer that is not armed.
    pub fn new() -> Timer {
        Timer::default()
    }
}

impl Machine for Timer {
    type Input = Input;
    type Output = Fired;
    type Error = TimerError;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), TimerError> {
        self.handle_timeout(now);
        match input {
            Input::Arm { after } if after == Millis::ZERO => return Err(TimerError::ZeroDelay),
            Input::Arm { after } => self.deadline = Some(due_at(now, after)),
            Input::Disarm => self.deadline = None,
        }
        Ok(())
    }

    fn handle_timeout(&mut self, now: Millis) {
        if let Some(at) = self.deadline.filter(|&at| at <= now) {
            self.deadline = None;
            self.outputs.push_back(Fired { at });
        }
    }

    fn poll_output(&mut self) -> Option<Fired> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.deadline
    }
}
