//! Exercise: the projection step and the high-water mark.
//!
//! This is your copy of the graded module. `cargo xtask grade cqrs` runs
//! `labs/cqrs/core/tests/graded.rs` against it. Keep every signature and type as it is: the
//! projector calls them. Replace each `todo!()`.
//! Read: book chapter data/cqrs.md (sections "The projection step" and "The high-water mark").

// The parameters and fields are unused until you write the bodies.
#![allow(unused_variables, dead_code)]

use std::collections::BTreeMap;

use sansio_core::Millis;

use crate::fact::Positioned;
use crate::view::{RowKey, View};

// ANCHOR: step_types
/// What [`project`] did with one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Applied; the checkpoint is now its position. The rows it changed (possibly none).
    Applied(Vec<RowKey>),
    /// At or below the checkpoint: already applied, so nothing changed.
    Redelivered,
    /// Past the next position: applying it would skip the events in between, so nothing
    /// changed. The high-water mark should have held it back.
    Early,
}

/// What [`HighWater::release`] hands the projection, in position order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Released {
    /// The next event: project it.
    Event(Positioned),
    /// Positions `from..=to` waited for longer than the configured wait: declared rolled
    /// back. The checkpoint moves to `to` without them.
    Gap {
        /// The first missing position.
        from: u64,
        /// The last missing position.
        to: u64,
    },
}

/// What [`HighWater::offer`] did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Kept until its turn (which may be now: call `release`).
    Held,
    /// Already released, or already held: a redelivery, dropped.
    Redelivered,
}
// ANCHOR_END: step_types

/// Applies `event` to `view` if it is the next position after `checkpoint`, and moves the
/// checkpoint to it. Anything at or below the checkpoint is a redelivery and anything past the
/// next position is early: neither changes the view or the checkpoint.
pub fn project<V: View>(view: &mut V, checkpoint: &mut u64, event: &Positioned) -> Step {
    // Three cases, by where `event.position` stands against `*checkpoint`. Only one of them
    // calls `view.apply(&event.fact)` (its answer is the rows for `Step::Applied`).
    todo!("apply the next position once; refuse the old and the early")
}

/// Events held back until every position before them is released or declared missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HighWater {
    /// The next position to release.
    next: u64,
    /// Events offered past `next`, by position.
    held: BTreeMap<u64, Positioned>,
    /// How long a missing position is waited for.
    wait: Millis,
    /// Since when the current gap (a missing `next` with events held after it) is waited for.
    gap_since: Option<Millis>,
}

impl HighWater {
    /// A mark that has released everything up to `checkpoint` and waits `wait` for a gap.
    pub fn new(checkpoint: u64, wait: Millis) -> HighWater {
        todo!("nothing held, no gap yet; what is the next position?")
    }

    /// The last position released (or declared missing): the projection's checkpoint.
    pub fn checkpoint(&self) -> u64 {
        todo!("one less than the next position")
    }

    /// How many events are held back behind a gap.
    pub fn held(&self) -> usize {
        todo!("the number of events held")
    }

    /// When the current gap will be declared rolled back, if there is one.
    pub fn deadline(&self) -> Option<Millis> {
        todo!("the gap's start plus the wait")
    }

    /// Takes an event delivered at `now`. An event past a missing position starts the gap's
    /// wait, unless a wait is already running.
    pub fn offer(&mut self, now: Millis, event: Positioned) -> Offered {
        // Released already, or held already: a redelivery. Otherwise hold it; if it lies past
        // `next`, something is missing: is a wait running?
        todo!("drop what was seen, hold the rest, start the gap's wait")
    }

    /// The next thing to hand the projection at `now`, if any: the event at the next
    /// position; or, when that position has been missing for the whole wait, the gap up to
    /// the first held event. Releasing past a gap that exposes another starts its wait now.
    pub fn release(&mut self, now: Millis) -> Option<Released> {
        // First: is the event at `next` held? Release it, and decide whether a gap now starts
        // behind it. Otherwise: has the wait for `next` run out? Then the gap reaches up to the
        // first held position.
        todo!("the next event, or the gap once its wait is over, or nothing")
    }
}
