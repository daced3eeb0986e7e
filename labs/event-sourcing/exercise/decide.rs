//! Exercise: the order aggregate's two functions.
//!
//! This is your copy of the graded module. `cargo xtask grade event-sourcing` runs
//! `labs/event-sourcing/core/tests/graded.rs` against it. Keep the signatures: the store, the
//! snapshots and the demo call them. Replace each `todo!()`.
//! Read: book chapter data/event-sourcing.md (sections "The aggregate" and "Exercise").

// The parameters are unused until you write the bodies.
#![allow(unused_variables)]

#[allow(unused_imports)]
use crate::order::{Command, Event, Line, Order, Rejection, State, Status};

/// The state after `event`. Events are facts already decided: apply them, check no rule.
///
/// - Before `OrderCreated` there is no order (`None`); `OrderCreated` opens one, empty.
/// - `ItemAdded` puts a line in, `QuantityUpdated` changes a line's quantity, `ItemRemoved`
///   takes it out; `OrderPlaced` and `OrderCancelled` set the status.
/// - An event that finds nothing to apply to leaves the state as it was.
pub fn evolve(state: State, event: &Event) -> State {
    todo!("apply one event to the state")
}

/// The events that record `command` against `state`, or why it is refused.
///
/// Think of the order's rules: an order must exist before anything else (and exists only
/// once); nothing changes once it is placed or cancelled; quantities are at least 1; a product
/// is added once and then updated; only products in the order can be updated or removed; an
/// empty order cannot be placed, and a placed order's total is the sum of its lines
/// (`Order::total_cents`). A command that would change nothing decides no events.
pub fn decide(state: &State, command: Command) -> Result<Vec<Event>, Rejection> {
    todo!("decide the events for this command, or reject it")
}
