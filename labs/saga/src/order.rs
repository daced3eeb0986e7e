//! The order service: orders, the saga log, and the orchestrator that drives `saga-core`.
//!
//! The orchestrator is a driver in the sans-IO sense: `saga_core::Saga` decides, this file
//! does the I/O. Its one rule is write-ahead: every log entry the saga produces is committed
//! to the order database, together with the order's status change, *before* the command that
//! follows it is sent. So whenever the process dies, the log says what was decided, and
//! [`OrderService::resume_unfinished`] carries on from there: at most the one command in
//! flight is sent again, with the same idempotency key, and the participant answers with
//! its first result.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::OptionalExtension;
use saga_core::{
    Command, CommandKind, Event, FailureKind, Input, LogEntry, Millis, OrderStatus, Output, Saga,
    SagaDefinition, SagaError, SagaLog, SagaOutcome,
};
use serde::{Deserialize, Serialize};

use crate::db::{self, Db, Storage};
use crate::line::{OrderLine, Reply};
use crate::problem::{Problem, SagaProblem};
use crate::transport::Transport;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, customer TEXT NOT NULL, sku TEXT NOT NULL,
    quantity INTEGER NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS saga_log (
    saga_id TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL,
    PRIMARY KEY (saga_id, seq)
);";

/// Something the orchestrator did, for the demo's live narration.
#[derive(Clone, Debug)]
pub enum Note {
    /// A log entry was committed.
    Logged(String, LogEntry),
    /// A command got this reply.
    Replied(Command, Reply),
}

/// Receives [`Note`]s as they happen.
pub type Narrator = Arc<dyn Fn(&Note) + Send + Sync>;

/// Where to make the orchestrator "crash" (return early, as if the process died).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashPlan {
    /// Crash after the n-th command (0-based, counted in this run) was persisted as started
    /// but before it is sent.
    pub before_send: Option<usize>,
    /// Crash after the n-th command got its reply but before the outcome is recorded.
    pub after_reply: Option<usize>,
}

/// Why an orchestrator run stopped without an outcome.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// The crash plan fired: the saga is unfinished in the log.
    #[error("the orchestrator crashed on purpose ({0})")]
    Crashed(String),
    /// The order does not exist.
    #[error("no order `{0}`")]
    UnknownOrder(String),
    /// The database failed.
    #[error("order database: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The stored log cannot be used.
    #[error(transparent)]
    Saga(#[from] SagaError),
}

/// The order service with its orchestrator.
pub struct OrderService {
    db: Db,
    definition: SagaDefinition,
    transport: Transport,
    /// Whether log entries are written at all (the benchmark's non-durable baseline).
    durable: bool,
    crash: parking_lot::Mutex<CrashPlan>,
    commands_sent: AtomicUsize,
    narrator: Option<Narrator>,
    epoch: tokio::time::Instant,
    epoch_wall: u64,
}

impl std::fmt::Debug for OrderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService").finish_non_exhaustive()
    }
}

/// The JSON of `GET /orders/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// The order.
    pub line: OrderLine,
    /// PENDING while its saga runs.
    pub status: OrderStatus,
    /// The saga log, oldest first.
    pub log: Vec<LogEntry>,
}

