//! The same saga without an orchestrator: each service reacts to the others' events.
//!
//! ```text
//! order ─OrderCreated─▶ payment ─PaymentReserved─▶ inventory ─StockReserved─▶ shipping
//!   ▲                      │ PaymentFailed            │ StockFailed              │ ShippingScheduled ─▶ order: APPROVED
//!   └── PaymentRefunded ◀──┴─ refund ◀── StockReleased ◀── release ◀── ShippingFailed
//! ```
//!
//! Three tables make it reliable, in every service's own database:
//! - **outbox**: an event is inserted in the same transaction as the state change it
//!   announces, and a relay publishes it afterwards. There is no moment where the change is
//!   committed but the event is lost (or the event is out but the change rolled back);
//! - **inbox**: the id of each handled message is recorded in the same transaction as its
//!   effect, so a redelivered message is recognised and skipped;
//! - **dead_letter**: a message that still fails after a few tries is parked there, with
//!   the error, for an operator (the demo shows it), instead of blocking the queue.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction};
use saga_core::{CommandKind, OrderStatus, SagaDefinition};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::bus::{Bus, Message};
use crate::db::Db;
use crate::line::OrderLine;
use crate::order;
use crate::participant::{Domain, Participant};
use crate::problem::{Problem, SagaProblem};
use crate::system::System;

/// The tables every service needs for the choreography (added to each database's schema).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL, payload TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS inbox (message_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dead_letter (
    message_id TEXT PRIMARY KEY, event TEXT NOT NULL, payload TEXT NOT NULL,
    error TEXT NOT NULL, attempts INTEGER NOT NULL
);";

/// How many times a consumer tries a message before it dead-letters it.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 5;

/// Receives `(service, event)` as events are published, for the demo's narration.
pub type EventNarrator = Arc<dyn Fn(&str, &Message) + Send + Sync>;

// ANCHOR: enqueue
/// Writes an event into the outbox, inside the caller's transaction. The id is derived from
/// the order and the event, so writing it twice (a replay) is a no-op.
pub fn enqueue(tx: &Transaction<'_>, event: &str, line: &OrderLine) -> rusqlite::Result<()> {
    let payload = serde_json::to_string(line).unwrap_or_default();
    tx.execute(
        "INSERT OR IGNORE INTO outbox (message_id, event, payload) VALUES (?1, ?2, ?3)",
        rusqlite::params![format!("{}:{event}", line.order_id), event, payload],
    )?;
    Ok(())
}
// ANCHOR_END: enqueue

fn seen(connection: &Connection, message_id: &str) -> rusqlite::Result<bool> {
    connection
        .query_row(
            "SELECT 1 FROM inbox WHERE message_id = ?1",
            [message_id],
            |_| Ok(()),
        )
        .optional()
        .map(|row| row.is_some())
}

fn record_inbox(tx: &Transaction<'_>, message_id: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO inbox (message_id) VALUES (?1)",
        [message_id],
    )?;
    Ok(())
}

/// A handler's verdict on one message.
#[derive(Debug, PartialEq, Eq)]
enum Handled {
    /// Done (or nothing to do): acknowledge it.
    Done,
    /// A transient failure: try again later.
    Retry(String),
}

/// What a participant does when it sees an event.
struct Reaction {
    kind: CommandKind,
    step: usize,
    on_success: &'static str,
    on_refusal: &'static str,
}

// ANCHOR: react
/// A participant's reaction: the action or compensation, the inbox row and the next event,
/// all in the transaction that stores the idempotent reply.
fn react<D: Domain>(
    participant: &Participant<D>,
    message: &Message,
    reaction: &Reaction,
) -> Handled {
    let Ok(line) = serde_json::from_slice::<OrderLine>(&message.payload) else {
        return Handled::Retry(format!("message {} is not an order line", message.id));
    };
    match seen(&participant.db().lock(), &message.id) {
        Ok(true) => return Handled::Done, // a redelivery: its effect is already committed
        Ok(false) => {}
        Err(error) => return Handled::Retry(error.to_string()),
    }
    let key = SagaDefinition::order_fulfilment().idempotency_key(
        &line.order_id,
        reaction.step,
        reaction.kind,
    );
    let reply = participant.execute_with(reaction.kind, &key, &line, |tx, reply| {
        record_inbox(tx, &message.id)?;
        let next = if reply.is_success() {
            reaction.on_success
        } else {
            reaction.on_refusal
        };
        enqueue(tx, next, &line)
    });
    if reply.is_success() || reply.is_business_refusal() {
        Handled::Done
    } else {
        Handled::Retry(reply.detail())
    }
}
// ANCHOR_END: react

// ANCHOR: reactions
fn payment_reaction(event: &str) -> Option<Reaction> {
    match event {
        "OrderCreated" => Some(Reaction {
            kind: CommandKind::Action,
            step: 1,
            on_success: "PaymentReserved",
            on_refusal: "PaymentFailed",
        }),
        "StockFailed" | "StockReleased" => Some(Reaction {
            kind: CommandKind::Compensation,
            step: 1,
            on_success: "PaymentRefunded",
            on_refusal: "PaymentRefunded",
        }),
        _ => None,
    }
}

