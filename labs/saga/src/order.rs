//! The order service: orders, the saga log, and the orchestrator that drives `saga-core`.
//!
//! The orchestrator is a driver in the sans-IO sense: `saga_core::Saga` decides, this file
//! does the I/O. Its one rule is write-ahead: every log entry the saga produces is committed
//! to the order database, together with the order's status change, *before* the command that
//! follows it is sent. So whenever the process dies, the log says what was decided, and
//! [`OrderService::resume_unfinished`] carries on from there: at most the one command in
//! flight is sent again, with the same idempotency key, and the participant answers with
//! its first result.
//!
//! A saga whose compensation kept failing for the policy's window stops in NEEDS_ATTENTION.
//! It is not a dead end: a restart resumes it, [`OrderService::spawn_attention_watch`]
//! resumes it once its participant answers its health check again, and an operator lists
//! such sagas (`GET /sagas?status=NEEDS_ATTENTION`) and resumes one
//! (`POST /sagas/{id}/resume`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lab_runtime::clock::{Clock as _, TokioClock};
use rusqlite::OptionalExtension;
use saga_core::{
    Command, CommandKind, Event, FailureKind, Input, LogEntry, Millis, OrderStatus, Output, Saga,
    SagaDefinition, SagaError, SagaLog, SagaOutcome,
};
use serde::{Deserialize, Serialize};

use crate::db::{self, Db, Storage};
use crate::line::{OrderLine, Reply};
use crate::problem::{self, Problem};
use crate::transport::Transport;
use lab_telemetry::Telemetry;
use tracing::field::Empty;
use tracing::{Instrument, Span};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, customer TEXT NOT NULL, sku TEXT NOT NULL,
    quantity INTEGER NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS saga_log (
    saga_id TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL,
    PRIMARY KEY (saga_id, seq)
);
-- The catalogue: what a product costs. An order's amount must be its price times the
-- quantity; the trigger keeps every way into the table (both saga styles) honest.
CREATE TABLE IF NOT EXISTS catalogue (sku TEXT PRIMARY KEY, price INTEGER NOT NULL CHECK (price > 0));
INSERT OR IGNORE INTO catalogue (sku, price) VALUES ('rust-book', 2500);
CREATE TRIGGER IF NOT EXISTS orders_at_catalogue_price BEFORE INSERT ON orders
WHEN NOT EXISTS (
    SELECT 1 FROM catalogue WHERE sku = NEW.sku AND price * NEW.quantity = NEW.amount
)
BEGIN
    SELECT RAISE(ABORT, 'the amount is not the catalogue price times the quantity');
END;";

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
    /// Crash after the action of this step (by index) got its first reply, however many
    /// commands came before it, and before the outcome is recorded: the demo's `--crash-at`.
    pub after_step_replied: Option<usize>,
}

// ANCHOR: crash_plan_for_step
impl CrashPlan {
    /// The plan for `--crash-at <step>`: crash once `step` has replied. Refused, saying
    /// why, when no step has that name or when the step never runs because the participant
    /// `refusing` (`payment`, …) says no before the saga gets there.
    pub fn for_step(
        definition: &SagaDefinition,
        step: &str,
        refusing: Option<&str>,
    ) -> Result<CrashPlan, String> {
        let names = || {
            definition
                .steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let index = definition
            .steps
            .iter()
            .position(|s| s.name == step)
            .ok_or_else(|| format!("no step named `{step}`; the steps are {}", names()))?;
        let refused_at = refusing.and_then(|participant| {
            definition
                .steps
                .iter()
                .position(|s| s.participant == participant && s.compensation.is_some())
        });
        if let Some(refused_at) = refused_at
            && index > refused_at
        {
            return Err(format!(
                "`{step}` never runs when {} refuses: the saga turns around at `{}` and \
                 compensates; crash at `{}` or an earlier step instead",
                definition.steps[refused_at].participant,
                definition.steps[refused_at].name,
                definition.steps[refused_at].name,
            ));
        }
        Ok(CrashPlan {
            after_step_replied: Some(index),
            ..CrashPlan::default()
        })
    }
}
// ANCHOR_END: crash_plan_for_step

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
    /// Another task of this process is driving the saga already.
    #[error("the saga of order `{0}` is running already")]
    AlreadyRunning(String),
    /// The saga is over: there is nothing to resume.
    #[error("the saga of order `{order_id}` is over ({status}): nothing to resume")]
    Over {
        /// The id of the order whose saga has ended.
        order_id: String,
        /// How it ended.
        status: OrderStatus,
    },
}