impl OrderService {
    /// Opens the order database.
    pub fn open(
        storage: &Storage,
        transport: Transport,
        extra_schema: &str,
    ) -> anyhow::Result<Arc<OrderService>> {
        let epoch_wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64);
        Ok(Arc::new(OrderService {
            db: db::open(storage, &format!("{SCHEMA}\n{extra_schema}"))?,
            definition: SagaDefinition::order_fulfilment(),
            transport,
            durable: true,
            crash: parking_lot::Mutex::new(CrashPlan::default()),
            commands_sent: AtomicUsize::new(0),
            narrator: None,
            epoch: tokio::time::Instant::now(),
            epoch_wall,
        }))
    }

    /// Builder-style settings, before the service is shared.
    pub fn configure(
        service: &mut Arc<OrderService>,
        durable: bool,
        narrator: Option<Narrator>,
        definition: Option<SagaDefinition>,
    ) {
        if let Some(service) = Arc::get_mut(service) {
            service.durable = durable;
            service.narrator = narrator;
            if let Some(definition) = definition {
                service.definition = definition;
            }
        }
    }

    /// Arms a crash for the next run.
    pub fn crash_at(&self, plan: CrashPlan) {
        *self.crash.lock() = plan;
        self.commands_sent.store(0, Ordering::SeqCst);
    }

    /// The order database (the choreography shares the orders table).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Now on the orchestrator's clock: wall time at start plus tokio's elapsed time (so a
    /// paused test clock still drives backoffs, and a restarted process continues forward).
    pub fn now(&self) -> Millis {
        Millis(self.epoch_wall + self.epoch.elapsed().as_millis() as u64)
    }

    // ANCHOR: place_order
    /// Inserts the order (PENDING) and starts its saga, in one transaction.
    pub fn place_order(&self, line: &OrderLine) -> Result<(), Problem> {
        line.validate()?;
        let saga = Saga::start(&line.order_id, self.definition.clone(), self.now())
            .map_err(|error| Problem::unavailable(error.to_string()))?;
        let mut connection = self.db.lock();
        let tx = db::write_transaction(&mut connection)
            .map_err(|error| Problem::unavailable(error.to_string()))?;
        match insert_pending(&tx, line) {
            Ok(true) => {}
            Ok(false) => return Err(order_exists(line)),
            Err(error) => return Err(Problem::unavailable(error.to_string())),
        }
        // Only `SagaStarted`: the first command is decided (again) when the saga runs.
        if self.durable {
            for entry in saga.log().entries().iter().take(1) {
                insert_entry(&tx, &line.order_id, entry)
                    .map_err(|error| Problem::unavailable(error.to_string()))?;
            }
        }
        tx.commit()
            .map_err(|error| Problem::unavailable(error.to_string()))?;
        Ok(())
    }
    // ANCHOR_END: place_order

    /// Places the order and runs its saga to the end.
    pub async fn run_order(&self, line: &OrderLine) -> Result<SagaOutcome, OrchestratorError> {
        self.place_order(line)
            .map_err(|problem| OrchestratorError::Crashed(problem.detail))?;
        self.run_saga(&line.order_id).await
    }

    // ANCHOR: run_saga
    /// Drives one saga from its stored log to its end.
    pub async fn run_saga(&self, order_id: &str) -> Result<SagaOutcome, OrchestratorError> {
        let (line, log) = self.load(order_id)?;
        let mut saga = if log.is_empty() {
            // The non-durable baseline keeps nothing: start from scratch.
            Saga::start(order_id, self.definition.clone(), self.now())?
        } else {
            Saga::resume(order_id, self.definition.clone(), log, self.now())?
        };
        if !self.durable {
            while saga.poll_output().is_some() {} // `SagaStarted` is not re-recorded
            saga = Saga::resume(
                order_id,
                self.definition.clone(),
                saga.log().clone(),
                self.now(),
            )?;
        }
        let mut unsaved: Vec<LogEntry> = Vec::new();
        loop {
            while let Some(output) = saga.poll_output() {
                match output {
                    Output::Record(entry) => unsaved.push(entry),
                    Output::Send(command) => {
                        // Write-ahead: the decision is durable before anyone acts on it.
                        self.persist(order_id, &mut unsaved)?;
                        let n = self.commands_sent.fetch_add(1, Ordering::SeqCst);
                        let plan = *self.crash.lock();
                        if plan.before_send == Some(n) {
                            return Err(OrchestratorError::Crashed(format!(
                                "before sending {} {}",
                                command.step_name, command.operation
                            )));
                        }
                        let reply = self.execute(&command, &line).await;
                        if let Some(narrator) = &self.narrator {
                            narrator(&Note::Replied(command.clone(), reply.clone()));
                        }
                        if plan.after_reply == Some(n) {
                            return Err(OrchestratorError::Crashed(format!(
                                "after {} {} replied, before recording it",
                                command.step_name, command.operation
                            )));
                        }
                        let input = input_for(&command, &reply);
                        saga.handle_input(self.now(), input)?;
                    }
                    Output::Finished(_) => {}
                }
            }
            self.persist(order_id, &mut unsaved)?;
            if let Some(outcome) = saga.outcome() {
                return Ok(outcome);
            }
            match saga.poll_timeout() {
                Some(wake) => {
                    let wait = wake.saturating_sub(self.now());
                    tokio::time::sleep(std::time::Duration::from_millis(wait.0)).await;
                    saga.handle_timeout(self.now());
                }
                None => {
                    return Err(OrchestratorError::Crashed(
                        "the saga waits for nothing but has not ended".to_owned(),
                    ));
                }
            }
        }
    }
    // ANCHOR_END: run_saga

    /// Finishes every saga whose log has no end: what a restarted orchestrator does first.
    pub async fn resume_unfinished(&self) -> Result<Vec<(String, SagaOutcome)>, OrchestratorError> {
        let mut finished = Vec::new();
        for order_id in self.unfinished()? {
            let outcome = self.run_saga(&order_id).await?;
            finished.push((order_id, outcome));
        }
        Ok(finished)
    }

    /// Orders whose saga has not ended.
    pub fn unfinished(&self) -> rusqlite::Result<Vec<String>> {
        let connection = self.db.lock();
        let mut statement =
            connection.prepare("SELECT id FROM orders WHERE status = 'PENDING' ORDER BY id")?;
        let ids = statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    async fn execute(&self, command: &Command, line: &OrderLine) -> Reply {
        if command.participant == "order" {
            // The order's own steps are local: create (the row exists), approve and cancel
            // (the status is written with the log entry that ends the saga).
            return Reply {
                status: 200,
                body: serde_json::json!({ "local": command.operation }),
            };
        }
        self.transport.send(command, line).await
    }

    // ANCHOR: persist
    /// Commits the unsaved entries, and the order's status if one of them ends the saga,
    /// in one transaction.
    fn persist(&self, order_id: &str, unsaved: &mut Vec<LogEntry>) -> rusqlite::Result<()> {
        if unsaved.is_empty() {
            return Ok(());
        }
        if self.durable {
            let mut connection = self.db.lock();
            let tx = db::write_transaction(&mut connection)?;
            for entry in unsaved.iter() {
                insert_entry(&tx, order_id, entry)?;
                if let Some(outcome) = entry.event.outcome() {
                    tx.execute(
                        "UPDATE orders SET status = ?2 WHERE id = ?1",
                        rusqlite::params![
                            order_id,
                            OrderStatus::from_outcome(Some(outcome)).as_str()
                        ],
                    )?;
                }
            }
            tx.commit()?;
        } else if let Some(outcome) = unsaved.iter().find_map(|entry| entry.event.outcome()) {
            self.db.lock().execute(
                "UPDATE orders SET status = ?2 WHERE id = ?1",
                rusqlite::params![order_id, OrderStatus::from_outcome(Some(outcome)).as_str()],
            )?;
        }
        if let Some(narrator) = &self.narrator {
            for entry in unsaved.iter() {
                narrator(&Note::Logged(order_id.to_owned(), entry.clone()));
            }
        }
        unsaved.clear();
        Ok(())
    }
    // ANCHOR_END: persist

    /// The order and its saga log.
    pub fn load(&self, order_id: &str) -> Result<(OrderLine, SagaLog), OrchestratorError> {
        let view = self
            .view(order_id)?
            .ok_or_else(|| OrchestratorError::UnknownOrder(order_id.to_owned()))?;
        Ok((view.line, SagaLog::from_entries(view.log)))
    }

    /// The order, its status and its log, if it exists.
    pub fn view(&self, order_id: &str) -> rusqlite::Result<Option<OrderView>> {
        let connection = self.db.lock();
        let order = connection
            .query_row(
                "SELECT customer, sku, quantity, amount, status FROM orders WHERE id = ?1",
                [order_id],
                |row| {
                    Ok((
                        OrderLine {
                            order_id: order_id.to_owned(),
                            customer: row.get(0)?,
                            sku: row.get(1)?,
                            quantity: row.get(2)?,
                            amount: row.get(3)?,
                        },
                        row.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((line, status)) = order else {
            return Ok(None);
        };
        let mut statement = connection
            .prepare("SELECT seq, at, event FROM saga_log WHERE saga_id = ?1 ORDER BY seq")?;
        let log = statement
            .query_map([order_id], |row| {
                let event: String = row.get(2)?;
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, event))
            })?
            .filter_map(Result::ok)
            .filter_map(|(seq, at, event)| {
                Some(LogEntry {
                    seq: seq as u64,
                    at: Millis(at as u64),
                    event: serde_json::from_str::<Event>(&event).ok()?,
                })
            })
            .collect();
        Ok(Some(OrderView {
            line,
            status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Pending),
            log,
        }))
    }

    /// How many orders have each status.
    pub fn count_by_status(&self, status: OrderStatus) -> i64 {
        self.db
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM orders WHERE status = ?1",
                [status.as_str()],
                |row| row.get(0),
            )
            .unwrap_or(-1)
    }
}

