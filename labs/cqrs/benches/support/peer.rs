//! The benchmark's peer: the `cqrs-es` crate's `GenericQuery`, the query its framework
//! updates inline after each commit (`CqrsFramework::execute` commits, then calls
//! `Query::dispatch` with the committed events), fed the same events as the lab's
//! projection, one commit per event. `cqrs-es` ships no SQLite view repository (its
//! persistent ones are `postgres-es`, `mysql-es` and `dynamo-es`), so this file gives it one
//! over the same SQLite settings as the lab's views (WAL, `synchronous = NORMAL`): a row per
//! view instance, the view as JSON and its version, each update in its own transaction.
//!
//! A `cqrs-es` view sees only its own aggregate's events, so the order page cannot be one
//! denormalised row: the order's view keeps customer and product ids, each customer and
//! product has a view of its own, and the read loads the order's and then the names'.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use cqrs_core::{Catalog, DetailLine, Fact, OrderDetails, Positioned};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{GenericQuery, PersistenceError, ViewContext, ViewRepository};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, Query, View};
use event_sourcing_core::Event;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// The lab's events as one `cqrs-es` aggregate type sees them: an order's, a customer's or a
/// product's, keyed by the aggregate id (`o1`, `c1`, `p1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ShopEvent {
    /// A customer or product event.
    Catalog(Catalog),
    /// An order aggregate's event.
    Order(Event),
}