/// How the order database syncs its commits (and with them the saga log) to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSync {
    /// `synchronous = NORMAL` in WAL mode, the default: a commit survives the process
    /// crashing, but a power cut or an OS crash may lose the last commits.
    Normal,
    /// `synchronous = FULL`: every commit is fsynced, so it survives a power cut too.
    Full,
}

/// One saga as the operator's list shows it (`GET /sagas`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaSummary {
    /// The order (and saga) id.
    pub order_id: String,
    /// PENDING while it runs, NEEDS_ATTENTION when it stopped.
    pub status: OrderStatus,
    /// The step it is waiting on: stuck, or failing and being retried.
    pub step: Option<String>,
    /// That step's participant.
    pub participant: Option<String>,
    /// `action` or `compensation`.
    pub kind: Option<CommandKind>,
    /// What its latest failure said.
    pub last_error: Option<String>,
    /// How many tries of it failed so far.
    pub failures: u32,
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
    /// The sagas a task of this process is driving right now: never two drivers for one.
    running: Arc<parking_lot::Mutex<HashSet<String>>>,
    narrator: Option<Narrator>,
    /// The orchestrator's clock: the wall clock's milliseconds at start, then tokio's time.
    clock: TokioClock,
    /// The order service's tracing: a span per saga run and per step, when on.
    telemetry: Option<Arc<Telemetry>>,
}

impl std::fmt::Debug for OrderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService").finish_non_exhaustive()
    }
}

