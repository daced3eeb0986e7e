//! Versioned event schemas: every event is written with its type's current schema, and read
//! through a chain of upcasters that lift an old payload one schema at a time, so streams
//! written before a schema changed still load.
//!
//! The one change so far: `QuantityUpdated` schema 1 was `{"product": …, "qty": …}`;
//! schema 2 is `{"sku": …, "quantity": …}`, the names every other event uses.

use serde_json::{Map, Value};

use crate::order::Event;
use crate::record::NewEvent;

/// The event types of an order stream, each with its current schema.
pub const EVENT_TYPES: [(&str, u32); 6] = [
    ("OrderCreated", 1),
    ("ItemAdded", 1),
    ("QuantityUpdated", 2),
    ("ItemRemoved", 1),
    ("OrderPlaced", 1),
    ("OrderCancelled", 1),
];

/// Why a stored payload does not read as an order event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not an event type of an order stream.
    UnknownType(String),
    /// A schema this code does not know (0, or newer than today's).
    UnknownSchema {
        /// The event type.
        event_type: String,
        /// The schema it names.
        schema: u32,
    },
    /// The payload does not have the fields its type and schema need.
    Malformed {
        /// The event type.
        event_type: String,
        /// What was wrong, in serde's words.
        reason: String,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnknownType(name) => write!(
                f,
                "unknown event type {name:?}; an order stream takes {}",
                EVENT_TYPES.map(|(name, _)| name).join(", ")
            ),
            DecodeError::UnknownSchema { event_type, schema } => write!(
                f,
                "{event_type} has no schema {schema} (today's is {})",
                current_schema(event_type).unwrap_or(0)
            ),
            DecodeError::Malformed { event_type, reason } => {
                write!(f, "malformed {event_type}: {reason}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Today's schema of `event_type`, or `None` for a type an order stream does not have.
pub fn current_schema(event_type: &str) -> Option<u32> {
    EVENT_TYPES
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, schema)| *schema)
}

// ANCHOR: upcasters
/// An event's fields, as JSON.
pub type Fields = Map<String, Value>;

/// One step of the chain: lifts `event_type`'s payload from schema `from` to `from + 1`.
pub struct Upcaster {
    /// The event type it applies to.
    pub event_type: &'static str,
    /// The schema it reads.
    pub from: u32,
    /// The lift itself.
    pub lift: fn(Fields) -> Result<Fields, String>,
}

/// Every upcaster, oldest first.
pub const UPCASTERS: &[Upcaster] = &[Upcaster {
    event_type: "QuantityUpdated",
    from: 1,
    lift: quantity_updated_v1_to_v2,
}];

/// `QuantityUpdated` 1 → 2: `product` became `sku`, `qty` became `quantity`.
fn quantity_updated_v1_to_v2(mut v1: Fields) -> Result<Fields, String> {
    let sku = v1.remove("product").ok_or("schema 1 needs `product`")?;
    let quantity = v1.remove("qty").ok_or("schema 1 needs `qty`")?;
    Ok(Map::from_iter([
        ("sku".to_owned(), sku),
        ("quantity".to_owned(), quantity),
    ]))
}
// ANCHOR_END: upcasters

/// Lifts a payload written with `schema` to today's schema of its type.
pub fn upcast(event_type: &str, schema: u32, data: Value) -> Result<Value, DecodeError> {
    let current =
        current_schema(event_type).ok_or_else(|| DecodeError::UnknownType(event_type.into()))?;
    if schema == 0 || schema > current {
        return Err(DecodeError::UnknownSchema {
            event_type: event_type.to_owned(),
            schema,
        });
    }
    let malformed = |reason: String| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        reason,
    };
    let mut data = data;
    for from in schema..current {
        let step = UPCASTERS
            .iter()
            .find(|step| step.event_type == event_type && step.from == from)
            .ok_or_else(|| malformed(format!("no upcaster from schema {from}")))?;
        let Value::Object(fields) = data else {
            return Err(malformed("the payload is not a JSON object".to_owned()));
        };
        data = Value::Object((step.lift)(fields).map_err(malformed)?);
    }
    Ok(data)
}

/// Reads a stored payload as an order event, upcasting it first.
pub fn decode(event_type: &str, schema: u32, data: &Value) -> Result<Event, DecodeError> {
    decode_owned(event_type, schema, data.clone())
}

/// [`decode`] for a payload the caller no longer needs: nothing is copied.
pub fn decode_owned(event_type: &str, schema: u32, data: Value) -> Result<Event, DecodeError> {
    let data = upcast(event_type, schema, data)?;
    typed(event_type, data).map_err(|error| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        reason: error.to_string(),
    })
}

/// The payload as its variant's fields, read straight into them (a tagged enum would buffer
/// the payload first, which is most of the cost of a replay).
fn typed(event_type: &str, data: Value) -> Result<Event, serde_json::Error> {
    use serde::Deserialize;
    use serde_json::from_value;

    #[derive(Deserialize)]
    struct Created {
        order_id: String,
        customer: String,
    }
    #[derive(Deserialize)]
    struct Added {
        sku: String,
        quantity: u32,
        unit_price_cents: u64,
    }
    #[derive(Deserialize)]
    struct Updated {
        sku: String,
        quantity: u32,
    }
    #[derive(Deserialize)]
    struct Removed {
        sku: String,
    }
    #[derive(Deserialize)]
    struct Placed {
        total_cents: u64,
    }
    #[derive(Deserialize)]
    struct Cancelled {
        reason: String,
    }
    Ok(match event_type {
        "OrderCreated" => {
            let Created { order_id, customer } = from_value(data)?;
            Event::OrderCreated { order_id, customer }
        }
        "ItemAdded" => {
            let Added {
                sku,
                quantity,
                unit_price_cents,
            } = from_value(data)?;
            Event::ItemAdded {
                sku,
                quantity,
                unit_price_cents,
            }
        }
        "QuantityUpdated" => {
            let Updated { sku, quantity } = from_value(data)?;
            Event::QuantityUpdated { sku, quantity }
        }
        "ItemRemoved" => {
            let Removed { sku } = from_value(data)?;
            Event::ItemRemoved { sku }
        }
        "OrderPlaced" => {
            let Placed { total_cents } = from_value(data)?;
            Event::OrderPlaced { total_cents }
        }
        "OrderCancelled" => {
            let Cancelled { reason } = from_value(data)?;
            Event::OrderCancelled { reason }
        }
        // `upcast` has refused every other type already.
        other => return Err(serde::de::Error::custom(format!("unknown type {other}"))),
    })
}

/// An order event as the store takes it, at today's schema, with the writer's id.
pub fn encode(event: &Event, event_id: impl Into<String>) -> NewEvent {
    let Value::Object(mut tagged) = serde_json::to_value(event).unwrap_or_default() else {
        unreachable!("an adjacently tagged enum serialises to an object")
    };
    let data = tagged.remove("data").unwrap_or(Value::Object(Map::new()));
    NewEvent {
        event_id: event_id.into(),
        event_type: event.event_type().to_owned(),
        schema: current_schema(event.event_type()).unwrap_or(1),
        data,
    }
}
