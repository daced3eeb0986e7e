//! CQRS, retold from the guide's diagram: a write side that validates commands and emits events,
//! and a read side that projects those events into a denormalized read model.
//!
//! The two sides share nothing but the event stream. The write model is normalized and checks
//! invariants; the read model is shaped for one screen and is rebuilt from events, so it can be
//! thrown away and replayed. Between the two there is a delay (eventual consistency) and the
//! transport may deliver an event twice, so the projection remembers the last position it applied.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

// ANCHOR: events
/// Events on the bus, each with its position in the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Position in the stream, strictly increasing: the projection's bookmark.
    pub position: u64,
    /// What happened.
    pub event: Event,
}

/// Facts the read side projects: from the order service, and from the user service's topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A user signed up (published by the user service).
    UserRegistered {
        /// User id.
        user_id: String,
        /// Display name.
        name: String,
    },
    /// A user changed their name: every denormalized copy must follow.
    UserRenamed {
        /// User id.
        user_id: String,
        /// New display name.
        name: String,
    },
    /// The order service accepted an order.
    OrderCreated {
        /// Order id.
        order_id: String,
        /// Who placed it.
        user_id: String,
        /// Total in cents.
        total: u64,
    },
    /// The order left the warehouse.
    OrderShipped {
        /// Order id.
        order_id: String,
    },
}
// ANCHOR_END: events

// ANCHOR: commands
/// Intentions sent to the write side; they may be refused, events may not.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `✍️ Create Order`
    CreateOrder {
        /// Client-chosen id, which makes a retried command detectable.
        order_id: String,
        /// Who places it.
        user_id: String,
        /// Total in cents.
        total: u64,
    },
    /// Mark an order as shipped.
    ShipOrder {
        /// Order id.
        order_id: String,
    },
}

/// Why the write side refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// An order with this id exists already.
    #[error("order {0} already exists")]
    DuplicateOrder(String),
    /// No such order.
    #[error("order {0} not found")]
    UnknownOrder(String),
    /// Shipping twice is a bug upstream, not a no-op.
    #[error("order {0} has already shipped")]
    AlreadyShipped(String),
    /// An order must cost something.
    #[error("an order total must be positive")]
    EmptyOrder,
}

/// The write side's normalized state: just what it needs to check invariants.
#[derive(Debug, Clone, Default)]
pub struct OrderWriteModel {
    shipped: HashMap<String, bool>,
    next_position: u64,
}

impl OrderWriteModel {
    /// An empty write model whose first event gets position `first_position`.
    pub fn starting_at(first_position: u64) -> Self {
        Self {
            shipped: HashMap::new(),
            next_position: first_position,
        }
    }

    /// Validates a command against the current state and returns the event to publish.
    pub fn handle(&mut self, command: Command) -> Result<Envelope, CommandError> {
        let event = match command {
            Command::CreateOrder {
                order_id,
                user_id,
                total,
            } => {
                if total == 0 {
                    return Err(CommandError::EmptyOrder);
                }
                if self.shipped.contains_key(&order_id) {
                    return Err(CommandError::DuplicateOrder(order_id));
                }
                self.shipped.insert(order_id.clone(), false);
                Event::OrderCreated {
                    order_id,
                    user_id,
                    total,
                }
            }
            Command::ShipOrder { order_id } => match self.shipped.get_mut(&order_id) {
                None => return Err(CommandError::UnknownOrder(order_id)),
                Some(true) => return Err(CommandError::AlreadyShipped(order_id)),
                Some(shipped) => {
                    *shipped = true;
                    Event::OrderShipped { order_id }
                }
            },
        };
        let position = self.next_position;
        self.next_position += 1;
        Ok(Envelope { position, event })
    }
}
// ANCHOR_END: commands

// ANCHOR: projection
/// One row of the read model: everything the order-details screen shows, no joins needed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderDetailsRow {
    /// Order id.
    pub order_id: String,
    /// Customer id.
    pub user_id: String,
    /// Customer name, copied in (denormalized) so the query needs no call to the user service.
    pub customer_name: String,
    /// Total in cents.
    pub total: u64,
    /// `placed` or `shipped`.
    pub status: &'static str,
}

/// The read model and the projection that keeps it up to date.
#[derive(Debug, Clone, Default)]
pub struct OrderDetailsProjection {
    rows: HashMap<String, OrderDetailsRow>,
    user_names: HashMap<String, String>,
    last_position: Option<u64>,
}