/// The JSON of `GET /orders/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// What was ordered, as the client placed it.
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
        Ok(Arc::new(OrderService {
            db: db::open(storage, &format!("{SCHEMA}\n{extra_schema}"))?,
            definition: SagaDefinition::order_fulfilment(),
            transport,
            durable: true,
            crash: parking_lot::Mutex::new(CrashPlan::default()),
            commands_sent: AtomicUsize::new(0),
            running: Arc::default(),
            narrator: None,
            clock: TokioClock::from_wall_clock(),
            telemetry: None,
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

    /// Traces every saga run (a root span, a child per step and compensation, the calls to
    /// the participants with `traceparent`) with `telemetry`, before the service is shared.
    pub fn set_telemetry(service: &mut Arc<OrderService>, telemetry: Option<Arc<Telemetry>>) {
        if let Some(service) = Arc::get_mut(service) {
            service.telemetry = telemetry;
        }
    }

    /// The order service's tracing, when it is on.
    pub fn telemetry(&self) -> Option<&Arc<Telemetry>> {
        self.telemetry.as_ref()
    }

    /// Arms a crash for the next run.
    pub fn crash_at(&self, plan: CrashPlan) {
        *self.crash.lock() = plan;
        self.commands_sent.store(0, Ordering::SeqCst);
    }

    /// Sets how the order database syncs its commits (the benchmark compares both).
    pub fn set_log_sync(&self, sync: LogSync) -> rusqlite::Result<()> {
        let value = match sync {
            LogSync::Normal => "NORMAL",
            LogSync::Full => "FULL",
        };
        self.db.lock().pragma_update(None, "synchronous", value)
    }

    /// How the order database syncs its commits now.
    pub fn log_sync(&self) -> rusqlite::Result<LogSync> {
        let level: i64 = self
            .db
            .lock()
            .query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA: FULL and above fsync every commit.
        Ok(if level >= 2 {
            LogSync::Full
        } else {
            LogSync::Normal
        })
    }

    /// The definition the orchestrator runs.
    pub fn definition(&self) -> &SagaDefinition {
        &self.definition
    }

    /// The order database (the choreography shares the orders table).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Now on the orchestrator's clock: wall time at start plus tokio's elapsed time (so a
    /// paused test clock still drives backoffs, and a restarted process continues forward).
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    // ANCHOR: place_order
    /// Inserts the order (PENDING) and starts its saga, in one transaction.
    pub fn place_order(&self, line: &OrderLine) -> Result<(), Problem> {
        line.validate()?;
        check_price(&self.db.lock(), line)?;
        let saga = Saga::start(&line.order_id, self.definition.clone(), self.now())
            .map_err(|error| problem::unavailable(error.to_string()))?;
        let mut connection = self.db.lock();
        let tx = db::write_transaction(&mut connection)
            .map_err(|error| problem::unavailable(error.to_string()))?;
        match insert_pending(&tx, line) {
            Ok(true) => {}
            Ok(false) => return Err(order_exists(line)),
            Err(error) => return Err(problem::unavailable(error.to_string())),
        }
        // Only `SagaStarted`: the first command is decided (again) when the saga runs.
        if self.durable {
            for entry in saga.log().entries().iter().take(1) {
                insert_entry(&tx, &line.order_id, entry)
                    .map_err(|error| problem::unavailable(error.to_string()))?;
            }
        }
        tx.commit()
            .map_err(|error| problem::unavailable(error.to_string()))?;
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
        let _running = self.claim(order_id)?;
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
        self.traced_drive(&line, saga).await
    }

    /// Carries out the saga's outputs until it ends: write-ahead, send, report the reply.
    async fn drive(
        &self,
        line: &OrderLine,
        mut saga: Saga,
    ) -> Result<SagaOutcome, OrchestratorError> {
        let order_id = line.order_id.as_str();
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
                        let step = self.step_span(&command);
                        let reply = self.execute(&command, line).instrument(step.clone()).await;
                        record_reply(&step, &reply);
                        if let Some(narrator) = &self.narrator {
                            narrator(&Note::Replied(command.clone(), reply.clone()));
                        }
                        let names_this_step = command.kind == CommandKind::Action
                            && plan.after_step_replied == Some(command.step);
                        if plan.after_reply == Some(n) || names_this_step {
                            if names_this_step {
                                self.crash.lock().after_step_replied = None;
                            }
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
                    self.clock.sleep_until(wake).await;
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

    // ANCHOR: saga_span
    /// [`drive`](Self::drive) in the saga's root span, under the order service's tracing,
    /// when it is on: one saga run is one trace.
    async fn traced_drive(
        &self,
        line: &OrderLine,
        saga: Saga,
    ) -> Result<SagaOutcome, OrchestratorError> {
        let Some(telemetry) = &self.telemetry else {
            return self.drive(line, saga).await;
        };
        let span = telemetry.in_scope(|| {
            tracing::info_span!(
                parent: None,
                "saga",
                otel.name = format!("saga {}", self.definition.name),
                otel.status_code = Empty,
                saga.name = self.definition.name.as_str(),
                saga.id = line.order_id.as_str(),
                saga.outcome = Empty,
            )
        });
        let result = telemetry
            .run(self.drive(line, saga).instrument(span.clone()))
            .await;
        match &result {
            Ok(outcome) => {
                span.record("saga.outcome", format!("{outcome:?}"));
                if *outcome == SagaOutcome::NeedsAttention {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(error) => {
                span.record("saga.outcome", error.to_string());
                span.record("otel.status_code", "ERROR");
            }
        }
        result
    }

    /// A span for one command: a step's action (named by the step) or its compensation
    /// (`compensate <step>`), child of the saga's span; none when tracing is off.
    fn step_span(&self, command: &Command) -> Span {
        if self.telemetry.is_none() {
            return Span::none();
        }
        let (name, kind) = match command.kind {
            CommandKind::Action => (command.step_name.clone(), "action"),
            CommandKind::Compensation => {
                (format!("compensate {}", command.step_name), "compensation")
            }
        };
        tracing::info_span!(
            "step",
            otel.name = name,
            otel.status_code = Empty,
            saga.step = command.step_name.as_str(),
            saga.step.kind = kind,
            saga.participant = command.participant.as_str(),
            saga.operation = command.operation.as_str(),
            saga.attempt = command.attempt,
            saga.reply.status = Empty,
        )
    }
    // ANCHOR_END: saga_span

    // ANCHOR: resume_saga
    /// Sets a stopped saga going again and drives it to its end: a NEEDS_ATTENTION saga gets
    /// `Resumed` in its log and a fresh retry window for the stuck step; a PENDING saga
    /// nobody is driving (its task stopped) simply carries on. A saga that is over, or that
    /// a task is driving already, is refused.
    pub async fn resume_saga(&self, order_id: &str) -> Result<SagaOutcome, OrchestratorError> {
        let (_, log) = self.load(order_id)?;
        match OrderStatus::from_outcome(log.outcome()) {
            OrderStatus::Pending => return self.run_saga(order_id).await,
            OrderStatus::NeedsAttention => {}
            status => {
                return Err(OrchestratorError::Over {
                    order_id: order_id.to_owned(),
                    status,
                });
            }
        }
        let _running = self.claim(order_id)?;
        // Read again now that no other task can be writing it.
        let (line, log) = self.load(order_id)?;
        let mut saga = Saga::resume(order_id, self.definition.clone(), log, self.now())?;
        while saga.poll_output().is_some() {} // nothing new: the log is stored already
        saga.retry(self.now())?;
        self.traced_drive(&line, saga).await
    }
    // ANCHOR_END: resume_saga

    /// Finishes every saga whose log has no end, all at once: what a restarted orchestrator
    /// does first. Sagas stopped in NEEDS_ATTENTION are resumed too, each with a fresh
    /// retry window (a restart is often how an operator says "the cause is fixed").
    pub async fn resume_unfinished(&self) -> Result<Vec<(String, SagaOutcome)>, OrchestratorError> {
        let mut ids = self.unfinished()?;
        ids.extend(self.ids_with_status(OrderStatus::NeedsAttention)?);
        ids.sort();
        // A saga another task drives already (placed a moment ago) is left to that task.
        ids.retain(|order_id| !self.is_running(order_id));
        let runs = ids.iter().map(|order_id| async move {
            match self.resume_saga(order_id).await {
                Ok(outcome) => Ok(Some((order_id.clone(), outcome))),
                Err(OrchestratorError::AlreadyRunning(_)) => Ok(None),
                Err(error) => Err(error),
            }
        });
        let finished: Result<Vec<_>, OrchestratorError> =
            futures::future::join_all(runs).await.into_iter().collect();
        Ok(finished?.into_iter().flatten().collect())
    }

    /// Orders whose saga has not ended.
    pub fn unfinished(&self) -> rusqlite::Result<Vec<String>> {
        self.ids_with_status(OrderStatus::Pending)
    }

    fn ids_with_status(&self, status: OrderStatus) -> rusqlite::Result<Vec<String>> {
        let connection = self.db.lock();
        let mut statement =
            connection.prepare("SELECT id FROM orders WHERE status = ?1 ORDER BY id")?;
        let ids = statement
            .query_map([status.as_str()], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    // ANCHOR: sagas
    /// The sagas with `status` (every saga not over, when `None`), each with the step it
    /// waits on and that step's latest error: the operator's list.
    pub fn sagas(&self, status: Option<OrderStatus>) -> rusqlite::Result<Vec<SagaSummary>> {
        let mut ids = match status {
            Some(status) => self.ids_with_status(status)?,
            None => {
                let mut ids = self.unfinished()?;
                ids.extend(self.ids_with_status(OrderStatus::NeedsAttention)?);
                ids
            }
        };
        ids.sort();
        let mut sagas = Vec::new();
        for id in ids {
            if let Some(view) = self.view(&id)? {
                sagas.push(self.summary(view));
            }
        }
        Ok(sagas)
    }
    // ANCHOR_END: sagas

    fn summary(&self, view: OrderView) -> SagaSummary {
        // The latest failure not followed by a success of the same command.
        let mut waiting: Option<(usize, CommandKind, String, u32)> = None;
        for entry in &view.log {
            let failed = match &entry.event {
                Event::StepFailed { step, reason, .. } => {
                    Some((*step, CommandKind::Action, reason))
                }
                Event::CompensationFailed { step, reason } => {
                    Some((*step, CommandKind::Compensation, reason))
                }
                Event::StepSucceeded { .. } | Event::CompensationSucceeded { .. } => {
                    waiting = None;
                    None
                }
                _ => None,
            };
            if let Some((step, kind, reason)) = failed {
                let failures = match &waiting {
                    Some((s, k, _, n)) if *s == step && *k == kind => n + 1,
                    _ => 1,
                };
                waiting = Some((step, kind, reason.clone(), failures));
            }
        }
        let step = waiting
            .as_ref()
            .and_then(|(step, ..)| self.definition.steps.get(*step));
        SagaSummary {
            order_id: view.line.order_id,
            status: view.status,
            step: step.map(|s| s.name.clone()),
            participant: step.map(|s| s.participant.clone()),
            kind: waiting.as_ref().map(|(_, kind, ..)| *kind),
            last_error: waiting.as_ref().map(|(_, _, reason, _)| reason.clone()),
            failures: waiting.as_ref().map_or(0, |(.., n)| *n),
        }
    }

    // ANCHOR: attention_watch
    /// Every `every`, resumes the NEEDS_ATTENTION sagas whose stuck participant answers its
    /// health check again, so a saga waiting on a participant carries on once it is back.
    pub fn spawn_attention_watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let stopped = match service.sagas(Some(OrderStatus::NeedsAttention)) {
                    Ok(stopped) => stopped,
                    Err(error) => {
                        tracing::warn!(%error, "cannot list the sagas that need attention");
                        continue;
                    }
                };
                for saga in stopped {
                    let participant = saga.participant.unwrap_or_default();
                    if service.is_running(&saga.order_id) || !service.is_up(&participant).await {
                        continue;
                    }
                    tracing::info!(
                        order_id = saga.order_id,
                        participant,
                        "resuming: the participant is back"
                    );
                    let runner = Arc::clone(&service);
                    tokio::spawn(async move {
                        if let Err(error) = runner.resume_saga(&saga.order_id).await {
                            tracing::warn!(%error, order_id = saga.order_id, "resume stopped");
                        }
                    });
                }
            }
        })
    }
    // ANCHOR_END: attention_watch

    /// Whether `participant` answers its health check (the order service's own steps are
    /// local, so always).
    async fn is_up(&self, participant: &str) -> bool {
        participant == "order" || participant.is_empty() || self.transport.is_up(participant).await
    }

    /// Whether a task of this process is driving the saga.
    pub fn is_running(&self, order_id: &str) -> bool {
        self.running.lock().contains(order_id)
    }

    /// Marks the saga as driven by the caller until the guard is dropped.
    fn claim(&self, order_id: &str) -> Result<Running, OrchestratorError> {
        if !self.running.lock().insert(order_id.to_owned()) {
            return Err(OrchestratorError::AlreadyRunning(order_id.to_owned()));
        }
        Ok(Running {
            running: Arc::clone(&self.running),
            order_id: order_id.to_owned(),
        })
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
                if let Some(status) = status_after(&entry.event) {
                    tx.execute(
                        "UPDATE orders SET status = ?2 WHERE id = ?1",
                        rusqlite::params![order_id, status.as_str()],
                    )?;
                }
            }
            tx.commit()?;
        } else if let Some(status) = unsaved
            .iter()
            .rev()
            .find_map(|entry| status_after(&entry.event))
        {
            self.db.lock().execute(
                "UPDATE orders SET status = ?2 WHERE id = ?1",
                rusqlite::params![order_id, status.as_str()],
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

/// Records a participant's reply on its step's span: the status, and an error unless it
/// succeeded.
fn record_reply(span: &Span, reply: &Reply) {
    span.record("saga.reply.status", reply.status);
    if !reply.is_success() {
        span.record("otel.status_code", "ERROR");
    }
}

/// Marks a saga as driven; dropping it (the drive ended, however) frees the saga again.
struct Running {
    running: Arc<parking_lot::Mutex<HashSet<String>>>,
    order_id: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.running.lock().remove(&self.order_id);
    }
}

/// The order's status once `event` is recorded, if the event changes it: an outcome sets
/// the final (or stopped) status, a resume makes the order PENDING again.
fn status_after(event: &Event) -> Option<OrderStatus> {
    match event {
        Event::Resumed => Some(OrderStatus::Pending),
        event => event
            .outcome()
            .map(|outcome| OrderStatus::from_outcome(Some(outcome))),
    }
}

// ANCHOR: check_price
/// Checks `line` against the catalogue: the product exists and the amount is its price
/// times the quantity. A 422 problem saying what the price is, otherwise.
pub fn check_price(connection: &rusqlite::Connection, line: &OrderLine) -> Result<(), Problem> {
    let price: Option<i64> = connection
        .query_row(
            "SELECT price FROM catalogue WHERE sku = ?1",
            [&line.sku],
            |row| row.get(0),
        )
        .optional()
        .map_err(|error| problem::unavailable(error.to_string()))?;
    let Some(price) = price else {
        return Err(problem::refused(format!(
            "`{}` is not in the catalogue",
            line.sku
        )));
    };
    let expected = price.saturating_mul(line.quantity);
    if line.amount != expected {
        return Err(problem::refused(format!(
            "{} × {} costs {expected} cents ({price} each), but the order says {} cents",
            line.quantity, line.sku, line.amount
        )));
    }
    Ok(())
}
// ANCHOR_END: check_price

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
/// Turns a participant's reply into the saga's input: 2xx succeeded, a 4xx is a business
/// refusal (final) unless it says "not now" (408, 409, 425, 429), and that or anything else
/// (5xx, timeout, no connection) is worth a retry.
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

async fn create(
    State(service): State<Arc<OrderService>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return problem::body_rejected(rejection).into_response(),
    };
    let line: OrderLine = match serde_json::from_slice(&body) {
        Ok(line) => line,
        Err(error) => {
            return problem::bad_request(format!("the body is not an order: {error}"))
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
        Ok(None) => problem::not_found(format!("no order `{id}`")).into_response(),
        Err(error) => problem::unavailable(error.to_string()).into_response(),
    }
}

/// `POST /orders/{id}/address`: an example of a change the semantic lock refuses while the
/// saga runs (409), and of a change to an unknown order (404). Nothing is written either way.
async fn change_address(
    State(service): State<Arc<OrderService>>,
    Path(id): Path<String>,
) -> Response {
    match service.view(&id) {
        Ok(None) => problem::not_found(format!("no order `{id}`")).into_response(),
        Ok(Some(view)) if view.status.is_locked() => problem::locked(format!(
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
        Err(error) => problem::unavailable(error.to_string()).into_response(),
    }
}

/// `GET /sagas?status=NEEDS_ATTENTION`: the operator's list (every saga not over without a
/// status).
async fn list_sagas(
    State(service): State<Arc<OrderService>>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut status = None;
    for pair in query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("status", value)) => match OrderStatus::parse(value) {
                Some(parsed) => status = Some(parsed),
                None => {
                    return problem::bad_request(format!(
                        "unknown status `{value}`: use PENDING, NEEDS_ATTENTION, APPROVED or CANCELLED"
                    ))
                    .into_response();
                }
            },
            _ => {
                return problem::bad_request(format!(
                    "unknown query `{pair}`: the one parameter is `status`"
                ))
                .into_response();
            }
        }
    }
    match service.sagas(status) {
        Ok(sagas) => Json(sagas).into_response(),
        Err(error) => problem::unavailable(error.to_string()).into_response(),
    }
}

// ANCHOR: resume_route
/// `POST /sagas/{id}/resume`: sets a NEEDS_ATTENTION saga (or a PENDING one nobody drives)
/// going again; 202, then the saga runs in the background.
async fn resume(State(service): State<Arc<OrderService>>, Path(id): Path<String>) -> Response {
    match service.view(&id) {
        Ok(None) => return problem::not_found(format!("no order `{id}`")).into_response(),
        Ok(Some(view)) if !view.status.is_locked() => {
            return Problem::new(
                StatusCode::CONFLICT,
                "Saga is over",
                format!(
                    "the saga of order `{id}` is over ({}): nothing to resume",
                    view.status
                ),
            )
            .into_response();
        }
        Ok(Some(_)) if service.is_running(&id) => {
            return Problem::new(
                StatusCode::CONFLICT,
                "Saga is running",
                format!("the saga of order `{id}` is running; it needs no resume"),
            )
            .into_response();
        }
        Ok(Some(_)) => {}
        Err(error) => return problem::unavailable(error.to_string()).into_response(),
    }
    let runner = Arc::clone(&service);
    let order_id = id.clone();
    tokio::spawn(async move {
        if let Err(error) = runner.resume_saga(&order_id).await {
            tracing::warn!(%error, order_id, "resumed saga stopped");
        }
    });
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "order_id": id, "status": "PENDING" })),
    )
        .into_response()
}
// ANCHOR_END: resume_route

/// The order service's HTTP face: `POST /orders`, `GET /orders/{id}`,
/// `POST /orders/{id}/address`, `GET /sagas?status=…`, `POST /sagas/{id}/resume`,
/// `GET /health`; problem+json for everything else.
pub fn router(service: Arc<OrderService>) -> Router {
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/orders", post(create))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/address", post(change_address))
        .route("/sagas", get(list_sagas))
        .route("/sagas/{id}/resume", post(resume));
    problem::with_problem_fallbacks(router).with_state(service)
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
