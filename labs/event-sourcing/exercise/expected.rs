//! Exercise: the expected-version check every append makes.
//!
//! Your copy of the graded module's second file; `cargo xtask grade event-sourcing` grades it
//! with `decide.rs`. Keep the signature. Replace the `todo!()`.
//! Read: book chapter data/event-sourcing.md (section "Appending with an expected version").

// The parameters are unused until you write the body.
#![allow(unused_variables)]

#[allow(unused_imports)]
use crate::version::{Conflict, ExpectedVersion};

/// Whether a stream at version `current` (0 when it has no events) may take an append that
/// expects `expected`. Each of the four expectations is one condition on `current`; when it
/// does not hold, the conflict names what was expected and where the stream really is, so
/// the writer can reload from there.
pub fn check_expected(expected: ExpectedVersion, current: u64) -> Result<(), Conflict> {
    todo!("check the expectation against the current version")
}
