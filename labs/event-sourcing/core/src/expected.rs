//! The expected-version check every append makes: part of the lab's graded module (the
//! learner's copy is `labs/event-sourcing/exercise/expected.rs`).

use crate::version::{Conflict, ExpectedVersion};

// ANCHOR: check_expected
/// Whether a stream at version `current` (0 when it has no events) may take an append that
/// expects `expected`; if not, the conflict naming both.
pub fn check_expected(expected: ExpectedVersion, current: u64) -> Result<(), Conflict> {
    let holds = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => current == 0,
        ExpectedVersion::StreamExists => current > 0,
        ExpectedVersion::Exact(version) => current == version,
    };
    if holds {
        Ok(())
    } else {
        Err(Conflict { expected, current })
    }
}
// ANCHOR_END: check_expected
