//! The same saga without an orchestrator: each service reacts to the others' events.
//!
//! ```text
//! order ─OrderCreated─▶ payment ─PaymentReserved─▶ inventory ─StockReserved─▶ shipping
//!   ▲                      │ PaymentFailed            │ StockFailed              │ ShippingScheduled
//!   ├── PaymentRefunded ◀──┴─ refund ◀── StockReleased ◀── release ◀── ShippingFailed
//!   └── order: APPROVED ◀── PaymentCaptured ◀── payment: capture ◀─────────────┘
//! ```
//!
//! ShippingScheduled is the pivot: from there the saga only moves forward. Payment reacts to
//! it by capturing the money it held (the same step, and idempotency key, as the
//! orchestrator's `capture_payment`), and the order is APPROVED on PaymentCaptured, so an
//! approved order never has its money merely held. A capture payment refuses (it holds
//! nothing for the order, which the flow above never leads to) publishes
//! PaymentCaptureFailed, and the order stops in NEEDS_ATTENTION for an operator: after the
//! pivot there is nothing to compensate.
//!
//! Three tables make it reliable, in every service's own database:
//! - **outbox**: an event is inserted in the same transaction as the state change it
//!   announces, and a relay publishes it afterwards. There is no moment where the change is
//!   committed but the event is lost (or the event is out but the change rolled back);
//! - **inbox**: the id of each handled message is recorded in the same transaction as its
//!   effect, so a redelivered message is recognised and skipped;
//! - **dead_letter**: a message that still fails after retries over [`RetryPolicy`]'s window
//!   is parked there, with the error, for an operator, instead of blocking the queue; the
//!   operator re-drives it ([`redrive`]) once the cause is fixed.
//!
//! A message is acknowledged only once its effect or its dead letter is committed. If neither
//! can be written (the database is held by another writer all along), the message goes back
//! to the bus and comes again later: it is never acknowledged and dropped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lab_telemetry::Telemetry;
use lab_telemetry::client;
use lab_telemetry::messages::{self, TraceHeaders};
use rusqlite::{Connection, OptionalExtension, Transaction};
use saga_core::{CommandKind, OrderStatus, SagaDefinition};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::bus::{Bus, Message, Subscription};
use crate::db::{self, Db, Storage};
use crate::inventory::Inventory;
use crate::line::OrderLine;
use crate::order::{self, OrderService};
use crate::participant::{Domain, Operation, Participant};
use crate::payment::Payment;
use crate::problem::{self, Problem};
use crate::shipping::Shipping;
use crate::system::System;
use crate::transport::Transport;

mod dead_letters;
mod http;

use dead_letters::park;
pub use dead_letters::{DeadLetter, RedriveError, dead_letters_of, redrive};
pub use http::{order_router, participant_router};

/// The tables every service needs for the choreography (added to each database's schema).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL, payload TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0,
    traceparent TEXT, tracestate TEXT
);
CREATE TABLE IF NOT EXISTS inbox (message_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dead_letter (
    message_id TEXT PRIMARY KEY, event TEXT NOT NULL, payload TEXT NOT NULL,
    error TEXT NOT NULL, attempts INTEGER NOT NULL, traceparent TEXT, tracestate TEXT
);";

// ANCHOR: retry_policy
/// How a consumer retries a message that fails for a transient reason (the database is
/// busy, a participant's fault), before it parks it as a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; each later one doubles, up to `max_delay`.
    pub first_delay: Duration,
    /// The longest wait between two tries.
    pub max_delay: Duration,
    /// How long a message is retried before it is dead-lettered.
    pub give_up_after: Duration,
    /// When neither the effect nor the dead letter can be written: how long the bus keeps
    /// the message before delivering it again.
    pub redeliver_after: Duration,
}

impl Default for RetryPolicy {
    /// 100 ms doubling to 5 s, for a minute; then a dead letter, or a redelivery 10 s later.
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            give_up_after: Duration::from_secs(60),
            redeliver_after: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th failure (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        doubled.min(self.max_delay)
    }
}
// ANCHOR_END: retry_policy

