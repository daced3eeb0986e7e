//! What a reader does without the view: the order page computed from the write model itself,
//! the event sourcing lab's SQLite store. The benchmark fills a store file with the same
//! events (its schema, one stream per order, customer and product), and a read loads the
//! order's stream, then its customer's and its products' streams, and folds them with the
//! core's order-details fold: the same answer the view's row holds, what the guide's API
//! Composition gets by asking the order, customer and product services.

use std::collections::HashMap;
use std::path::Path;

use cqrs_core::{Details, Fact, OrderDetails, Positioned, View};
use event_sourcing_core::{NewEvent, Recorded};
use event_sourcing_store::{Durability, Sqlite};
use rusqlite::{Connection, params};

/// Writes `facts` into a new event store at `path`, in `$all` order; returns a connection to it.
pub fn fill(path: &Path, facts: &[Positioned]) -> Connection {
    drop(Sqlite::open(path, Durability::Normal).unwrap());
    let mut connection = Connection::open(path).unwrap();
    let tx = connection.transaction().unwrap();
    let mut versions: HashMap<String, u64> = HashMap::new();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO events (position, stream, version, event_id, event_type, schema, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .unwrap();
        for event in facts {
            let (stream, new): (String, NewEvent) = match &event.fact {
                Fact::Order { order_id, event: e } => (
                    format!("order-{order_id}"),
                    event_sourcing_core::encode(e, format!("e{}", event.position)),
                ),
                Fact::Catalog(catalog) => (
                    catalog.stream(),
                    catalog.encode(format!("e{}", event.position)),
                ),
                Fact::Other => continue,
            };
            let version = versions.entry(stream.clone()).or_default();
            *version += 1;
            insert
                .execute(params![
                    event.position,
                    stream,
                    *version,
                    new.event_id,
                    new.event_type,
                    new.schema,
                    new.data.to_string()
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    connection
}

/// A stream's events, as the store's `read_stream` selects them.
fn stream(connection: &Connection, name: &str) -> Vec<Positioned> {
    let mut query = connection
        .prepare_cached(
            "SELECT position, stream, version, event_id, event_type, schema, data \
             FROM events WHERE stream = ?1 AND version >= 1 ORDER BY version",
        )
        .unwrap();
    let rows = query
        .query_map([name], |row| {
            let data: String = row.get(6)?;
            Ok(Recorded {
                position: row.get(0)?,
                stream: row.get(1)?,
                version: row.get(2)?,
                event_id: row.get(3)?,
                event_type: row.get(4)?,
                schema: row.get(5)?,
                data: serde_json::from_str(&data).unwrap(),
            })
        })
        .unwrap();
    rows.map(|row| Positioned::decode(&row.unwrap()).unwrap())
        .collect()
}

/// The order page from the store: the order's stream, then its customer's and products'.
pub fn order_page(connection: &Connection, order_id: &str) -> OrderDetails {
    let mut details = Details::default();
    let order = stream(connection, &format!("order-{order_id}"));
    for event in &order {
        details.apply(&event.fact);
    }
    let row = &details.orders[order_id];
    let mut others = vec![format!("customer-{}", row.customer_id)];
    others.extend(row.lines.keys().map(|sku| format!("product-{sku}")));
    for name in others {
        for event in stream(connection, &name) {
            details.apply(&event.fact);
        }
    }
    details.orders.remove(order_id).unwrap()
}
