//! What the store does with the graded functions: fold a history into its state, and admit an
//! event proposed for appending only if `decide` would have decided exactly it.
//!
//! Kept apart from [`order`](crate::order), which holds only the aggregate's types, so the graded
//! module depends on the types and nothing depends back on it from there.

use crate::decide::{decide, evolve};
use crate::order::{Event, Rejection, State};

/// Folds events, in order, into the state they leave, starting from `state`.
pub fn fold<'a>(state: State, events: impl IntoIterator<Item = &'a Event>) -> State {
    events.into_iter().fold(state, evolve)
}

/// Whether an event proposed for appending is one `decide` would have decided from `state`:
/// the store's check that an appended event keeps the order's rules.
pub fn admit(state: &State, event: &Event) -> Result<(), Rejection> {
    let decided = decide(state, event.as_command())?;
    if decided.as_slice() == std::slice::from_ref(event) {
        Ok(())
    } else if let (Event::OrderPlaced { total_cents }, Some(order)) = (event, state) {
        Err(Rejection::WrongTotal {
            claimed: *total_cents,
            lines: order.total_cents(),
        })
    } else {
        Err(Rejection::ChangesNothing)
    }
}