impl DomainEvent for ShopEvent {
    fn event_type(&self) -> String {
        match self {
            ShopEvent::Catalog(_) => "catalog".to_owned(),
            ShopEvent::Order(_) => "order".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// The aggregate type `cqrs-es` needs to name the events; the benchmark sends it no command.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Shop;

impl Aggregate for Shop {
    const TYPE: &'static str = "shop";
    type Command = ();
    type Event = ShopEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    async fn handle(
        &mut self,
        _command: (),
        _services: &(),
        _sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, _event: ShopEvent) {}
}

/// One view instance: a customer's or product's name, or an order's fields by id.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ShopView {
    /// The customer's or product's name.
    name: Option<String>,
    /// The order's customer.
    customer_id: String,
    /// The order's lines by SKU, without names.
    lines: BTreeMap<String, (u32, u64)>,
    /// `open`, `placed` or `cancelled`.
    status: String,
}

impl View<Shop> for ShopView {
    fn update(&mut self, event: &EventEnvelope<Shop>) {
        match &event.payload {
            ShopEvent::Catalog(
                Catalog::CustomerRegistered { name, .. }
                | Catalog::CustomerRenamed { name, .. }
                | Catalog::ProductListed { name, .. }
                | Catalog::ProductRenamed { name, .. },
            ) => self.name = Some(name.clone()),
            ShopEvent::Order(event) => match event {
                Event::OrderCreated { customer, .. } => {
                    self.customer_id = customer.clone();
                    self.status = "open".to_owned();
                }
                Event::ItemAdded {
                    sku,
                    quantity,
                    unit_price_cents,
                } => {
                    self.lines
                        .insert(sku.clone(), (*quantity, *unit_price_cents));
                }
                Event::QuantityUpdated { sku, quantity } => {
                    if let Some(line) = self.lines.get_mut(sku) {
                        line.0 = *quantity;
                    }
                }
                Event::ItemRemoved { sku } => {
                    self.lines.remove(sku);
                }
                Event::OrderPlaced { .. } => self.status = "placed".to_owned(),
                Event::OrderCancelled { .. } => self.status = "cancelled".to_owned(),
            },
        }
    }
}

/// `cqrs-es` views in one SQLite file.
pub struct SqliteViews {
    connection: Mutex<Connection>,
}

fn persistence(error: impl std::error::Error + Send + Sync + 'static) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(error))
}

impl SqliteViews {
    /// Opens (or creates) the views' file at `path`.
    pub fn open(path: &Path) -> SqliteViews {
        let connection = Connection::open(path).unwrap();
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .unwrap();
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS views (id TEXT PRIMARY KEY, version INTEGER NOT NULL, \
                 payload TEXT NOT NULL)",
            )
            .unwrap();
        SqliteViews {
            connection: Mutex::new(connection),
        }
    }

    fn select(&self, view_id: &str) -> Result<Option<(ShopView, i64)>, PersistenceError> {
        let connection = self.connection.lock();
        let mut query = connection
            .prepare_cached("SELECT payload, version FROM views WHERE id = ?1")
            .map_err(persistence)?;
        let row = query
            .query_row([view_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .optional()
            .map_err(persistence)?;
        match row {
            None => Ok(None),
            Some((payload, version)) => Ok(Some((
                serde_json::from_str(&payload).map_err(persistence)?,
                version,
            ))),
        }
    }
}

impl ViewRepository<ShopView, Shop> for SqliteViews {
    async fn load(&self, view_id: &str) -> Result<Option<ShopView>, PersistenceError> {
        Ok(self.select(view_id)?.map(|(view, _)| view))
    }

    async fn load_with_context(
        &self,
        view_id: &str,
    ) -> Result<Option<(ShopView, ViewContext)>, PersistenceError> {
        Ok(self
            .select(view_id)?
            .map(|(view, version)| (view, ViewContext::new(view_id.to_owned(), version))))
    }

    async fn update_view(
        &self,
        view: ShopView,
        context: ViewContext,
    ) -> Result<(), PersistenceError> {
        let payload = serde_json::to_string(&view).map_err(persistence)?;
        let connection = self.connection.lock();
        let changed = connection
            .prepare_cached(
                "INSERT INTO views (id, version, payload) VALUES (?1, ?2 + 1, ?3) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, payload = excluded.payload \
                 WHERE views.version = ?2",
            )
            .map_err(persistence)?
            .execute(params![context.view_instance_id, context.version, payload])
            .map_err(persistence)?;
        if changed == 0 {
            return Err(PersistenceError::OptimisticLockError);
        }
        Ok(())
    }
}

/// The peer's query over its SQLite views.
pub type ShopQuery = GenericQuery<SqliteViews, ShopView, Shop>;

/// The aggregate id an event belongs to and the event as the peer's aggregate records it.
fn envelope(
    event: &Positioned,
    sequence: &mut HashMap<String, usize>,
) -> Option<EventEnvelope<Shop>> {
    let (id, payload) = match &event.fact {
        Fact::Order { order_id, event } => (order_id.clone(), ShopEvent::Order(event.clone())),
        Fact::Catalog(
            catalog @ (Catalog::CustomerRegistered {
                customer_id: id, ..
            }
            | Catalog::CustomerRenamed {
                customer_id: id, ..
            }
            | Catalog::ProductListed { sku: id, .. }
            | Catalog::ProductRenamed { sku: id, .. }),
        ) => (id.clone(), ShopEvent::Catalog(catalog.clone())),
        Fact::Other => return None,
    };
    let next = sequence.entry(id.clone()).or_default();
    *next += 1;
    Some(EventEnvelope {
        aggregate_id: id,
        sequence: *next,
        payload,
        metadata: HashMap::new(),
    })
}

/// Dispatches every fact to `query` as its own commit, as the framework does after each
/// command; events/s.
pub async fn apply(query: &ShopQuery, facts: &[Positioned]) -> f64 {
    let envelopes: Vec<EventEnvelope<Shop>> = {
        let mut sequence = HashMap::new();
        facts
            .iter()
            .filter_map(|event| envelope(event, &mut sequence))
            .collect()
    };
    let started = std::time::Instant::now();
    for envelope in &envelopes {
        query
            .dispatch(&envelope.aggregate_id, std::slice::from_ref(envelope))
            .await;
    }
    envelopes.len() as f64 / started.elapsed().as_secs_f64()
}

/// The order page from the peer's views: the order's, then its customer's and products'
/// names; the same answer the lab's view row holds.
pub async fn order_page(query: &ShopQuery, order_id: &str) -> OrderDetails {
    let order = query.load(order_id).await.unwrap();
    let customer_name = query
        .load(&order.customer_id)
        .await
        .and_then(|customer| customer.name);
    let mut lines = BTreeMap::new();
    for (sku, (quantity, unit_price_cents)) in &order.lines {
        let product_name = query.load(sku).await.and_then(|product| product.name);
        lines.insert(
            sku.clone(),
            DetailLine {
                product_name,
                quantity: *quantity,
                unit_price_cents: *unit_price_cents,
            },
        );
    }
    let total_cents = lines
        .values()
        .map(|line| u64::from(line.quantity) * line.unit_price_cents)
        .sum();
    OrderDetails {
        order_id: order_id.to_owned(),
        customer_id: order.customer_id,
        customer_name,
        lines,
        status: order.status,
        total_cents,
    }
}