/// Receives `(service, event)` as events are published, for the demo's narration.
pub type EventNarrator = Arc<dyn Fn(&str, &Message) + Send + Sync>;

// ANCHOR: enqueue
/// Writes an event into the outbox, inside the caller's transaction, with the current
/// span's trace context (none when tracing is off), so the relayed message continues the
/// trace of the write that produced it. The id is derived from the order and the event, so
/// writing it twice (a replay) is a no-op.
pub fn enqueue(tx: &Transaction<'_>, event: &str, line: &OrderLine) -> rusqlite::Result<()> {
    let payload = serde_json::to_string(line).unwrap_or_default();
    let trace = TraceHeaders::current();
    tx.execute(
        "INSERT OR IGNORE INTO outbox (message_id, event, payload, traceparent, tracestate)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            format!("{}:{event}", line.order_id),
            event,
            payload,
            trace.traceparent(),
            trace.tracestate()
        ],
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

/// Records a handled message; a dead letter of it (re-driven, or redelivered after all) is
/// settled by the same transaction.
fn record_inbox(tx: &Transaction<'_>, message_id: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO inbox (message_id) VALUES (?1)",
        [message_id],
    )?;
    tx.execute(
        "DELETE FROM dead_letter WHERE message_id = ?1",
        [message_id],
    )?;
    Ok(())
}

/// A handler's verdict on one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// Done (or nothing to do): acknowledge it.
    Done,
    /// A transient failure: try again later.
    Retry(String),
    /// The message can never be handled (it is not an order line): park it at once.
    Poison(String),
}

/// What a participant does when it sees an event.
struct Reaction {
    /// The action, the compensation, or the finishing action after the pivot (capture).
    operation: Operation,
    /// The saga step it belongs to, by index in [`SagaDefinition::order_fulfilment`]: it
    /// names the idempotency key, the same one the orchestrator uses.
    step: usize,
    on_success: &'static str,
    on_refusal: &'static str,
}

impl Reaction {
    /// Whether the step's key is an action's or a compensation's (a capture is the action
    /// of its step).
    fn kind(&self) -> CommandKind {
        match self.operation {
            Operation::Compensate => CommandKind::Compensation,
            Operation::Act | Operation::Finish => CommandKind::Action,
        }
    }
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
        return Handled::Poison(format!("message {} is not an order line", message.id));
    };
    match seen(&participant.db().lock(), &message.id) {
        Ok(true) => return Handled::Done, // a redelivery: its effect is already committed
        Ok(false) => {}
        Err(error) => return Handled::Retry(error.to_string()),
    }
    let key = SagaDefinition::order_fulfilment().idempotency_key(
        &line.order_id,
        reaction.step,
        reaction.kind(),
    );
    let reply = participant.perform(reaction.operation, &key, &line, |tx, reply| {
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
            operation: Operation::Act,
            step: 1,
            on_success: "PaymentReserved",
            on_refusal: "PaymentFailed",
        }),
        "StockFailed" | "StockReleased" => Some(Reaction {
            operation: Operation::Compensate,
            step: 1,
            on_success: "PaymentRefunded",
            on_refusal: "PaymentRefunded",
        }),
        // The pivot is passed: take the held money for good.
        "ShippingScheduled" => Some(Reaction {
            operation: Operation::Finish,
            step: 4,
            on_success: "PaymentCaptured",
            on_refusal: "PaymentCaptureFailed",
        }),
        _ => None,
    }
}

fn inventory_reaction(event: &str) -> Option<Reaction> {
    match event {
        "PaymentReserved" => Some(Reaction {
            operation: Operation::Act,
            step: 2,
            on_success: "StockReserved",
            on_refusal: "StockFailed",
        }),
        "ShippingFailed" => Some(Reaction {
            operation: Operation::Compensate,
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
            operation: Operation::Act,
            step: 3,
            on_success: "ShippingScheduled",
            on_refusal: "ShippingFailed",
        }),
        _ => None,
    }
}
// ANCHOR_END: reactions

