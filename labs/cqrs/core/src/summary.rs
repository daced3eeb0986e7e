//! The per-customer summary view: for each customer, how many orders are open, placed and
//! cancelled and what the placed ones came to. Its rows are shaped for the account page; it
//! also keeps, per order, whose it is and where it stands, because later events of an order
//! do not name the customer.

use std::collections::BTreeMap;

use event_sourcing_core::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fact::{Catalog, Fact};
use crate::view::{RowKey, View, table_named};

// ANCHOR: summary_row
/// The account page's row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerSummary {
    /// The customer's id.
    pub customer_id: String,
    /// Their latest name, once seen.
    pub name: Option<String>,
    /// Orders still open.
    pub open: u64,
    /// Orders placed.
    pub placed: u64,
    /// Orders cancelled.
    pub cancelled: u64,
    /// What the placed orders came to, in cents.
    pub spent_cents: u64,
}
// ANCHOR_END: summary_row

/// Whose an order is and whether it is still open: what later events of the order need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderOwner {
    /// The customer who ordered.
    pub customer_id: String,
    /// Whether the order is still open.
    pub open: bool,
}

/// The view: summaries by customer, owners by order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The rows the read API serves, by customer id.
    pub customers: BTreeMap<String, CustomerSummary>,
    /// Each order's owner.
    pub orders: BTreeMap<String, OrderOwner>,
}

const CUSTOMERS: &str = "customers";
const ORDERS: &str = "orders";

fn key(table: &'static str, key: &str) -> RowKey {
    RowKey {
        table,
        key: key.to_owned(),
    }
}

impl Summary {
    fn customer(&mut self, customer_id: &str) -> &mut CustomerSummary {
        self.customers
            .entry(customer_id.to_owned())
            .or_insert_with(|| CustomerSummary {
                customer_id: customer_id.to_owned(),
                ..CustomerSummary::default()
            })
    }

    fn order_event(&mut self, order_id: &str, event: &Event) -> Vec<RowKey> {
        match event {
            Event::OrderCreated { customer, .. } => {
                if self.orders.contains_key(order_id) {
                    return Vec::new();
                }
                let owner = OrderOwner {
                    customer_id: customer.clone(),
                    open: true,
                };
                self.orders.insert(order_id.to_owned(), owner);
                self.customer(customer).open += 1;
                vec![key(ORDERS, order_id), key(CUSTOMERS, customer)]
            }
            Event::OrderPlaced { total_cents } => self.close(order_id, Some(*total_cents)),
            Event::OrderCancelled { .. } => self.close(order_id, None),
            _ => Vec::new(),
        }
    }

    /// Closes an open order: placed at `total`, or cancelled when `None`.
    fn close(&mut self, order_id: &str, total: Option<u64>) -> Vec<RowKey> {
        let Some(owner) = self.orders.get_mut(order_id).filter(|owner| owner.open) else {
            return Vec::new();
        };
        owner.open = false;
        let customer_id = owner.customer_id.clone();
        let summary = self.customer(&customer_id);
        summary.open = summary.open.saturating_sub(1);
        match total {
            Some(total) => {
                summary.placed += 1;
                summary.spent_cents = summary.spent_cents.saturating_add(total);
            }
            None => summary.cancelled += 1,
        }
        vec![key(ORDERS, order_id), key(CUSTOMERS, &customer_id)]
    }
}

impl View for Summary {
    const NAME: &'static str = "customer-summary";
    const TABLES: &'static [&'static str] = &[CUSTOMERS, ORDERS];

    fn apply(&mut self, fact: &Fact) -> Vec<RowKey> {
        match fact {
            Fact::Order { order_id, event } => self.order_event(order_id, event),
            Fact::Catalog(
                Catalog::CustomerRegistered { customer_id, name }
                | Catalog::CustomerRenamed { customer_id, name },
            ) => {
                self.customer(customer_id).name = Some(name.clone());
                vec![key(CUSTOMERS, customer_id)]
            }
            Fact::Catalog(_) | Fact::Other => Vec::new(),
        }
    }

    fn row(&self, key: &RowKey) -> Option<Value> {
        match key.table {
            CUSTOMERS => self
                .customers
                .get(&key.key)
                .map(|row| serde_json::json!(row)),
            ORDERS => self.orders.get(&key.key).map(|row| serde_json::json!(row)),
            _ => None,
        }
    }

    fn restore(&mut self, key: RowKey, row: Value) -> Result<(), serde_json::Error> {
        match table_named(Self::TABLES, key.table) {
            Some(CUSTOMERS) => {
                self.customers.insert(key.key, serde_json::from_value(row)?);
            }
            Some(ORDERS) => {
                self.orders.insert(key.key, serde_json::from_value(row)?);
            }
            _ => {}
        }
        Ok(())
    }
}
