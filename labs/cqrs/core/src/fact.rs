//! What the read side sees of `$all`: every recorded event, decoded into a [`Fact`] by its
//! stream. Orders come from the event sourcing lab's aggregate (`order-<id>`); customers
//! (`customer-<id>`) and products (`product-<sku>`) are the other services' events the
//! denormalised view copies names from. An event of any other stream is [`Fact::Other`]: a
//! projection ignores it, but its position still moves the checkpoint.

use event_sourcing_core::{Event, NewEvent, Recorded, decode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ANCHOR: catalog
/// The customer and product services' events, as their streams record them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Catalog {
    /// A customer signed up (stream `customer-<id>`).
    CustomerRegistered {
        /// The customer's id, what orders name as their `customer`.
        customer_id: String,
        /// The name to show.
        name: String,
    },
    /// A customer changed their name: every denormalised copy must follow.
    CustomerRenamed {
        /// The customer's id.
        customer_id: String,
        /// The new name.
        name: String,
    },
    /// A product entered the catalogue (stream `product-<sku>`).
    ProductListed {
        /// The product's SKU (stock-keeping unit).
        sku: String,
        /// The name to show.
        name: String,
    },
    /// A product's name changed.
    ProductRenamed {
        /// The product's SKU (stock-keeping unit).
        sku: String,
        /// The new name.
        name: String,
    },
}
// ANCHOR_END: catalog

// ANCHOR: fact
/// One event of `$all` as the projections read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// An event of the order aggregate, with the order it belongs to.
    Order {
        /// The order's id (its stream is `order-<id>`).
        order_id: String,
        /// What happened to it.
        event: Event,
    },
    /// A customer or product event.
    Catalog(Catalog),
    /// Anything else: nothing to project, but a position to checkpoint.
    Other,
}

/// A fact with its place in `$all`: what a projection is delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Positioned {
    /// The `$all` position: 1, 2, 3… with no gap in the store.
    pub position: u64,
    /// What happened.
    pub fact: Fact,
}
// ANCHOR_END: fact

/// Why a recorded event did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactError {
    /// The position of the event that failed.
    pub position: u64,
    /// What was wrong.
    pub detail: String,
}

impl std::fmt::Display for FactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event {} does not decode: {}",
            self.position, self.detail
        )
    }
}

impl std::error::Error for FactError {}

impl Positioned {
    /// Decodes a recorded event by its stream's prefix.
    pub fn decode(recorded: &Recorded) -> Result<Positioned, FactError> {
        let error = |detail: String| FactError {
            position: recorded.position,
            detail,
        };
        let fact = if let Some(order_id) = recorded.stream.strip_prefix("order-") {
            let event = decode(&recorded.event_type, recorded.schema, &recorded.data)
                .map_err(|e| error(e.to_string()))?;
            Fact::Order {
                order_id: order_id.to_owned(),
                event,
            }
        } else if recorded.stream.starts_with("customer-")
            || recorded.stream.starts_with("product-")
        {
            let tagged = serde_json::json!({ "type": recorded.event_type, "data": recorded.data });
            Fact::Catalog(serde_json::from_value(tagged).map_err(|e| error(e.to_string()))?)
        } else {
            Fact::Other
        };
        Ok(Positioned {
            position: recorded.position,
            fact,
        })
    }
}

impl Catalog {
    /// The stream this event belongs to.
    pub fn stream(&self) -> String {
        match self {
            Catalog::CustomerRegistered { customer_id, .. }
            | Catalog::CustomerRenamed { customer_id, .. } => format!("customer-{customer_id}"),
            Catalog::ProductListed { sku, .. } | Catalog::ProductRenamed { sku, .. } => {
                format!("product-{sku}")
            }
        }
    }

    /// The event as the store appends it, with the writer's id for it.
    pub fn encode(&self, event_id: impl Into<String>) -> NewEvent {
        let tagged = serde_json::to_value(self).unwrap_or(Value::Null);
        NewEvent {
            event_id: event_id.into(),
            event_type: tagged["type"].as_str().unwrap_or_default().to_owned(),
            schema: 1,
            data: tagged["data"].clone(),
        }
    }
}