fn insert_entry(
    tx: &rusqlite::Transaction<'_>,
    saga_id: &str,
    entry: &LogEntry,
) -> rusqlite::Result<()> {
    let event = serde_json::to_string(&entry.event).unwrap_or_default();
    tx.execute(
        "INSERT INTO saga_log (saga_id, seq, at, event) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![saga_id, entry.seq as i64, entry.at.0 as i64, event],
    )?;
    Ok(())
}

// ANCHOR: input_for
/// Turns a participant's reply into the saga's input: 2xx succeeded, 4xx is a business
/// refusal (final), anything else (5xx, timeout, no connection) is worth a retry.
pub fn input_for(command: &Command, reply: &Reply) -> Input {
    let (step, attempt) = (command.step, command.attempt);
    match (command.kind, reply.is_success()) {
        (CommandKind::Action, true) => Input::StepSucceeded { step, attempt },
        (CommandKind::Action, false) => Input::StepFailed {
            step,
            attempt,
            kind: if reply.is_business_refusal() {
                FailureKind::Business
            } else {
                FailureKind::Retryable
            },
            reason: reply.detail(),
        },
        (CommandKind::Compensation, true) => Input::CompensationSucceeded { step, attempt },
        (CommandKind::Compensation, false) => Input::CompensationFailed {
            step,
            attempt,
            reason: reply.detail(),
        },
    }
}
// ANCHOR_END: input_for

