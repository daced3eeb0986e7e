//! The order-details view: one row per order, denormalised with the customer's and every
//! product's name, so the order page is one lookup. The guide's API Composition section
//! builds the same answer by calling four services; here it is built ahead of time from
//! their events. Names arrive in any order relative to the orders that use them, so the view
//! keeps the latest name of every customer and product, fills a row in when the name comes,
//! and rewrites every row that shows a name when it changes.

use std::collections::BTreeMap;

use event_sourcing_core::{Event, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fact::{Catalog, Fact};
use crate::view::{RowKey, View, table_named};

// ANCHOR: details_row
/// The order page's row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetails {
    /// The order's id.
    pub order_id: String,
    /// Who ordered.
    pub customer_id: String,
    /// Their name, once the customer service's event has been seen.
    pub customer_name: Option<String>,
    /// The lines, by SKU.
    pub lines: BTreeMap<String, DetailLine>,
    /// `open`, `placed` or `cancelled`.
    pub status: String,
    /// The sum of the lines, in cents.
    pub total_cents: u64,
}

/// One line of the order page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailLine {
    /// The product's name, once the product service's event has been seen.
    pub product_name: Option<String>,
    /// How many.
    pub quantity: u32,
    /// The price of one, in cents.
    pub unit_price_cents: u64,
}
// ANCHOR_END: details_row

/// The view: orders, plus the names it copies into them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details {
    /// The rows the read API serves, by order id.
    pub orders: BTreeMap<String, OrderDetails>,
    /// The latest name of each customer.
    pub customers: BTreeMap<String, String>,
    /// The latest name of each product.
    pub products: BTreeMap<String, String>,
}

const ORDERS: &str = "orders";
const CUSTOMERS: &str = "customers";
const PRODUCTS: &str = "products";

fn key(table: &'static str, key: &str) -> RowKey {
    RowKey {
        table,
        key: key.to_owned(),
    }
}

/// `open`, `placed` or `cancelled`: how the views spell an order's status.
pub fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Open => "open",
        Status::Placed { .. } => "placed",
        Status::Cancelled { .. } => "cancelled",
    }
}

impl Details {
    fn order_event(&mut self, order_id: &str, event: &Event) -> Vec<RowKey> {
        if let Event::OrderCreated { customer, .. } = event {
            if self.orders.contains_key(order_id) {
                return Vec::new();
            }
            let row = OrderDetails {
                order_id: order_id.to_owned(),
                customer_id: customer.clone(),
                customer_name: self.customers.get(customer).cloned(),
                lines: BTreeMap::new(),
                status: status_name(&Status::Open).to_owned(),
                total_cents: 0,
            };
            self.orders.insert(order_id.to_owned(), row);
            return vec![key(ORDERS, order_id)];
        }
        let Some(row) = self.orders.get_mut(order_id) else {
            return Vec::new();
        };
        match event {
            Event::OrderCreated { .. } => {}
            Event::ItemAdded {
                sku,
                quantity,
                unit_price_cents,
            } => {
                let line = DetailLine {
                    product_name: self.products.get(sku).cloned(),
                    quantity: *quantity,
                    unit_price_cents: *unit_price_cents,
                };
                row.lines.insert(sku.clone(), line);
            }
            Event::QuantityUpdated { sku, quantity } => {
                if let Some(line) = row.lines.get_mut(sku) {
                    line.quantity = *quantity;
                }
            }
            Event::ItemRemoved { sku } => {
                row.lines.remove(sku);
            }
            Event::OrderPlaced { .. } => row.status = "placed".to_owned(),
            Event::OrderCancelled { .. } => row.status = "cancelled".to_owned(),
        }
        row.total_cents = row
            .lines
            .values()
            .map(|line| u64::from(line.quantity).saturating_mul(line.unit_price_cents))
            .fold(0, u64::saturating_add);
        vec![key(ORDERS, order_id)]
    }

    fn catalog_event(&mut self, event: &Catalog) -> Vec<RowKey> {
        match event {
            Catalog::CustomerRegistered { customer_id, name }
            | Catalog::CustomerRenamed { customer_id, name } => {
                self.customers.insert(customer_id.clone(), name.clone());
                let mut changed = vec![key(CUSTOMERS, customer_id)];
                for row in self.orders.values_mut() {
                    if row.customer_id == *customer_id {
                        row.customer_name = Some(name.clone());
                        changed.push(key(ORDERS, &row.order_id));
                    }
                }
                changed
            }
            Catalog::ProductListed { sku, name } | Catalog::ProductRenamed { sku, name } => {
                self.products.insert(sku.clone(), name.clone());
                let mut changed = vec![key(PRODUCTS, sku)];
                for row in self.orders.values_mut() {
                    if let Some(line) = row.lines.get_mut(sku) {
                        line.product_name = Some(name.clone());
                        changed.push(key(ORDERS, &row.order_id));
                    }
                }
                changed
            }
        }
    }
}

impl View for Details {
    const NAME: &'static str = "order-details";
    const TABLES: &'static [&'static str] = &[ORDERS, CUSTOMERS, PRODUCTS];

    fn apply(&mut self, fact: &Fact) -> Vec<RowKey> {
        match fact {
            Fact::Order { order_id, event } => self.order_event(order_id, event),
            Fact::Catalog(event) => self.catalog_event(event),
            Fact::Other => Vec::new(),
        }
    }

    fn row(&self, key: &RowKey) -> Option<Value> {
        match key.table {
            ORDERS => self.orders.get(&key.key).map(|row| serde_json::json!(row)),
            CUSTOMERS => self
                .customers
                .get(&key.key)
                .map(|name| Value::from(name.as_str())),
            PRODUCTS => self
                .products
                .get(&key.key)
                .map(|name| Value::from(name.as_str())),
            _ => None,
        }
    }

    fn restore(&mut self, key: RowKey, row: Value) -> Result<(), serde_json::Error> {
        match table_named(Self::TABLES, key.table) {
            Some(ORDERS) => {
                self.orders.insert(key.key, serde_json::from_value(row)?);
            }
            Some(CUSTOMERS) => {
                self.customers.insert(key.key, serde_json::from_value(row)?);
            }
            Some(PRODUCTS) => {
                self.products.insert(key.key, serde_json::from_value(row)?);
            }
            _ => {}
        }
        Ok(())
    }
}