fn inventory_reaction(event: &str) -> Option<Reaction> {
    match event {
        "PaymentReserved" => Some(Reaction {
            kind: CommandKind::Action,
            step: 2,
            on_success: "StockReserved",
            on_refusal: "StockFailed",
        }),
        "ShippingFailed" => Some(Reaction {
            kind: CommandKind::Compensation,
            step: 2,
            on_success: "StockReleased",
            on_refusal: "StockReleased",
        }),
        _ => None,
    }
}

fn shipping_reaction(event: &str) -> Option<Reaction> {
    match event {
        "StockReserved" => Some(Reaction {
            kind: CommandKind::Action,
            step: 3,
            on_success: "ShippingScheduled",
            on_refusal: "ShippingFailed",
        }),
        _ => None,
    }
}
// ANCHOR_END: reactions

/// The order service's reaction: the end of the saga sets the order's status.
fn order_reaction(db: &Db, message: &Message) -> Handled {
    let status = match message.event.as_str() {
        "ShippingScheduled" => OrderStatus::Approved,
        "PaymentFailed" | "PaymentRefunded" => OrderStatus::Cancelled,
        _ => return Handled::Done,
    };
    let Ok(line) = serde_json::from_slice::<OrderLine>(&message.payload) else {
        return Handled::Retry(format!("message {} is not an order line", message.id));
    };
    let result = (|| -> rusqlite::Result<()> {
        let mut connection = db.lock();
        if seen(&connection, &message.id)? {
            return Ok(());
        }
        let tx = connection.transaction()?;
        tx.execute(
            "UPDATE orders SET status = ?2 WHERE id = ?1 AND status = 'PENDING'",
            rusqlite::params![line.order_id, status.as_str()],
        )?;
        record_inbox(&tx, &message.id)?;
        tx.commit()
    })();
    match result {
        Ok(()) => Handled::Done,
        Err(error) => Handled::Retry(error.to_string()),
    }
}

/// The running choreography: four relays and four consumers.
#[derive(Debug)]
pub struct Choreography {
    system: System,
    notify: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
    bus: Bus,
}

impl Drop for Choreography {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Choreography {
    /// Starts the relays and consumers of the four services of `system` on `bus`.
    /// `system` must have been started with [`SCHEMA`] as extra schema.
    pub async fn start(
        system: &System,
        bus: Bus,
        narrator: Option<EventNarrator>,
    ) -> anyhow::Result<Choreography> {
        let notify = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let dbs: [(&str, Db); 4] = [
            ("order", Arc::clone(system.order.db())),
            ("payment", Arc::clone(system.payment.db())),
            ("inventory", Arc::clone(system.inventory.db())),
            ("shipping", Arc::clone(system.shipping.db())),
        ];
        for (name, db) in &dbs {
            tasks.push(tokio::spawn(relay(
                name,
                Arc::clone(db),
                bus.clone(),
                Arc::clone(&notify),
                narrator.clone(),
            )));
        }
        type Handler = Box<dyn Fn(&Message) -> Handled + Send + Sync>;
        let payment = Arc::clone(&system.payment);
        let inventory = Arc::clone(&system.inventory);
        let shipping = Arc::clone(&system.shipping);
        let order_db = Arc::clone(system.order.db());
        let handlers: [(&str, Db, Handler); 4] = [
            (
                "payment",
                Arc::clone(system.payment.db()),
                Box::new(move |m| match payment_reaction(&m.event) {
                    Some(reaction) => react(&payment, m, &reaction),
                    None => Handled::Done,
                }),
            ),
            (
                "inventory",
                Arc::clone(system.inventory.db()),
                Box::new(move |m| match inventory_reaction(&m.event) {
                    Some(reaction) => react(&inventory, m, &reaction),
                    None => Handled::Done,
                }),
            ),
            (
                "shipping",
                Arc::clone(system.shipping.db()),
                Box::new(move |m| match shipping_reaction(&m.event) {
                    Some(reaction) => react(&shipping, m, &reaction),
                    None => Handled::Done,
                }),
            ),
            (
                "order",
                Arc::clone(system.order.db()),
                Box::new(move |m| order_reaction(&order_db, m)),
            ),
        ];
        for (name, db, handler) in handlers {
            let subscription = bus.subscribe(name).await?;
            let notify = Arc::clone(&notify);
            tasks.push(tokio::spawn(async move {
                consume(subscription, db, handler, notify).await;
            }));
        }
        Ok(Choreography {
            system: system.clone(),
            notify,
            tasks,
            bus,
        })
    }