impl OrderDetailsProjection {
    /// Applies one event. Returns `false` when the event was already applied (the bus
    /// delivers at least once), which makes redelivery harmless.
    pub fn apply(&mut self, envelope: &Envelope) -> bool {
        if self
            .last_position
            .is_some_and(|last| envelope.position <= last)
        {
            return false;
        }
        match &envelope.event {
            Event::UserRegistered { user_id, name } | Event::UserRenamed { user_id, name } => {
                self.user_names.insert(user_id.clone(), name.clone());
                for row in self.rows.values_mut().filter(|row| &row.user_id == user_id) {
                    row.customer_name = name.clone();
                }
            }
            Event::OrderCreated {
                order_id,
                user_id,
                total,
            } => {
                let customer_name = self.user_names.get(user_id).cloned().unwrap_or_default();
                self.rows.insert(
                    order_id.clone(),
                    OrderDetailsRow {
                        order_id: order_id.clone(),
                        user_id: user_id.clone(),
                        customer_name,
                        total: *total,
                        status: "placed",
                    },
                );
            }
            Event::OrderShipped { order_id } => {
                if let Some(row) = self.rows.get_mut(order_id) {
                    row.status = "shipped";
                }
            }
        }
        self.last_position = Some(envelope.position);
        true
    }

    /// The position to resume from after a restart (stored next to the rows in a real read DB).
    pub fn last_position(&self) -> Option<u64> {
        self.last_position
    }
}
// ANCHOR_END: projection

// ANCHOR: queries
impl OrderDetailsProjection {
    /// `📖 Get Order Details`: one lookup, no joins, no calls to other services.
    pub fn order_details(&self, order_id: &str) -> Option<&OrderDetailsRow> {
        self.rows.get(order_id)
    }

    /// A second query shape served from the same events: a customer's orders, newest id last.
    pub fn orders_of(&self, user_id: &str) -> Vec<&OrderDetailsRow> {
        let mut rows: Vec<_> = self
            .rows
            .values()
            .filter(|row| row.user_id == user_id)
            .collect();
        rows.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        rows
    }
}
// ANCHOR_END: queries

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(position: u64) -> Envelope {
        Envelope {
            position,
            event: Event::UserRegistered {
                user_id: "456".into(),
                name: "Alice".into(),
            },
        }
    }

    #[test]
    fn write_side_refuses_commands_that_break_invariants() {
        let mut orders = OrderWriteModel::starting_at(1);
        let create = Command::CreateOrder {
            order_id: "123".into(),
            user_id: "456".into(),
            total: 150,
        };
        assert_eq!(orders.handle(create.clone()).map(|e| e.position), Ok(1));
        assert_eq!(
            orders.handle(create),
            Err(CommandError::DuplicateOrder("123".into()))
        );
        let ship = Command::ShipOrder {
            order_id: "123".into(),
        };
        assert_eq!(orders.handle(ship.clone()).map(|e| e.position), Ok(2));
        assert_eq!(
            orders.handle(ship),
            Err(CommandError::AlreadyShipped("123".into()))
        );
        assert_eq!(
            orders.handle(Command::CreateOrder {
                order_id: "9".into(),
                user_id: "456".into(),
                total: 0
            }),
            Err(CommandError::EmptyOrder)
        );
    }

    #[test]
    fn read_model_is_eventually_consistent_and_denormalized() {
        let mut orders = OrderWriteModel::starting_at(2);
        let mut read = OrderDetailsProjection::default();
        read.apply(&registered(1));

        let created = orders
            .handle(Command::CreateOrder {
                order_id: "123".into(),
                user_id: "456".into(),
                total: 150,
            })
            .expect("valid command");
        // The command succeeded, but the read side has not seen the event yet.
        assert_eq!(read.order_details("123"), None);

        assert!(read.apply(&created));
        let row = read.order_details("123").expect("projected");
        assert_eq!(row.customer_name, "Alice");
        assert_eq!(row.status, "placed");
    }

    #[test]
    fn redelivered_events_are_skipped_and_renames_propagate() {
        let mut read = OrderDetailsProjection::default();
        let created = Envelope {
            position: 2,
            event: Event::OrderCreated {
                order_id: "123".into(),
                user_id: "456".into(),
                total: 150,
            },
        };
        assert!(read.apply(&registered(1)));
        assert!(read.apply(&created));
        assert!(!read.apply(&created), "duplicate delivery is ignored");
        assert!(!read.apply(&registered(1)), "older event is ignored");
        read.apply(&Envelope {
            position: 3,
            event: Event::UserRenamed {
                user_id: "456".into(),
                name: "Alice Smith".into(),
            },
        });
        read.apply(&Envelope {
            position: 4,
            event: Event::OrderShipped {
                order_id: "123".into(),
            },
        });
        let mine = read.orders_of("456");
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].customer_name, "Alice Smith");
        assert_eq!(mine[0].status, "shipped");
        assert_eq!(read.last_position(), Some(4));
    }

    #[test]
    fn events_serialize_with_a_type_tag() {
        let json = serde_json::to_value(Event::OrderShipped {
            order_id: "123".into(),
        })
        .expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({"type": "OrderShipped", "order_id": "123"})
        );
    }
}
