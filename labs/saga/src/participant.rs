//! What payment, inventory and shipping have in common: an action, a compensation, and
//! idempotency keys that make retries and duplicate deliveries harmless.
//!
//! Each service supplies its business rules as a [`Domain`]; [`Participant`] wraps them
//! with the machinery every saga participant needs, so it is written (and tested) once:
//! - the reply to each idempotency key is stored in the same transaction as the work, so a
//!   retry gets the first answer back and the work is never done twice;
//! - injected faults (for the demo and the tests): transient 503s before the work, and
//!   "lost replies" (the work commits, the caller sees a 503) — the case that makes
//!   idempotency keys necessary;
//! - the HTTP face: `POST /<action>`, `POST /<compensation>`, `POST /<finish>` for a
//!   participant with a step after the pivot (header `Idempotency-Key`), `GET /state`,
//!   `GET /health`, errors as problem+json (unknown paths and methods and oversized bodies
//!   included).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{OptionalExtension, Transaction};
use saga_core::CommandKind;
use serde_json::Value;

use crate::db::{self, Db, Storage};
use crate::line::{OrderLine, Refusal, Reply};
use crate::problem::{self, Problem};

/// The business rules of one participant.
pub trait Domain: Send + Sync + 'static {
    /// The service's name (`payment`).
    const NAME: &'static str;
    /// The action's name (`reserve`).
    const ACTION: &'static str;
    /// The compensation's name (`refund`).
    const COMPENSATION: &'static str;
    /// Tables of the domain (`CREATE TABLE IF NOT EXISTS …`).
    const SCHEMA: &'static str;
    /// The name of the action that commits a reservation once the saga has passed its
    /// pivot (`capture`), if the participant has one.
    const FINISH: Option<&'static str> = None;

    /// Does the action inside `tx`, or refuses without writing anything.
    fn act(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal>;
    /// Undoes the action inside `tx`. Must succeed whether or not the action ever ran: if
    /// it did not, it leaves a tombstone so a late action for the same order is refused.
    fn compensate(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal>;
    /// Commits what the action reserved ([`FINISH`](Self::FINISH)), inside `tx`. Only asked
    /// of a participant that names a finishing action.
    fn finish(_tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal> {
        Err(Refusal::Business(format!(
            "{} has nothing to finish for order {}",
            Self::NAME,
            line.order_id
        )))
    }
    /// What the service holds right now, for the demo's balances and the tests' checks.
    fn holdings(connection: &rusqlite::Connection) -> rusqlite::Result<Value>;
}

/// Faults to inject, changed at runtime by the demo and the tests.
#[derive(Debug, Default)]
pub struct Faults {
    /// The service is down: every request, `/health` included, fails with 503 until this
    /// is cleared (an outage of known length, in tests with a paused clock).
    pub down: AtomicBool,
    /// The next N requests fail with 503 before doing anything.
    pub fail_next: AtomicU32,
    /// The next N requests do their work and commit, then answer 503 (a lost reply).
    pub lose_reply_next: AtomicU32,
    /// How many times work was actually done (not replayed from the idempotency table).
    pub executions: AtomicU64,
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

const IDEMPOTENCY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    body TEXT NOT NULL
);";

/// Which of a participant's operations a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// The action (`reserve`).
    Act,
    /// The compensation (`refund`).
    Compensate,
    /// The finishing action after the pivot (`capture`).
    Finish,
}

impl From<CommandKind> for Operation {
    fn from(kind: CommandKind) -> Self {
        match kind {
            CommandKind::Action => Operation::Act,
            CommandKind::Compensation => Operation::Compensate,
        }
    }
}

/// One running participant service: its database, its faults and its rules.
pub struct Participant<D: Domain> {
    db: Db,
    /// Injected faults.
    pub faults: Faults,
    _domain: std::marker::PhantomData<D>,
}

impl<D: Domain> std::fmt::Debug for Participant<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("name", &D::NAME)
            .finish()
    }
}