async fn create(State(service): State<Arc<OrderService>>, body: axum::body::Bytes) -> Response {
    let line: OrderLine = match serde_json::from_slice(&body) {
        Ok(line) => line,
        Err(error) => {
            return Problem::bad_request(format!("the body is not an order: {error}"))
                .into_response();
        }
    };
    if let Err(problem) = service.place_order(&line) {
        return problem.into_response();
    }
    let order_id = line.order_id.clone();
    let runner = Arc::clone(&service);
    tokio::spawn(async move {
        if let Err(error) = runner.run_saga(&order_id).await {
            tracing::warn!(%error, order_id, "saga stopped");
        }
    });
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "order_id": line.order_id, "status": "PENDING" })),
    )
        .into_response()
}

async fn show(State(service): State<Arc<OrderService>>, Path(id): Path<String>) -> Response {
    match service.view(&id) {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => Problem::not_found(format!("no order `{id}`")).into_response(),
        Err(error) => Problem::unavailable(error.to_string()).into_response(),
    }
}

/// `POST /orders/{id}/address`: an example of a change the semantic lock refuses while the
/// saga runs (409), and of a change to an unknown order (404). Nothing is written either way.
async fn change_address(
    State(service): State<Arc<OrderService>>,
    Path(id): Path<String>,
) -> Response {
    match service.view(&id) {
        Ok(None) => Problem::not_found(format!("no order `{id}`")).into_response(),
        Ok(Some(view)) if view.status.is_locked() => Problem::locked(format!(
            "order `{id}` is {} until its saga ends",
            view.status
        ))
        .into_response(),
        Ok(Some(_)) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Order is final",
            format!("order `{id}` has been decided; place a new order instead"),
        )
        .into_response(),
        Err(error) => Problem::unavailable(error.to_string()).into_response(),
    }
}

/// The order service's HTTP face: `POST /orders`, `GET /orders/{id}`,
/// `POST /orders/{id}/address`, `GET /health`.
pub fn router(service: Arc<OrderService>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/orders", post(create))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/address", post(change_address))
        .with_state(service)
}

/// Inserts `line` as a PENDING order inside `tx` (the semantic lock starts here). Returns
/// `false`, changing nothing, when an order with that id already exists. Both styles place
/// orders through this, each adding its own record (saga log or outbox) to the same transaction.
pub(crate) fn insert_pending(
    tx: &rusqlite::Transaction<'_>,
    line: &OrderLine,
) -> rusqlite::Result<bool> {
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO orders (id, customer, sku, quantity, amount, status)
         VALUES (?1, ?2, ?3, ?4, ?5, 'PENDING')",
        rusqlite::params![
            line.order_id,
            line.customer,
            line.sku,
            line.quantity,
            line.amount
        ],
    )?;
    Ok(inserted == 1)
}

/// 409: an order with this id was placed before.
pub(crate) fn order_exists(line: &OrderLine) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "Order exists",
        format!("order `{}` already exists", line.order_id),
    )
}
