//! Event sourcing, retold from the guide: the event log is the source of truth and the current
//! state of an order is a fold over its events.
//!
//! Three things turn the guide's array into something a service can rely on: events are typed
//! (a `match` must handle each kind, and an impossible sequence is an error instead of a crash on
//! `undefined`), appends carry the version the writer last saw (optimistic concurrency, so two
//! writers cannot both extend the stream from the same state), and long streams are replayed from
//! a snapshot instead of from the first event.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

// ANCHOR: events
/// One stored event, exactly the guide's shape: `{ id, type, data, timestamp }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Global sequence number in the store.
    pub id: u64,
    /// The event's type and data.
    #[serde(flatten)]
    pub event: OrderEvent,
    /// When it was recorded (RFC 3339).
    pub timestamp: String,
}

/// What can happen to an order. Past tense: these are facts, never rejected once stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum OrderEvent {
    /// The order was created for a user.
    OrderCreated {
        /// Order id (the stream id).
        order_id: String,
        /// Who created it.
        user_id: String,
    },
    /// A product was added.
    ItemAdded {
        /// Order id.
        order_id: String,
        /// Product id.
        product_id: String,
        /// Quantity added.
        quantity: u32,
    },
    /// The quantity of a product already in the order changed.
    QuantityUpdated {
        /// Order id.
        order_id: String,
        /// Product id.
        product_id: String,
        /// New quantity.
        quantity: u32,
    },
    /// The order was placed for a total.
    OrderPlaced {
        /// Order id.
        order_id: String,
        /// Total amount.
        total: u64,
    },
}

impl OrderEvent {
    /// The stream (aggregate) the event belongs to.
    pub fn order_id(&self) -> &str {
        match self {
            OrderEvent::OrderCreated { order_id, .. }
            | OrderEvent::ItemAdded { order_id, .. }
            | OrderEvent::QuantityUpdated { order_id, .. }
            | OrderEvent::OrderPlaced { order_id, .. } => order_id,
        }
    }
}
// ANCHOR_END: events

// ANCHOR: replay
/// One line of the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// Product id.
    pub product_id: String,
    /// How many units of the product.
    pub quantity: u32,
}

/// The current state of an order, derived from its events and never stored as the truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    /// Order id.
    pub order_id: String,
    /// Who created it.
    pub user_id: String,
    /// Lines of the order.
    pub items: Vec<Item>,
    /// `Some("placed")` once placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Total, once placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// An event sequence that cannot have happened: a bug in the writer, worth stopping for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The first event of a stream must create it.
    #[error("{0} before OrderCreated")]
    NotCreated(&'static str),
    /// A quantity update for a product that was never added.
    #[error("quantity updated for {0}, which is not in the order")]
    UnknownItem(String),
}

impl OrderState {
    /// Applies one event to the state: the `switch` of the guide's `rebuildOrderState`.
    pub fn apply(state: Option<Self>, event: &OrderEvent) -> Result<Self, ReplayError> {
        let mut state = match (state, event) {
            (_, OrderEvent::OrderCreated { order_id, user_id }) => {
                return Ok(OrderState {
                    order_id: order_id.clone(),
                    user_id: user_id.clone(),
                    ..OrderState::default()
                });
            }
            (None, OrderEvent::ItemAdded { .. }) => {
                return Err(ReplayError::NotCreated("ItemAdded"));
            }
            (None, OrderEvent::QuantityUpdated { .. }) => {
                return Err(ReplayError::NotCreated("QuantityUpdated"));
            }
            (None, OrderEvent::OrderPlaced { .. }) => {
                return Err(ReplayError::NotCreated("OrderPlaced"));
            }
            (Some(state), _) => state,
        };
        match event {
            OrderEvent::OrderCreated { .. } => {}
            OrderEvent::ItemAdded {
                product_id,
                quantity,
                ..
            } => state.items.push(Item {
                product_id: product_id.clone(),
                quantity: *quantity,
            }),
            OrderEvent::QuantityUpdated {
                product_id,
                quantity,
                ..
            } => {
                let item = state
                    .items
                    .iter_mut()
                    .find(|item| &item.product_id == product_id)
                    .ok_or_else(|| ReplayError::UnknownItem(product_id.clone()))?;
                item.quantity = *quantity;
            }
            OrderEvent::OrderPlaced { total, .. } => {
                state.status = Some("placed".to_owned());
                state.total = Some(*total);
            }
        }
        Ok(state)
    }
}

/// Rebuilds the current state of one order by replaying its events in order.
pub fn rebuild_order_state(
    events: &[StoredEvent],
    order_id: &str,
) -> Result<Option<OrderState>, ReplayError> {
    events
        .iter()
        .filter(|stored| stored.event.order_id() == order_id)
        .try_fold(None, |state, stored| {
            OrderState::apply(state, &stored.event).map(Some)
        })
}
// ANCHOR_END: replay

// ANCHOR: append
/// Why an append was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Someone else appended since the writer read the stream: reload, re-decide, retry.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    WrongExpectedVersion {
        /// The id of the stream written to.
        stream: String,
        /// The version the writer based its decision on.
        expected: u64,
        /// The version the stream is really at.
        actual: u64,
    },
}

/// An in-memory event store: one append-only stream per order, plus the global log.
#[derive(Debug, Clone, Default)]
pub struct EventStore {
    log: Vec<StoredEvent>,
    // stream id -> indexes into `log`
    streams: HashMap<String, Vec<usize>>,
}

