//! The saga playground's settings: where the reader makes things go wrong, and their keys in
//! the URL.
//!
//! The keys and the values they take are one table ([`Settings::FIELDS`]); reading and writing
//! the query string is the shared mechanism in [`crate::settings`].

use serde::Serialize;

use crate::settings::{Field, Kind, Settings};

/// Who coordinates the saga.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A coordinator sends each participant its command.
    Orchestration,
    /// Participants react to each other's events on a bus.
    Choreography,
}

/// The places where the reader can make things go wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaSettings {
    /// Orchestration or choreography.
    pub mode: Mode,
    /// The step whose action fails for a business reason (1 payment, 2 inventory, 3 shipping).
    pub fail_step: Option<usize>,
    /// Whether the first compensation fails once (a timeout) and is retried.
    pub compensation_fails_once: bool,
    /// Where the orchestrator crashes: while waiting for this step's reply (1, 2, 3), or
    /// `Some(COMPENSATION)` while waiting for the first compensation's reply.
    pub crash: Option<usize>,
}

/// The `crash` value meaning "while waiting for the first compensation's reply".
pub const COMPENSATION: usize = 99;

/// The steps a reader can make fail, named as the query string names them, at their step
/// index in the order-fulfilment saga (0, the order service's own step, is "none").
const STEPS: [&str; 4] = ["none", "payment", "inventory", "shipping"];

/// Where the orchestrator can crash: the same steps, then "compensation".
const CRASH_POINTS: [&str; 5] = [STEPS[0], STEPS[1], STEPS[2], STEPS[3], "compensation"];

/// The index of "compensation" in [`CRASH_POINTS`].
const AT_COMPENSATION: u64 = 4;

impl Default for SagaSettings {
    fn default() -> Self {
        SagaSettings {
            mode: Mode::Orchestration,
            fail_step: None,
            compensation_fails_once: false,
            crash: None,
        }
    }
}

/// A step as its index among the names: `None` is "none", a step its own index,
/// [`COMPENSATION`] the name after the steps.
fn step_index(step: Option<usize>) -> u64 {
    match step {
        Some(COMPENSATION) => AT_COMPENSATION,
        Some(step) => u64::try_from(step).unwrap_or(0),
        None => 0,
    }
}

/// The step a name's index stands for (the inverse of [`step_index`]).
fn step_at(index: u64) -> Option<usize> {
    match index {
        0 => None,
        AT_COMPENSATION => Some(COMPENSATION),
        step => usize::try_from(step).ok(),
    }
}

impl Settings for SagaSettings {
    const FIELDS: &'static [Field<Self>] = &[
        Field {
            key: "mode",
            kind: Kind::Switch(["orchestration", "choreography"]),
            get: |s| u64::from(s.mode == Mode::Choreography),
            set: |s, v| {
                s.mode = if v == 1 {
                    Mode::Choreography
                } else {
                    Mode::Orchestration
                }
            },
        },
        Field {
            key: "fail",
            kind: Kind::OneOf(&STEPS),
            get: |s| step_index(s.fail_step),
            set: |s, v| s.fail_step = step_at(v),
        },
        Field {
            key: "cfail",
            kind: Kind::Switch(["0", "1"]),
            get: |s| u64::from(s.compensation_fails_once),
            set: |s, v| s.compensation_fails_once = v == 1,
        },
        Field {
            key: "crash",
            kind: Kind::OneOf(&CRASH_POINTS),
            get: |s| step_index(s.crash),
            set: |s, v| s.crash = step_at(v),
        },
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query;

    #[test]
    fn settings_round_trip_through_the_query() {
        let settings =
            SagaSettings::from_query("mode=choreography&fail=shipping&cfail=1&crash=compensation");
        assert_eq!(settings.crash, Some(COMPENSATION));
        let again = SagaSettings::from_query(&query::to_query(settings.pairs()));
        assert_eq!(again, settings);
    }

    #[test]
    fn the_saga_table_keeps_the_shared_rules() {
        crate::settings::check_table::<SagaSettings>();
    }

    #[test]
    fn links_read_as_they_always_did() {
        // Any mode but `choreography` reads as orchestration; a step that fails cannot be
        // the compensation; an unknown step keeps the default.
        let read = SagaSettings::from_query("mode=choreography&mode=x&fail=compensation&crash=x");
        assert_eq!(read, SagaSettings::default());
        let read = SagaSettings::from_query("fail=shipping&crash=inventory&cfail=2");
        assert_eq!((read.fail_step, read.crash), (Some(3), Some(2)));
        assert!(!read.compensation_fails_once);
    }
}
