//! The Discovery core: the lab's logic as a pure, deterministic state machine.
//!
//! Nothing here does I/O, reads a clock or spawns a task, so it builds for
//! `wasm32-unknown-unknown` and its tests drive it through hours in microseconds. The lab
//! (`lab-discovery`) puts it behind real sockets; the graded exercise replaces [`deadline`] with the
//! learner's copy (`--features exercise`).
//!
//! - [`Timer`] — the placeholder machine: armed with a delay, it fires once at its deadline;
//! - [`due_at`] — when an armed timer fires (graded).

mod timer;

// The graded module: the reference, or the learner's copy with `--features exercise`.
#[cfg_attr(feature = "exercise", path = "../../exercise/deadline.rs")]
mod deadline;

pub use deadline::due_at;
pub use sansio_core::{Machine, Millis};
pub use timer::{Fired, Input, Timer, TimerError};
