//! Exercise: when does an armed timer fire?
//!
//! This is your copy of the graded module. `cargo xtask grade discovery` runs
//! `labs/discovery/core/tests/graded.rs` against it. The signature must stay as it is: the timer
//! calls it. Replace the `todo!()`.
//! Read: book chapter patterns/service-discovery.md (section "Exercise").

// The parameters are unused until you write the body.
#![allow(unused_variables)]

use sansio_core::Millis;

/// The deadline of a timer armed at `now` with a delay of `after`. `Millis` arithmetic
/// saturates: a deadline past the end of time stays at the end of time.
pub fn due_at(now: Millis, after: Millis) -> Millis {
    todo!("the instant `after` from `now`")
}