    /// Which bus carries the events.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    // ANCHOR: place
    /// Places an order: the PENDING row and the `OrderCreated` event, in one transaction.
    pub fn place(&self, line: &OrderLine) -> Result<(), Problem> {
        line.validate()?;
        let result = (|| -> rusqlite::Result<bool> {
            let mut connection = self.system.order.db().lock();
            let tx = connection.transaction()?;
            let inserted = order::insert_pending(&tx, line)?;
            if inserted {
                enqueue(&tx, "OrderCreated", line)?;
            }
            tx.commit()?;
            Ok(inserted)
        })();
        match result {
            Ok(false) => Err(order::order_exists(line)),
            Ok(true) => {
                self.notify.notify_waiters();
                Ok(())
            }
            Err(error) => Err(Problem::unavailable(error.to_string())),
        }
    }
    // ANCHOR_END: place

    /// Waits until the order is no longer PENDING (checking every few milliseconds, at most
    /// `max_checks` times) and returns its status.
    pub async fn settle(&self, order_id: &str, max_checks: u32) -> OrderStatus {
        for _ in 0..max_checks {
            let status = self
                .system
                .order
                .view(order_id)
                .ok()
                .flatten()
                .map_or(OrderStatus::Pending, |view| view.status);
            if status != OrderStatus::Pending {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        OrderStatus::Pending
    }

    /// Every service's dead letters: `(service, message id, error)`.
    pub fn dead_letters(&self) -> Vec<(String, String, String)> {
        let mut letters = Vec::new();
        for (name, db) in [
            ("order", self.system.order.db()),
            ("payment", self.system.payment.db()),
            ("inventory", self.system.inventory.db()),
            ("shipping", self.system.shipping.db()),
        ] {
            let connection = db.lock();
            if let Ok(mut statement) =
                connection.prepare("SELECT message_id, error FROM dead_letter ORDER BY message_id")
                && let Ok(rows) =
                    statement.query_map([], |row| Ok((name.to_owned(), row.get(0)?, row.get(1)?)))
            {
                letters.extend(rows.filter_map(Result::ok));
            }
        }
        letters
    }
}

// ANCHOR: relay
/// Publishes a service's outbox, oldest first, and marks each row published afterwards.
/// A crash between the two publishes the event again on restart: consumers' inboxes (and
/// JetStream's dedup by message id) make that harmless.
async fn relay(
    service: &'static str,
    db: Db,
    bus: Bus,
    notify: Arc<Notify>,
    narrator: Option<EventNarrator>,
) {
    loop {
        let batch: Vec<(i64, Message)> = {
            let connection = db.lock();
            let rows = connection
                .prepare(
                    "SELECT id, message_id, event, payload FROM outbox WHERE published = 0 ORDER BY id LIMIT 64",
                )
                .and_then(|mut statement| {
                    statement
                        .query_map([], |row| {
                            Ok((
                                row.get(0)?,
                                Message {
                                    id: row.get(1)?,
                                    event: row.get(2)?,
                                    payload: row.get::<_, String>(3)?.into_bytes(),
                                },
                            ))
                        })?
                        .collect()
                });
            rows.unwrap_or_default()
        };
        if batch.is_empty() {
            tokio::select! {
                () = notify.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            continue;
        }
        for (id, message) in batch {
            if let Err(error) = bus.publish(message.clone()).await {
                tracing::warn!(%error, service, "publish failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                break;
            }
            if let Some(narrator) = &narrator {
                narrator(service, &message);
            }
            let marked = db
                .lock()
                .execute("UPDATE outbox SET published = 1 WHERE id = ?1", [id]);
            if let Err(error) = marked {
                tracing::warn!(%error, service, "could not mark an outbox row published");
            }
        }
    }
}
// ANCHOR_END: relay

// ANCHOR: consume
/// Handles a service's messages one by one: retried with backoff on transient failures,
/// dead-lettered after [`MAX_DELIVERY_ATTEMPTS`], acknowledged either way.
async fn consume(
    mut subscription: crate::bus::Subscription,
    db: Db,
    handler: Box<dyn Fn(&Message) -> Handled + Send + Sync>,
    notify: Arc<Notify>,
) {
    while let Some(delivery) = subscription.next().await {
        let mut attempts = 0;
        loop {
            match handler(&delivery.message) {
                Handled::Done => break,
                Handled::Retry(error) => {
                    attempts += 1;
                    if attempts >= MAX_DELIVERY_ATTEMPTS {
                        let message = &delivery.message;
                        let parked = db.lock().execute(
                            "INSERT OR REPLACE INTO dead_letter (message_id, event, payload, error, attempts)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            rusqlite::params![
                                message.id,
                                message.event,
                                String::from_utf8_lossy(&message.payload),
                                error,
                                attempts
                            ],
                        );
                        if let Err(error) = parked {
                            tracing::error!(%error, "could not dead-letter a message");
                        }
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10 << attempts)).await;
                }
            }
        }
        notify.notify_waiters(); // a handled message usually wrote an outbox row
        delivery.ack().await;
    }
}
// ANCHOR_END: consume