impl EventStore {
    /// Appends `events` to `stream` if the stream still has `expected_version` events.
    /// Returns the new version. Nothing is ever updated or deleted.
    pub fn append(
        &mut self,
        stream: &str,
        expected_version: u64,
        events: Vec<OrderEvent>,
        timestamp: &str,
    ) -> Result<u64, AppendError> {
        let indexes = self.streams.entry(stream.to_owned()).or_default();
        let actual = indexes.len() as u64;
        if actual != expected_version {
            return Err(AppendError::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected: expected_version,
                actual,
            });
        }
        for event in events {
            indexes.push(self.log.len());
            self.log.push(StoredEvent {
                id: self.log.len() as u64 + 1,
                event,
                timestamp: timestamp.to_owned(),
            });
        }
        Ok(indexes.len() as u64)
    }

    /// The events of one stream from version `from` (0 = the beginning), in order.
    pub fn read_stream(&self, stream: &str, from: u64) -> Vec<&StoredEvent> {
        self.streams
            .get(stream)
            .into_iter()
            .flatten()
            .skip(usize::try_from(from).unwrap_or(usize::MAX))
            .map(|&index| &self.log[index])
            .collect()
    }
}
// ANCHOR_END: append

// ANCHOR: snapshot
/// A cached fold: the state after the first `version` events of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// How many events the state includes.
    pub version: u64,
    /// The state at that version.
    pub state: OrderState,
}

/// Loads an order: start from the snapshot if there is one, replay only the newer events.
/// Returns the state and the stream version, which is the `expected_version` of the next append.
pub fn load_order(
    store: &EventStore,
    order_id: &str,
    snapshot: Option<&Snapshot>,
) -> Result<(Option<OrderState>, u64), ReplayError> {
    let (mut state, mut version) = match snapshot {
        Some(snapshot) => (Some(snapshot.state.clone()), snapshot.version),
        None => (None, 0),
    };
    for stored in store.read_stream(order_id, version) {
        state = Some(OrderState::apply(state, &stored.event)?);
        version += 1;
    }
    Ok((state, version))
}
// ANCHOR_END: snapshot

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's event store, as JSON.
    const GUIDE_EVENTS: &str = r#"[
      { "id": 1, "type": "OrderCreated", "data": { "orderId": "123", "userId": "456" }, "timestamp": "2024-01-01T10:00:00Z" },
      { "id": 2, "type": "ItemAdded", "data": { "orderId": "123", "productId": "ABC", "quantity": 2 }, "timestamp": "2024-01-01T10:01:00Z" },
      { "id": 3, "type": "QuantityUpdated", "data": { "orderId": "123", "productId": "ABC", "quantity": 3 }, "timestamp": "2024-01-01T10:02:00Z" },
      { "id": 4, "type": "OrderPlaced", "data": { "orderId": "123", "total": 150 }, "timestamp": "2024-01-01T10:05:00Z" }
    ]"#;

    fn guide_events() -> Vec<StoredEvent> {
        serde_json::from_str(GUIDE_EVENTS).expect("the guide's events parse")
    }

    #[test]
    fn replaying_the_guides_events_gives_the_guides_result() {
        let state = rebuild_order_state(&guide_events(), "123")
            .expect("valid history")
            .expect("order exists");
        assert_eq!(
            serde_json::to_value(&state).expect("serializable"),
            serde_json::json!({
                "orderId": "123", "userId": "456",
                "items": [{ "productId": "ABC", "quantity": 3 }],
                "status": "placed", "total": 150
            })
        );
        assert_eq!(rebuild_order_state(&guide_events(), "999"), Ok(None));
    }

    #[test]
    fn impossible_histories_are_errors_not_crashes() {
        let mut events = guide_events();
        events.remove(1); // QuantityUpdated now refers to an item never added
        assert_eq!(
            rebuild_order_state(&events, "123"),
            Err(ReplayError::UnknownItem("ABC".into()))
        );
        assert_eq!(
            rebuild_order_state(&guide_events()[1..], "123"),
            Err(ReplayError::NotCreated("ItemAdded"))
        );
    }

    #[test]
    fn append_checks_the_expected_version() {
        let mut store = EventStore::default();
        let events: Vec<OrderEvent> = guide_events().into_iter().map(|s| s.event).collect();
        assert_eq!(
            store.append("123", 0, events[..2].to_vec(), "2024-01-01T10:01:00Z"),
            Ok(2)
        );
        // A writer that read the stream at version 0 is too late.
        assert_eq!(
            store.append("123", 0, events[2..3].to_vec(), "2024-01-01T10:02:00Z"),
            Err(AppendError::WrongExpectedVersion {
                stream: "123".into(),
                expected: 0,
                actual: 2
            })
        );
        assert_eq!(
            store.append("123", 2, events[2..].to_vec(), "2024-01-01T10:05:00Z"),
            Ok(4)
        );
        assert_eq!(store.read_stream("123", 3).len(), 1);
    }

    #[test]
    fn loading_from_a_snapshot_equals_a_full_replay() {
        let mut store = EventStore::default();
        let events: Vec<OrderEvent> = guide_events().into_iter().map(|s| s.event).collect();
        store
            .append("123", 0, events, "2024-01-01T10:05:00Z")
            .expect("empty stream");

        let (full, version) = load_order(&store, "123", None).expect("valid");
        assert_eq!(version, 4);

        let (at_two, _) = {
            let mut partial = EventStore::default();
            let first_two: Vec<OrderEvent> = guide_events()
                .into_iter()
                .take(2)
                .map(|s| s.event)
                .collect();
            partial
                .append("123", 0, first_two, "t")
                .expect("empty stream");
            load_order(&partial, "123", None).expect("valid")
        };
        let snapshot = Snapshot {
            version: 2,
            state: at_two.expect("created"),
        };
        assert_eq!(
            load_order(&store, "123", Some(&snapshot)),
            Ok((full, 4)),
            "snapshot + 2 newer events == 4 events from scratch"
        );
    }
}
