//! The order aggregate's two pure functions: the lab's graded module (the learner's copy is
//! `labs/event-sourcing/exercise/decide.rs`).
//!
//! `decide` turns a command and the current state into the events that record it, or a
//! rejection; `evolve` applies one event to a state. Loading an order is folding `evolve`
//! over its stream; handling a command is `decide`, then appending what it returned.

use crate::order::{Command, Event, Line, Order, Rejection, State, Status};

// ANCHOR: evolve
/// The state after `event`. Events are facts already decided, so `evolve` checks no rule: it
/// only applies them. An event that finds nothing to apply to (a line event before
/// `OrderCreated`, a second `OrderCreated`) leaves the state as it was.
pub fn evolve(state: State, event: &Event) -> State {
    let Some(mut order) = state else {
        return match event {
            Event::OrderCreated { order_id, customer } => Some(Order {
                id: order_id.clone(),
                customer: customer.clone(),
                lines: Default::default(),
                status: Status::Open,
            }),
            _ => None,
        };
    };
    match event {
        Event::OrderCreated { .. } => {}
        Event::ItemAdded {
            sku,
            quantity,
            unit_price_cents,
        } => {
            order.lines.insert(
                sku.clone(),
                Line {
                    quantity: *quantity,
                    unit_price_cents: *unit_price_cents,
                },
            );
        }
        Event::QuantityUpdated { sku, quantity } => {
            if let Some(line) = order.lines.get_mut(sku) {
                line.quantity = *quantity;
            }
        }
        Event::ItemRemoved { sku } => {
            order.lines.remove(sku);
        }
        Event::OrderPlaced { total_cents } => {
            order.status = Status::Placed {
                total_cents: *total_cents,
            }
        }
        Event::OrderCancelled { reason } => {
            order.status = Status::Cancelled {
                reason: reason.clone(),
            }
        }
    }
    Some(order)
}
// ANCHOR_END: evolve

// ANCHOR: decide
/// The events that record `command` against `state`, or why it is refused. A command that
/// would change nothing (a quantity set to what it already is) decides no events.
pub fn decide(state: &State, command: Command) -> Result<Vec<Event>, Rejection> {
    let order = match (state, &command) {
        (None, Command::CreateOrder { order_id, customer }) => {
            return Ok(vec![Event::OrderCreated {
                order_id: order_id.clone(),
                customer: customer.clone(),
            }]);
        }
        (None, _) => return Err(Rejection::NoOrder),
        (Some(_), Command::CreateOrder { .. }) => return Err(Rejection::AlreadyCreated),
        (Some(order), _) if !order.is_open() => return Err(Rejection::Closed),
        (Some(order), _) => order,
    };
    match command {
        Command::CreateOrder { .. } => Err(Rejection::AlreadyCreated),
        Command::AddItem { quantity: 0, .. } | Command::UpdateQuantity { quantity: 0, .. } => {
            Err(Rejection::NonPositiveQuantity)
        }
        Command::AddItem {
            sku,
            quantity,
            unit_price_cents,
        } => {
            if order.lines.contains_key(&sku) {
                return Err(Rejection::AlreadyInOrder { sku });
            }
            Ok(vec![Event::ItemAdded {
                sku,
                quantity,
                unit_price_cents,
            }])
        }
        Command::UpdateQuantity { sku, quantity } => match order.lines.get(&sku) {
            None => Err(Rejection::NotInOrder { sku }),
            Some(line) if line.quantity == quantity => Ok(Vec::new()),
            Some(_) => Ok(vec![Event::QuantityUpdated { sku, quantity }]),
        },
        Command::RemoveItem { sku } => {
            if !order.lines.contains_key(&sku) {
                return Err(Rejection::NotInOrder { sku });
            }
            Ok(vec![Event::ItemRemoved { sku }])
        }
        Command::PlaceOrder => {
            if order.lines.is_empty() {
                return Err(Rejection::EmptyOrder);
            }
            Ok(vec![Event::OrderPlaced {
                total_cents: order.total_cents(),
            }])
        }
        Command::CancelOrder { reason } => Ok(vec![Event::OrderCancelled { reason }]),
    }
}
// ANCHOR_END: decide
