//! The projection step and the high-water mark: the lab's graded module (the learner's copy
//! is `labs/cqrs/exercise/step.rs`).
//!
//! [`project`] applies one delivered event to a view unless the checkpoint has seen it.
//! [`HighWater`] stands in front of it: events arrive in any order, and it releases them in
//! position order, holding back everything after a missing position until that position
//! arrives or, after a configured wait, declaring it a rolled-back transaction and moving on.

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

// ANCHOR: project
/// Applies `event` to `view` if it is the next position after `checkpoint`, and moves the
/// checkpoint to it. Anything at or below the checkpoint is a redelivery and anything past the
/// next position is early: neither changes the view or the checkpoint.
pub fn project<V: View>(view: &mut V, checkpoint: &mut u64, event: &Positioned) -> Step {
    if event.position <= *checkpoint {
        return Step::Redelivered;
    }
    if event.position != *checkpoint + 1 {
        return Step::Early;
    }
    let rows = view.apply(&event.fact);
    *checkpoint = event.position;
    Step::Applied(rows)
}
// ANCHOR_END: project

// ANCHOR: high_water
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
        HighWater {
            next: checkpoint + 1,
            held: BTreeMap::new(),
            wait,
            gap_since: None,
        }
    }

    /// The last position released (or declared missing): the projection's checkpoint.
    pub fn checkpoint(&self) -> u64 {
        self.next - 1
    }

    /// How many events are held back behind a gap.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// When the current gap will be declared rolled back, if there is one.
    pub fn deadline(&self) -> Option<Millis> {
        self.gap_since.map(|since| since + self.wait)
    }

    /// Takes an event delivered at `now`. An event past a missing position starts the gap's
    /// wait, unless a wait is already running.
    pub fn offer(&mut self, now: Millis, event: Positioned) -> Offered {
        if event.position < self.next || self.held.contains_key(&event.position) {
            return Offered::Redelivered;
        }
        if event.position > self.next && self.gap_since.is_none() {
            self.gap_since = Some(now);
        }
        self.held.insert(event.position, event);
        Offered::Held
    }

    /// The next thing to hand the projection at `now`, if any: the event at the next
    /// position; or, when that position has been missing for the whole wait, the gap up to
    /// the first held event. Releasing past a gap that exposes another starts its wait now.
    pub fn release(&mut self, now: Millis) -> Option<Released> {
        if let Some(event) = self.held.remove(&self.next) {
            self.next += 1;
            self.gap_since = match self.held.first_key_value() {
                Some((&first, _)) if first > self.next => Some(now),
                _ => None,
            };
            return Some(Released::Event(event));
        }
        let due = self.deadline()?;
        if now < due {
            return None;
        }
        let (&first, _) = self.held.first_key_value()?;
        let gap = Released::Gap {
            from: self.next,
            to: first - 1,
        };
        self.next = first;
        self.gap_since = None;
        Some(gap)
    }
}
// ANCHOR_END: high_water