/// The order service's reaction: the end of the saga sets the order's status. It is
/// approved once its money is captured (after the pivot, ShippingScheduled), cancelled once
/// it is refused or refunded, and stopped for an operator if the capture was refused.
fn order_reaction(db: &Db, message: &Message) -> Handled {
    let Some(status) = order_status_after(&message.event) else {
        return Handled::Done;
    };
    let Ok(line) = serde_json::from_slice::<OrderLine>(&message.payload) else {
        return Handled::Poison(format!("message {} is not an order line", message.id));
    };
    let result = (|| -> rusqlite::Result<()> {
        let mut connection = db.lock();
        if seen(&connection, &message.id)? {
            return Ok(());
        }
        let tx = db::write_transaction(&mut connection)?;
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

/// The order's status once the order service has seen `event`, if the event ends the saga.
fn order_status_after(event: &str) -> Option<OrderStatus> {
    match event {
        "PaymentCaptured" => Some(OrderStatus::Approved),
        "PaymentFailed" | "PaymentRefunded" => Some(OrderStatus::Cancelled),
        "PaymentCaptureFailed" => Some(OrderStatus::NeedsAttention),
        _ => None,
    }
}

/// The reaction of participant `service` to `event`, if it has one.
fn reaction_of(service: &str, event: &str) -> Option<Reaction> {
    match service {
        "payment" => payment_reaction(event),
        "inventory" => inventory_reaction(event),
        "shipping" => shipping_reaction(event),
        _ => None,
    }
}

/// How one service handles a message (blocking: SQLite work).
pub type Handler = Arc<dyn Fn(&Message) -> Handled + Send + Sync>;

/// One service's part in the choreography: its database (outbox, inbox, dead letters) and
/// its reaction to the events it cares about.
#[derive(Clone)]
pub struct Service {
    /// `order`, `payment`, `inventory` or `shipping`: the consumer's name.
    pub name: &'static str,
    db: Db,
    handler: Handler,
    /// Whether the service reacts to an event (only those get a span of their own).
    reacts_to: fn(&str) -> bool,
    /// The service's tracing, when it is on.
    telemetry: Option<Arc<Telemetry>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("name", &self.name).finish()
    }
}

impl Service {
    /// The order service: the saga's last events set the order's status.
    pub fn order(order: &Arc<OrderService>) -> Service {
        let db = Arc::clone(order.db());
        let handler_db = Arc::clone(&db);
        Service {
            name: "order",
            db,
            handler: Arc::new(move |message| order_reaction(&handler_db, message)),
            reacts_to: |event| order_status_after(event).is_some(),
            telemetry: order.telemetry().cloned(),
        }
    }

    /// A participant (payment, inventory or shipping) and its reactions.
    pub fn participant<D: Domain>(participant: &Arc<Participant<D>>) -> Service {
        let reacting = Arc::clone(participant);
        Service {
            name: D::NAME,
            db: Arc::clone(participant.db()),
            handler: Arc::new(move |message| match reaction_of(D::NAME, &message.event) {
                Some(reaction) => react(&reacting, message, &reaction),
                None => Handled::Done,
            }),
            reacts_to: |event| reaction_of(D::NAME, event).is_some(),
            telemetry: None,
        }
    }

    /// The same service, traced with `telemetry` (its relay's `publish` spans and its
    /// consumer's `process` spans).
    pub fn traced(mut self, telemetry: Option<Arc<Telemetry>>) -> Service {
        self.telemetry = telemetry;
        self
    }

    /// The four services of `system`.
    pub fn all(system: &System) -> Vec<Service> {
        let telemetry = |name: &str| system.telemetry.as_ref().and_then(|t| t.of(name));
        vec![
            Service::order(&system.order),
            Service::participant(&system.payment).traced(telemetry("payment")),
            Service::participant(&system.inventory).traced(telemetry("inventory")),
            Service::participant(&system.shipping).traced(telemetry("shipping")),
        ]
    }

    /// The service's database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Opens the service `name`'s database in `dir` (with the choreography's tables), for an
    /// operator's command run beside the services.
    pub fn open_in(dir: &Path, name: &str) -> anyhow::Result<Service> {
        let storage = Storage::file_in(dir, name);
        anyhow::ensure!(
            matches!(&storage, Storage::File(path) if path.exists()),
            "no database for `{name}` in {} (services: order, payment, inventory, shipping)",
            dir.display()
        );
        Ok(match name {
            "order" => Service::order(&OrderService::open(
                &storage,
                Transport::InProcess(Default::default()),
                SCHEMA,
            )?),
            "payment" => Service::participant(&Participant::<Payment>::open(&storage, SCHEMA)?),
            "inventory" => Service::participant(&Participant::<Inventory>::open(&storage, SCHEMA)?),
            "shipping" => Service::participant(&Participant::<Shipping>::open(&storage, SCHEMA)?),
            other => anyhow::bail!(
                "no service `{other}` (services: order, payment, inventory, shipping)"
            ),
        })
    }

    /// Runs the handler off the async threads (a busy database makes it wait), inside
    /// `span`: the outbox rows it writes carry the span's context.
    async fn handle(&self, message: &Message, span: &Span) -> Handled {
        let handler = Arc::clone(&self.handler);
        let message = message.clone();
        let span = span.clone();
        tokio::task::spawn_blocking(move || client::within(&span, || handler(&message)))
            .await
            .unwrap_or_else(|_| Handled::Retry("the handler panicked".to_owned()))
    }
}

/// Something a consumer or relay did that the demo narrates and an operator should see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A message failed for a transient reason; it is tried again after `delay`.
    Retrying {
        /// The name of the service whose consumer handled it.
        service: &'static str,
        /// The message's id (`o-1:PaymentReserved`).
        message_id: String,
        /// Tries so far.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// The wait before the next try.
        delay: Duration,
    },
    /// A message kept failing and is parked in the dead-letter table.
    DeadLettered {
        /// The name of the service whose consumer parked it.
        service: &'static str,
        /// The message's id (`o-1:PaymentReserved`).
        message_id: String,
        /// The last error.
        error: String,
    },
    /// A message could be neither applied nor parked: it goes back to the bus, unacknowledged.
    Redelivering {
        /// The name of the service whose consumer handed it back.
        service: &'static str,
        /// The message's id (`o-1:PaymentReserved`).
        message_id: String,
        /// Why the dead letter could not be written.
        error: String,
        /// When the bus delivers it again.
        after: Duration,
    },
    /// On start: messages the previous run received and never acknowledged, which JetStream
    /// delivers again once its ack wait is over.
    AwaitingRedelivery {
        /// The name of the service whose consumer is waiting.
        service: &'static str,
        /// How many.
        messages: usize,
        /// JetStream's ack wait.
        ack_wait: Duration,
    },
    /// On start (in-process bus): events of unfinished sagas published again, since the
    /// messages in flight died with the previous process.
    Republished {
        /// The publishing service.
        service: &'static str,
        /// How many events.
        messages: usize,
    },
}

/// Receives every [`Note`] (the demo prints them).
pub type Observer = Arc<dyn Fn(&Note) + Send + Sync>;

/// Settings of [`Choreography::start_with`].
#[derive(Clone, Default)]
pub struct Settings {
    /// Called as events are published.
    pub narrator: Option<EventNarrator>,
    /// Called on retries, dead letters, redeliveries and recovery.
    pub observer: Option<Observer>,
    /// The consumers' retries.
    pub retry: RetryPolicy,
}

/// The running choreography: one relay and one consumer per service it runs.
#[derive(Debug)]
pub struct Choreography {
    order: Option<Arc<OrderService>>,
    services: Vec<Service>,
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
        Choreography::start_with(
            system,
            bus,
            Settings {
                narrator,
                ..Settings::default()
            },
        )
        .await
    }

    /// [`start`](Self::start) with every setting.
    pub async fn start_with(
        system: &System,
        bus: Bus,
        settings: Settings,
    ) -> anyhow::Result<Choreography> {
        Choreography::start_services(
            Service::all(system),
            Some(Arc::clone(&system.order)),
            bus,
            settings,
        )
        .await
    }

    /// Starts the relays and consumers of `services` only (one service per process, on
    /// NATS). `order` is the order service when it is one of them: it places orders and
    /// knows which sagas are unfinished.
    pub async fn start_services(
        services: Vec<Service>,
        order: Option<Arc<OrderService>>,
        bus: Bus,
        settings: Settings,
    ) -> anyhow::Result<Choreography> {
        let notify = Arc::new(Notify::new());
        let observe = |note: Note| {
            if let Some(observer) = &settings.observer {
                observer(&note);
            }
        };
        // The in-process bus dies with the process: a message in flight then is lost. On
        // start, every event of an unfinished saga goes out again (inboxes skip the copies).
        let mut republish: Vec<Vec<(i64, Message)>> = vec![Vec::new(); services.len()];
        if !bus.is_durable()
            && let Some(order) = &order
        {
            let pending = pending_orders(order.db())?;
            if !pending.is_empty() {
                for (index, service) in services.iter().enumerate() {
                    republish[index] = published_events_of(&service.db, &pending)?;
                    if !republish[index].is_empty() {
                        observe(Note::Republished {
                            service: service.name,
                            messages: republish[index].len(),
                        });
                    }
                }
            }
        }
        let mut tasks = Vec::new();
        for service in &services {
            let subscription = bus.subscribe(service.name).await?;
            if let Some((messages, ack_wait)) = subscription.awaiting_redelivery() {
                observe(Note::AwaitingRedelivery {
                    service: service.name,
                    messages,
                    ack_wait,
                });
            }
            tasks.push(tokio::spawn(consume(
                subscription,
                service.clone(),
                Arc::clone(&notify),
                settings.clone(),
            )));
        }
        // Consumers first, so the in-process bus has someone to deliver to.
        for (service, again) in services.iter().zip(republish) {
            tasks.push(tokio::spawn(relay(
                service.name,
                Arc::clone(&service.db),
                service.telemetry.clone(),
                bus.clone(),
                Arc::clone(&notify),
                settings.narrator.clone(),
                again,
            )));
        }
        Ok(Choreography {
            order,
            services,
            notify,
            tasks,
            bus,
        })
    }

    /// Which bus carries the events.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The order service, when this choreography runs it.
    pub fn order(&self) -> Option<&Arc<OrderService>> {
        self.order.as_ref()
    }

    // ANCHOR: place
    /// Places an order: the PENDING row and the `OrderCreated` event, in one transaction.
    /// An order not at the catalogue's price is refused (422) and nothing is written.
    pub fn place(&self, line: &OrderLine) -> Result<(), Problem> {
        let Some(order) = &self.order else {
            return Err(problem::unavailable(
                "this process does not run the order service",
            ));
        };
        let span = match order.telemetry() {
            Some(telemetry) => telemetry.in_scope(|| {
                tracing::info_span!(
                    "place order",
                    otel.name = "place order",
                    saga.id = line.order_id.as_str()
                )
            }),
            None => Span::none(),
        };
        client::within(&span, || place_in(order.db(), line))?;
        self.notify.notify_waiters();
        Ok(())
    }
    // ANCHOR_END: place

    /// The order's status now (PENDING if it cannot be read).
    pub fn status(&self, order_id: &str) -> OrderStatus {
        self.order
            .as_ref()
            .and_then(|order| order.view(order_id).ok().flatten())
            .map_or(OrderStatus::Pending, |view| view.status)
    }

    /// Waits until the order is no longer PENDING (checking every few milliseconds, at most
    /// `max_checks` times) and returns its status.
    pub async fn settle(&self, order_id: &str, max_checks: u32) -> OrderStatus {
        for _ in 0..max_checks {
            let status = self.status(order_id);
            if status != OrderStatus::Pending {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        OrderStatus::Pending
    }

    /// Orders whose saga has not ended (none if this process does not run the order service).
    pub fn unfinished(&self) -> Vec<String> {
        self.order
            .as_ref()
            .and_then(|order| pending_orders(order.db()).ok())
            .unwrap_or_default()
    }

    /// Every service's dead letters: `(service, message id, error)`.
    pub fn dead_letters(&self) -> Vec<(String, String, String)> {
        self.services
            .iter()
            .filter_map(|service| dead_letters_of(service).ok())
            .flatten()
            .map(|letter| (letter.service, letter.message_id, letter.error))
            .collect()
    }

    /// Re-drives one of this process's dead letters (see [`redrive`]).
    pub async fn redrive(&self, service: &str, message_id: &str) -> Result<(), RedriveError> {
        let Some(found) = self.services.iter().find(|s| s.name == service).cloned() else {
            return Err(RedriveError::NotFound {
                service: service.to_owned(),
                message_id: message_id.to_owned(),
            });
        };
        let id = message_id.to_owned();
        let result = tokio::task::spawn_blocking(move || redrive(&found, &id))
            .await
            .unwrap_or_else(|_| {
                Err(RedriveError::StillFailing {
                    service: service.to_owned(),
                    message_id: message_id.to_owned(),
                    error: "the handler panicked".to_owned(),
                })
            });
        self.notify.notify_waiters(); // the next event is in the outbox
        result
    }
}

/// Places an order in the order database: the PENDING row and the `OrderCreated` event, in
/// one transaction (the relay publishes the event). The amount is checked against the
/// catalogue first, as the orchestrator does: a 422 that names the price, not the database
/// trigger's refusal as a 503.
pub fn place_in(order_db: &Db, line: &OrderLine) -> Result<(), Problem> {
    line.validate()?;
    let mut connection = order_db.lock();
    order::check_price(&connection, line)?;
    let result = (|| -> rusqlite::Result<bool> {
        let tx = db::write_transaction(&mut connection)?;
        let inserted = order::insert_pending(&tx, line)?;
        if inserted {
            enqueue(&tx, "OrderCreated", line)?;
        }
        tx.commit()?;
        Ok(inserted)
    })();
    match result {
        Ok(false) => Err(order::order_exists(line)),
        Ok(true) => Ok(()),
        Err(error) => Err(problem::unavailable(format!("the order database: {error}"))),
    }
}

fn pending_orders(order_db: &Db) -> rusqlite::Result<Vec<String>> {
    let connection = order_db.lock();
    let mut statement =
        connection.prepare("SELECT id FROM orders WHERE status = 'PENDING' ORDER BY id")?;
    statement.query_map([], |row| row.get(0))?.collect()
}

/// The already published outbox rows of the given orders, oldest first.
fn published_events_of(db: &Db, orders: &[String]) -> rusqlite::Result<Vec<(i64, Message)>> {
    let connection = db.lock();
    let mut statement = connection.prepare(
        "SELECT id, message_id, event, payload, traceparent, tracestate FROM outbox
         WHERE published = 1 AND json_extract(payload, '$.order_id') IN (SELECT value FROM json_each(?1))
         ORDER BY id",
    )?;
    let orders = serde_json::to_string(orders).unwrap_or_else(|_| "[]".to_owned());
    statement.query_map([orders], outbox_row)?.collect()
}

fn outbox_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Message)> {
    Ok((
        row.get(0)?,
        Message {
            id: row.get(1)?,
            event: row.get(2)?,
            payload: row.get::<_, String>(3)?.into_bytes(),
            trace: TraceHeaders::stored(row.get(4)?, row.get(5)?),
        },
    ))
}

// ANCHOR: relay
/// Publishes a service's outbox, oldest first, and marks each row published afterwards.
/// A crash between the two publishes the event again on restart: consumers' inboxes (and
/// JetStream's dedup by message id) make that harmless. `again` are rows published by a
/// previous process that the in-process bus lost with it: they go out first.
async fn relay(
    service: &'static str,
    db: Db,
    telemetry: Option<Arc<Telemetry>>,
    bus: Bus,
    notify: Arc<Notify>,
    narrator: Option<EventNarrator>,
    mut again: Vec<(i64, Message)>,
) {
    loop {
        let batch: Vec<(i64, Message)> = if again.is_empty() {
            let connection = db.lock();
            let rows = connection
                .prepare(
                    "SELECT id, message_id, event, payload, traceparent, tracestate FROM outbox
                     WHERE published = 0 ORDER BY id LIMIT 64",
                )
                .and_then(|mut statement| statement.query_map([], outbox_row)?.collect());
            rows.unwrap_or_default()
        } else {
            std::mem::take(&mut again)
        };
        if batch.is_empty() {
            tokio::select! {
                () = notify.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            continue;
        }
        for (id, mut message) in batch {
            let span = publish_span(telemetry.as_deref(), &bus, &mut message);
            if let Err(error) = bus.publish(message.clone()).instrument(span).await {
                tracing::warn!(%error, service, "publish failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                break;
            }
            if let Some(narrator) = &narrator {
                narrator(service, &message);
            }
            let marking = Arc::clone(&db);
            let marked = tokio::task::spawn_blocking(move || {
                marking.lock().execute(
                    "UPDATE outbox SET published = 1 WHERE id = ?1 AND published = 0",
                    [id],
                )
            })
            .await;
            if let Ok(Err(error)) = marked {
                // Published but not marked: it goes out again (a harmless duplicate).
                tracing::warn!(%error, service, "could not mark an outbox row published");
            }
        }
    }
}
// ANCHOR_END: relay

// ANCHOR: message_spans
/// With tracing on, the span a message is published in (`publish <event>`, a producer
/// span): child of the write that put it in the outbox, whose context the row kept; the
/// message then carries the publish span's context. Without, the message goes as it is.
fn publish_span(telemetry: Option<&Telemetry>, bus: &Bus, message: &mut Message) -> Span {
    let Some(telemetry) = telemetry else {
        return Span::none();
    };
    let span = telemetry.in_scope(|| {
        tracing::info_span!(
            parent: None,
            "publish",
            otel.name = format!("publish {}", message.event),
            otel.kind = "producer",
            messaging.system = bus.system(),
            messaging.operation.type = "send",
            messaging.destination.name = message.event.as_str(),
            messaging.message.id = message.id.as_str(),
        )
    });
    messages::continue_from(&span, &message.trace);
    message.trace = TraceHeaders::of(&span);
    span
}

/// With tracing on and a message `service` reacts to, the span it is handled in
/// (`process <event>`, a consumer span): the message's context is its remote parent, by
/// the strict rules (an invalid `traceparent` starts a new trace, and says why).
fn process_span(service: &Service, bus_system: &'static str, message: &Message) -> Span {
    let Some(telemetry) = &service.telemetry else {
        return Span::none();
    };
    if !(service.reacts_to)(&message.event) {
        return Span::none();
    }
    let span = telemetry.in_scope(|| {
        tracing::info_span!(
            parent: None,
            "process",
            otel.name = format!("process {}", message.event),
            otel.kind = "consumer",
            otel.status_code = Empty,
            messaging.system = bus_system,
            messaging.operation.type = "process",
            messaging.destination.name = message.event.as_str(),
            messaging.message.id = message.id.as_str(),
            trace.restarted = Empty,
        )
    });
    let incoming = messages::continue_from(&span, &message.trace);
    if let Some(restart) = incoming.restart
        && !message.trace.is_empty()
    {
        span.record("trace.restarted", format!("{restart:?}"));
    }
    span
}
// ANCHOR_END: message_spans

// ANCHOR: consume
/// Handles a service's messages one by one: retried with backoff over the policy's window,
/// then dead-lettered (at once if it can never be handled). A message is acknowledged only
/// once its effect or its dead letter is committed; when neither can be written it goes back
/// to the bus, to come again later.
async fn consume(
    mut subscription: Subscription,
    service: Service,
    notify: Arc<Notify>,
    settings: Settings,
) {
    let retry = settings.retry;
    let observe = |note: Note| {
        if let Some(observer) = &settings.observer {
            observer(&note);
        }
    };
    let name = service.name;
    let bus_system = subscription.system();
    while let Some(delivery) = subscription.next().await {
        let message = &delivery.message;
        let span = process_span(&service, bus_system, message);
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        let failure = loop {
            attempt += 1;
            match service.handle(message, &span).await {
                Handled::Done => break None,
                Handled::Poison(error) => break Some(error),
                Handled::Retry(error) => {
                    let delay = retry.delay(attempt);
                    if started.elapsed() + delay > retry.give_up_after {
                        break Some(error);
                    }
                    tracing::warn!(service = name, message_id = %message.id, attempt, %error, ?delay, "cannot handle a message yet; retrying");
                    observe(Note::Retrying {
                        service: name,
                        message_id: message.id.clone(),
                        attempt,
                        error,
                        delay,
                    });
                    delivery.in_progress().await;
                    tokio::time::sleep(delay).await;
                }
            }
        };
        if failure.is_some() {
            span.record("otel.status_code", "ERROR");
        }
        drop(span);
        let Some(error) = failure else {
            notify.notify_waiters(); // a handled message usually wrote an outbox row
            delivery.ack().await;
            continue;
        };
        match park(&service, message, &error, attempt).await {
            Ok(()) => {
                tracing::error!(service = name, message_id = %message.id, %error, "dead-lettered a message after {attempt} tries; re-drive it once the cause is fixed");
                observe(Note::DeadLettered {
                    service: name,
                    message_id: message.id.clone(),
                    error,
                });
                delivery.ack().await;
            }
            Err(park_error) => {
                let after = retry.redeliver_after;
                tracing::error!(service = name, message_id = %message.id, %error, %park_error, ?after, "cannot apply a message nor dead-letter it; the bus delivers it again");
                observe(Note::Redelivering {
                    service: name,
                    message_id: message.id.clone(),
                    error: park_error,
                    after,
                });
                delivery.redeliver(after).await;
            }
        }
    }
    tracing::error!(
        service = name,
        "the bus closed this consumer's subscription; it handles no more messages"
    );
}
// ANCHOR_END: consume

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reaction is a step of the orchestrated saga, by the same participant and
    /// operation, so both styles use the same idempotency keys.
    #[test]
    fn every_reaction_is_the_orchestrated_step_it_names() {
        let definition = SagaDefinition::order_fulfilment();
        let events = [
            "OrderCreated",
            "PaymentReserved",
            "StockReserved",
            "StockFailed",
            "StockReleased",
            "ShippingScheduled",
            "ShippingFailed",
        ];
        for service in ["payment", "inventory", "shipping"] {
            for event in events {
                let Some(reaction) = reaction_of(service, event) else {
                    continue;
                };
                let step = &definition.steps[reaction.step];
                assert_eq!(step.participant, service, "{service} on {event}");
                let operation = match reaction.operation {
                    Operation::Act | Operation::Finish => Some(step.action.as_str()),
                    Operation::Compensate => step.compensation.as_deref(),
                };
                let expected = match (service, reaction.operation) {
                    ("payment", Operation::Act) => "reserve",
                    ("payment", Operation::Compensate) => "refund",
                    ("payment", Operation::Finish) => "capture",
                    ("inventory", Operation::Act) => "reserve",
                    ("inventory", _) => "release",
                    ("shipping", _) => "schedule",
                    _ => "?",
                };
                assert_eq!(operation, Some(expected), "{service} on {event}");
            }
        }
        let capture = reaction_of("payment", "ShippingScheduled").map(|r| r.step);
        assert!(
            capture.is_some_and(|step| definition.pivot.is_some_and(|pivot| step > pivot)),
            "the capture reacts to the pivot and comes after it"
        );
    }
}
