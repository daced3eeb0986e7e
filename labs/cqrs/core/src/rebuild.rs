//! A rebuild as states: a new generation of a view's tables is built from position zero while
//! the old one keeps serving, catches up with the live projection, is switched to in one step,
//! and the old tables are dropped. The machine decides; the driver does the work and reports.

use serde::Serialize;

// ANCHOR: rebuild_types
/// Where a rebuild is. Reads are served by `serving` until `Switching` is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// No rebuild: generation `serving` answers.
    Idle {
        /// The generation answering reads.
        serving: u32,
    },
    /// Replaying `$all` from zero into generation `building`, up to `target`, the head when
    /// the rebuild started.
    Building {
        /// The generation answering reads.
        serving: u32,
        /// The generation being built.
        building: u32,
        /// The last position the new generation has applied.
        at: u64,
        /// The head when the rebuild started.
        target: u64,
    },
    /// Past the start's head: replaying what arrived meanwhile, until the live projection's
    /// checkpoint is reached.
    CatchingUp {
        /// The generation answering reads.
        serving: u32,
        /// The generation being built.
        building: u32,
        /// The last position the new generation has applied.
        at: u64,
    },
    /// Caught up: the driver pauses the live projection, finishes the last events and points
    /// reads at `building`, in one transaction.
    Switching {
        /// The generation answering reads until the switch.
        serving: u32,
        /// The generation that takes over.
        building: u32,
    },
    /// Switched: the old generation's tables are dropped.
    Dropping {
        /// The generation answering reads now.
        serving: u32,
        /// The generation to drop.
        old: u32,
    },
}

/// What the driver reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start a rebuild; the store's head is `head`.
    Start {
        /// The `$all` position of the last event now.
        head: u64,
    },
    /// The new generation has applied up to `at`; the live projection is at `live`.
    Progress {
        /// The new generation's checkpoint.
        at: u64,
        /// The live projection's checkpoint.
        live: u64,
    },
    /// The switch is committed.
    Switched,
    /// The old generation's tables are gone.
    Dropped,
}

/// A report that does not fit the phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebuildError {
    /// `Start` while a rebuild runs.
    AlreadyRebuilding,
    /// Anything else out of turn.
    OutOfTurn,
}
// ANCHOR_END: rebuild_types

impl std::fmt::Display for RebuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RebuildError::AlreadyRebuilding => f.write_str("a rebuild of this view is running"),
            RebuildError::OutOfTurn => f.write_str("the rebuild is not in the phase for that"),
        }
    }
}

impl std::error::Error for RebuildError {}

impl Phase {
    /// The phase after `event`.
    pub fn next(self, event: Event) -> Result<Phase, RebuildError> {
        use Phase::*;
        match (self, event) {
            (Idle { serving }, Event::Start { head }) => Ok(Building {
                serving,
                building: serving + 1,
                at: 0,
                target: head,
            }),
            (_, Event::Start { .. }) => Err(RebuildError::AlreadyRebuilding),
            (
                Building {
                    serving,
                    building,
                    target,
                    ..
                },
                Event::Progress { at, live },
            ) => Ok(if at < target {
                Building {
                    serving,
                    building,
                    at,
                    target,
                }
            } else {
                CatchingUp {
                    serving,
                    building,
                    at,
                }
                .caught_up(live)
            }),
            (
                CatchingUp {
                    serving, building, ..
                },
                Event::Progress { at, live },
            ) => Ok(CatchingUp {
                serving,
                building,
                at,
            }
            .caught_up(live)),
            (Switching { serving, building }, Event::Switched) => Ok(Dropping {
                serving: building,
                old: serving,
            }),
            (Dropping { serving, .. }, Event::Dropped) => Ok(Idle { serving }),
            _ => Err(RebuildError::OutOfTurn),
        }
    }

    fn caught_up(self, live: u64) -> Phase {
        match self {
            Phase::CatchingUp {
                serving,
                building,
                at,
            } if at >= live => Phase::Switching { serving, building },
            other => other,
        }
    }

    /// The generation reads are answered from.
    pub fn serving(self) -> u32 {
        match self {
            Phase::Idle { serving }
            | Phase::Building { serving, .. }
            | Phase::CatchingUp { serving, .. }
            | Phase::Switching { serving, .. }
            | Phase::Dropping { serving, .. } => serving,
        }
    }

    /// Whether a rebuild is running.
    pub fn is_running(self) -> bool {
        !matches!(self, Phase::Idle { .. })
    }
}