impl<D: Domain> Participant<D> {
    /// Opens the participant's database (with its domain tables and the shared ones).
    pub fn open(storage: &Storage, extra_schema: &str) -> anyhow::Result<Arc<Self>> {
        let schema = format!("{}\n{IDEMPOTENCY_SCHEMA}\n{extra_schema}", D::SCHEMA);
        Ok(Arc::new(Participant {
            db: db::open(storage, &schema)?,
            faults: Faults::default(),
            _domain: std::marker::PhantomData,
        }))
    }

    /// The participant's database (seeding, the choreography's inbox and outbox).
    pub fn db(&self) -> &Db {
        &self.db
    }

    // ANCHOR: execute
    /// Runs the action or the compensation once per idempotency key.
    ///
    /// The stored reply and the work commit together: either both happened or neither did.
    /// A second request with the same key gets the stored reply and does nothing. `also`
    /// runs inside the same transaction (the choreography writes its inbox and outbox rows
    /// there).
    pub fn execute_with(
        &self,
        kind: CommandKind,
        key: &str,
        line: &OrderLine,
        also: impl FnOnce(&Transaction<'_>, &Reply) -> rusqlite::Result<()>,
    ) -> Reply {
        self.perform(kind.into(), key, line, also)
    }

    /// [`execute_with`](Self::execute_with) for any [`Operation`], the finishing one too.
    pub fn perform(
        &self,
        operation: Operation,
        key: &str,
        line: &OrderLine,
        also: impl FnOnce(&Transaction<'_>, &Reply) -> rusqlite::Result<()>,
    ) -> Reply {
        if let Some(problem) = self.outage() {
            return problem_reply(problem);
        }
        if take_one(&self.faults.fail_next) {
            return problem_reply(problem::unavailable(format!(
                "{} is failing on purpose (injected fault)",
                D::NAME
            )));
        }
        let reply = match self.execute_in_transaction(operation, key, line, also) {
            Ok(reply) => reply,
            Err(error) => problem_reply(problem::unavailable(format!(
                "{} storage error: {error}",
                D::NAME
            ))),
        };
        if reply.is_success() && take_one(&self.faults.lose_reply_next) {
            // The work is committed; only the answer is lost on the way back.
            return problem_reply(problem::unavailable(format!(
                "{}: the reply was lost (injected fault); the work was done",
                D::NAME
            )));
        }
        reply
    }

    fn execute_in_transaction(
        &self,
        operation: Operation,
        key: &str,
        line: &OrderLine,
        also: impl FnOnce(&Transaction<'_>, &Reply) -> rusqlite::Result<()>,
    ) -> Result<Reply, Refusal> {
        let mut connection = self.db.lock();
        let tx = db::write_transaction(&mut connection)?;
        let stored: Option<(u16, String)> = tx
            .query_row(
                "SELECT status, body FROM idempotency WHERE key = ?1",
                [key],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((status, body)) = stored {
            // A retry or a duplicate: the first answer, and no work.
            return Ok(Reply {
                status,
                body: serde_json::from_str(&body).unwrap_or(Value::Null),
            });
        }
        let outcome = match operation {
            Operation::Act => D::act(&tx, line),
            Operation::Compensate => D::compensate(&tx, line),
            Operation::Finish => D::finish(&tx, line),
        };
        let reply = match outcome {
            Ok(body) => Reply { status: 200, body },
            Err(Refusal::Business(detail)) => problem_reply(problem::refused(detail)),
            // Nothing was done, so nothing is stored: the transaction rolls back.
            Err(Refusal::Conflict(detail)) => return Ok(problem_reply(problem::conflict(detail))),
            // A storage error rolls everything back (tx dropped) and is worth a retry.
            Err(storage @ Refusal::Storage(_)) => return Err(storage),
        };
        tx.execute(
            "INSERT INTO idempotency (key, status, body) VALUES (?1, ?2, ?3)",
            rusqlite::params![key, reply.status, reply.body.to_string()],
        )?;
        also(&tx, &reply)?;
        tx.commit()?;
        self.faults.executions.fetch_add(1, Ordering::Relaxed);
        Ok(reply)
    }
    // ANCHOR_END: execute

    /// [`execute_with`](Self::execute_with) with nothing else in the transaction.
    pub fn execute(&self, kind: CommandKind, key: &str, line: &OrderLine) -> Reply {
        self.execute_with(kind, key, line, |_, _| Ok(()))
    }

    /// The 503 every request gets while the service is down ([`Faults::down`]).
    fn outage(&self) -> Option<Problem> {
        self.faults
            .down
            .load(Ordering::SeqCst)
            .then(|| problem::unavailable(format!("{} is down (injected outage)", D::NAME)))
    }

    /// What the service holds right now.
    pub fn holdings(&self) -> Value {
        D::holdings(&self.db.lock())
            .unwrap_or_else(|error| serde_json::json!({ "error": error.to_string() }))
    }

    /// How many idempotency keys are stored (the tests check that bad input writes none).
    pub fn stored_keys(&self) -> i64 {
        self.db
            .lock()
            .query_row("SELECT COUNT(*) FROM idempotency", [], |row| row.get(0))
            .unwrap_or(-1)
    }
}

/// A problem document as a stored reply.
pub fn problem_reply(problem: Problem) -> Reply {
    Reply {
        status: problem.status,
        body: serde_json::to_value(&problem).unwrap_or(Value::Null),
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        if self.is_success() {
            (StatusCode::OK, Json(self.body)).into_response()
        } else {
            match serde_json::from_value::<Problem>(self.body) {
                Ok(problem) => problem.into_response(),
                Err(_) => problem::unavailable("malformed stored reply").into_response(),
            }
        }
    }
}

/// The header that carries the idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn key_of(headers: &HeaderMap) -> Result<String, Problem> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() || key.len() > 300 {
        return Err(problem::bad_request(
            "every action and compensation needs an `Idempotency-Key` header (1 to 300 characters)",
        ));
    }
    Ok(key.to_owned())
}

fn parse_line(body: &[u8]) -> Result<OrderLine, Problem> {
    let line: OrderLine = serde_json::from_slice(body)
        .map_err(|error| problem::bad_request(format!("the body is not an order line: {error}")))?;
    line.validate()?;
    Ok(line)
}

async fn handle<D: Domain>(
    participant: Arc<Participant<D>>,
    operation: Operation,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let request = body.map_err(problem::body_rejected).and_then(|body| {
        let key = key_of(&headers)?;
        Ok((key, parse_line(&body)?))
    });
    match request {
        Err(problem) => problem.into_response(),
        Ok((key, line)) => {
            // SQLite work is blocking: keep it off the async worker threads.
            let reply = tokio::task::spawn_blocking(move || {
                participant.perform(operation, &key, &line, |_, _| Ok(()))
            })
            .await
            .unwrap_or_else(|_| problem_reply(problem::unavailable("the handler panicked")));
            reply.into_response()
        }
    }
}

/// The participant's HTTP face.
pub fn router<D: Domain>(participant: Arc<Participant<D>>) -> Router {
    let mut router = Router::new()
        .route(
            "/health",
            get(|State(p): State<Arc<Participant<D>>>| async move {
                match p.outage() {
                    Some(problem) => problem.into_response(),
                    None => "ok".into_response(),
                }
            }),
        )
        .route(
            "/state",
            get(|State(p): State<Arc<Participant<D>>>| async move { Json(p.holdings()) }),
        );
    let operations = [
        (Some(D::ACTION), Operation::Act),
        (Some(D::COMPENSATION), Operation::Compensate),
        (D::FINISH, Operation::Finish),
    ];
    for (name, operation) in operations {
        let Some(name) = name else { continue };
        router = router.route(
            &format!("/{name}"),
            post(
                move |State(p): State<Arc<Participant<D>>>, headers: HeaderMap, body| {
                    handle(p, operation, headers, body)
                },
            ),
        );
    }
    problem::with_problem_fallbacks(router).with_state(participant)
}
