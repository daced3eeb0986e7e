//! The order aggregate's vocabulary: its events, its commands, its state and the reasons a
//! command is refused. The two functions that give them meaning, `decide` and `evolve`, are
//! the graded module (`decide.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// ANCHOR: events
/// What happened to an order: the only thing the store keeps. Amounts are in cents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// The order exists, empty, for a customer.
    OrderCreated {
        /// The order's id (its stream is `order-<id>`).
        order_id: String,
        /// Who ordered.
        customer: String,
    },
    /// A product joined the order.
    ItemAdded {
        /// The product's SKU (stock-keeping unit).
        sku: String,
        /// How many, at least 1.
        quantity: u32,
        /// The price of one, in cents, fixed when the item was added.
        unit_price_cents: u64,
    },
    /// A line's quantity changed (schema 2: the field names of today).
    QuantityUpdated {
        /// The product whose line changed.
        sku: String,
        /// The new quantity, at least 1.
        quantity: u32,
    },
    /// A product left the order.
    ItemRemoved {
        /// The product's SKU (stock-keeping unit).
        sku: String,
    },
    /// The customer confirmed the order; nothing changes after this.
    OrderPlaced {
        /// The total the customer agreed to: the sum of the lines.
        total_cents: u64,
    },
    /// The order was called off; nothing changes after this.
    OrderCancelled {
        /// Why, in words.
        reason: String,
    },
}
// ANCHOR_END: events

// ANCHOR: commands
/// What someone asks of an order. `decide` answers with events or a [`Rejection`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Command {
    /// Open an order for a customer.
    CreateOrder {
        /// The new order's id.
        order_id: String,
        /// Who orders.
        customer: String,
    },
    /// Add a product not yet in the order.
    AddItem {
        /// The product's SKU (stock-keeping unit).
        sku: String,
        /// How many.
        quantity: u32,
        /// The price of one, in cents.
        unit_price_cents: u64,
    },
    /// Change the quantity of a product already in the order.
    UpdateQuantity {
        /// The product's SKU (stock-keeping unit).
        sku: String,
        /// The new quantity.
        quantity: u32,
    },
    /// Take a product out of the order.
    RemoveItem {
        /// The product's SKU (stock-keeping unit).
        sku: String,
    },
    /// Confirm the order at the total of its lines.
    PlaceOrder,
    /// Call the order off.
    CancelOrder {
        /// Why, in words.
        reason: String,
    },
}
// ANCHOR_END: commands

// ANCHOR: state
/// An order as its events left it. A stream with no events folds to no order (`None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id.
    pub id: String,
    /// Who ordered.
    pub customer: String,
    /// The lines, by product.
    pub lines: BTreeMap<String, Line>,
    /// Open, placed or cancelled.
    pub status: Status,
}

/// One product's line in an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// How many, at least 1.
    pub quantity: u32,
    /// The price of one, in cents.
    pub unit_price_cents: u64,
}

/// Where an order is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Lines can still change.
    Open,
    /// Confirmed at this total; final.
    Placed {
        /// The agreed total, in cents.
        total_cents: u64,
    },
    /// Called off; final.
    Cancelled {
        /// Why, in words.
        reason: String,
    },
}

/// The state `evolve` folds events into: no order until `OrderCreated`.
pub type State = Option<Order>;
// ANCHOR_END: state

impl Order {
    /// The sum of the lines, quantity times unit price, in cents (saturating).
    pub fn total_cents(&self) -> u64 {
        self.lines
            .values()
            .map(|line| u64::from(line.quantity).saturating_mul(line.unit_price_cents))
            .fold(0, u64::saturating_add)
    }

    /// Whether lines can still change.
    pub fn is_open(&self) -> bool {
        self.status == Status::Open
    }
}

impl Event {
    /// The event's type name, as the store records it.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::OrderCreated { .. } => "OrderCreated",
            Event::ItemAdded { .. } => "ItemAdded",
            Event::QuantityUpdated { .. } => "QuantityUpdated",
            Event::ItemRemoved { .. } => "ItemRemoved",
            Event::OrderPlaced { .. } => "OrderPlaced",
            Event::OrderCancelled { .. } => "OrderCancelled",
        }
    }

    /// The command whose decision this event records: the store admits an appended event only
    /// when `decide` would have decided exactly it.
    pub fn as_command(&self) -> Command {
        match self.clone() {
            Event::OrderCreated { order_id, customer } => {
                Command::CreateOrder { order_id, customer }
            }
            Event::ItemAdded {
                sku,
                quantity,
                unit_price_cents,
            } => Command::AddItem {
                sku,
                quantity,
                unit_price_cents,
            },
            Event::QuantityUpdated { sku, quantity } => Command::UpdateQuantity { sku, quantity },
            Event::ItemRemoved { sku } => Command::RemoveItem { sku },
            Event::OrderPlaced { .. } => Command::PlaceOrder,
            Event::OrderCancelled { reason } => Command::CancelOrder { reason },
        }
    }
}

// ANCHOR: rejection
/// Why `decide` refused a command. Nothing was decided, so nothing is appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// The stream has no order yet: create it first.
    NoOrder,
    /// `CreateOrder` on a stream that already holds an order.
    AlreadyCreated,
    /// The order is placed or cancelled: nothing changes any more.
    Closed,
    /// A quantity of 0: quantities are at least 1 (remove the item instead).
    NonPositiveQuantity,
    /// `AddItem` for a product already in the order: update its quantity instead.
    AlreadyInOrder {
        /// The product's SKU (stock-keeping unit).
        sku: String,
    },
    /// The product is not in the order.
    NotInOrder {
        /// The product's SKU (stock-keeping unit).
        sku: String,
    },
    /// `PlaceOrder` on an order without lines.
    EmptyOrder,
    /// An appended `OrderPlaced` whose total is not the sum of the lines.
    WrongTotal {
        /// The total the event claims.
        claimed: u64,
        /// The sum of the order's lines.
        lines: u64,
    },
    /// An appended event that would change nothing (a quantity set to what it is).
    ChangesNothing,
}
// ANCHOR_END: rejection

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NoOrder => f.write_str("the stream holds no order yet: create it first"),
            Rejection::AlreadyCreated => f.write_str("the order already exists"),
            Rejection::Closed => {
                f.write_str("the order is placed or cancelled: nothing changes any more")
            }
            Rejection::NonPositiveQuantity => {
                f.write_str("a quantity must be at least 1 (remove the item instead)")
            }
            Rejection::AlreadyInOrder { sku } => {
                write!(
                    f,
                    "{sku} is already in the order: update its quantity instead"
                )
            }
            Rejection::NotInOrder { sku } => write!(f, "{sku} is not in the order"),
            Rejection::EmptyOrder => f.write_str("an order without items cannot be placed"),
            Rejection::WrongTotal { claimed, lines } => write!(
                f,
                "the total {claimed} is not the sum of the lines, {lines}"
            ),
            Rejection::ChangesNothing => f.write_str("the event would change nothing"),
        }
    }
}

impl std::error::Error for Rejection {}
