//! The collector service: a real OTLP/HTTP receiver (`POST /v1/traces`, protobuf or JSON)
//! that any OpenTelemetry SDK can send to, the core's [`Collector`] run by `lab-runtime`'s
//! [`Driver`] in one task that also owns every write to the SQLite store, and the query API
//! and waterfall page over what it kept.
//!
//! A batch is answered only once its spans (and the decisions they caused) are committed.
//! Bad input gets a problem+json 4xx: a body that is not OTLP (400), a content type OTLP/HTTP
//! does not define (415), a body over 4 MiB (413). Spans the core refuses or drops (zero
//! ids, a decided trace, a full trace) are counted and reported in OTLP's `partial_success`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use lab_http::Problem;
use lab_runtime::TokioClock;
use lab_runtime::driver::Driver;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use trace_context_core::{
    Collector, CollectorConfig, CollectorStats, Decision, Input, Machine, Output,
};

use crate::otlp::{self, Encoding, Received};
use crate::store::{Store, TraceQuery};

/// The largest request body taken.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// What a batch came to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchResult {
    /// Spans stored.
    pub accepted: u64,
    /// Spans refused or dropped, with the first reason.
    pub rejected: u64,
    /// Why the first one was.
    pub reason: Option<String>,
}

enum Command {
    Batch(Vec<Received>, oneshot::Sender<Result<BatchResult, String>>),
    Stats(oneshot::Sender<CollectorStats>),
}

/// A running collector: its store, its inbox, and its decisions as they happen.
#[derive(Clone, Debug)]
pub struct CollectorHandle {
    /// Where spans and kept traces are.
    pub store: Store,
    inbox: mpsc::Sender<Command>,
    decisions: broadcast::Sender<Arc<Decision>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Batch(..) => "Batch",
            Command::Stats(_) => "Stats",
        })
    }
}

impl CollectorHandle {
    /// Starts the collector's task on the current runtime.
    pub fn start(config: CollectorConfig, store: Store, clock: TokioClock) -> CollectorHandle {
        let (inbox, commands) = mpsc::channel(256);
        let (decisions, _) = broadcast::channel(4096);
        let driver = Driver::new(Collector::new(config), clock);
        tokio::spawn(run(
            driver,
            clock,
            commands,
            store.clone(),
            decisions.clone(),
        ));
        CollectorHandle {
            store,
            inbox,
            decisions,
        }
    }

    /// Every decision from now on, as it is committed.
    pub fn decisions(&self) -> broadcast::Receiver<Arc<Decision>> {
        self.decisions.subscribe()
    }

    /// Hands spans to the collector and waits until they are stored.
    pub async fn ingest(&self, spans: Vec<Received>) -> Result<BatchResult, String> {
        let (reply, answer) = oneshot::channel();
        self.inbox
            .send(Command::Batch(spans, reply))
            .await
            .map_err(|_| "the collector has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the collector has stopped".to_owned())?
    }

    /// The core's running totals.
    pub async fn stats(&self) -> Option<CollectorStats> {
        let (reply, answer) = oneshot::channel();
        self.inbox.send(Command::Stats(reply)).await.ok()?;
        answer.await.ok()
    }
}

// ANCHOR: run
async fn run(
    mut driver: Driver<Collector>,
    clock: TokioClock,
    mut commands: mpsc::Receiver<Command>,
    store: Store,
    decisions: broadcast::Sender<Arc<Decision>>,
) {
    loop {
        let due = driver.machine().poll_timeout();
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(Command::Batch(spans, reply)) => {
                    let mut decided = Vec::new();
                    let result = store
                        .write(|w| ingest(&mut driver, w, spans, &mut decided))
                        .map_err(|e| format!("the span store failed: {e}"));
                    if result.is_ok() {
                        publish(&decisions, decided);
                    }
                    let _ = reply.send(result);
                }
                Some(Command::Stats(reply)) => {
                    let _ = reply.send(driver.machine().stats());
                }
            },
            () = clock.sleep_until(due.unwrap_or_default()), if due.is_some() => {
                driver.wait_for_timeout().await;
                let decided: Vec<Decision> = driver
                    .outputs()
                    .filter_map(|out| match out { Output::Decided(d) => Some(*d), Output::Dropped { .. } => None })
                    .collect();
                let stored = store.write(|w| decided.iter().try_for_each(|d| w.decision(d)));
                match stored {
                    Ok(()) => publish(&decisions, decided),
                    Err(error) => tracing::error!(%error, "decisions not stored"),
                }
            }
        }
    }
}
// ANCHOR_END: run

fn publish(decisions: &broadcast::Sender<Arc<Decision>>, decided: Vec<Decision>) {
    for decision in decided {
        let _ = decisions.send(Arc::new(decision));
    }
}

fn ingest(
    driver: &mut Driver<Collector>,
    writer: &crate::store::Writer<'_>,
    spans: Vec<Received>,
    decided: &mut Vec<Decision>,
) -> rusqlite::Result<BatchResult> {
    let mut result = BatchResult::default();
    for span in spans {
        let id = span.record.span_id;
        let mut dropped = match driver.input(Input::Span(span.record.clone())) {
            Ok(()) => None,
            Err(error) => Some(error.to_string()),
        };
        for out in driver.outputs().collect::<Vec<_>>() {
            match out {
                Output::Dropped {
                    span_id, reason, ..
                } if span_id == id => {
                    dropped = Some(format!("span {span_id}: {reason:?}"));
                }
                Output::Dropped { .. } => {}
                Output::Decided(decision) => {
                    writer.decision(&decision)?;
                    decided.push(*decision);
                }
            }
        }
        match dropped {
            None => {
                writer.span(&span)?;
                result.accepted += 1;
            }
            Some(reason) => {
                result.rejected += 1;
                result.reason.get_or_insert(reason);
            }
        }
    }
    Ok(result)
}

/// The collector's HTTP service.
pub fn router(handle: CollectorHandle) -> Router {
    Router::new()
        .route("/v1/traces", post(receive))
        .route("/api/traces", get(list))
        .route("/api/traces/{trace_id}", get(one))
        .route("/traces/{trace_id}", get(page))
        .route("/stats", get(stats))
        .route("/health", get(|| async { "ok" }))
        .fallback(lab_http::not_found)
        .with_state(handle)
}

// ANCHOR: receive
async fn receive(
    State(handle): State<CollectorHandle>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported content type",
            format!(
                "OTLP/HTTP takes application/x-protobuf or application/json, not {content_type:?}"
            ),
        )
        .into_response();
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Batch too large",
            format!("a request body holds at most {MAX_BODY} bytes; send smaller batches"),
        )
        .into_response();
    };
    let request = match otlp::decode(encoding, &bytes) {
        Ok(request) => request,
        Err(detail) => {
            return Problem::new(StatusCode::BAD_REQUEST, "Not an OTLP trace request", detail)
                .into_response();
        }
    };
    let (spans, refused, reason) = otlp::spans(request);
    let mut result = match handle.ingest(spans).await {
        Ok(result) => result,
        Err(detail) => {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Collector unavailable",
                detail,
            )
            .into_response();
        }
    };
    result.rejected += refused;
    if result.reason.is_none() {
        result.reason = reason;
    }
    let answer = ExportTraceServiceResponse {
        partial_success: (result.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: result.rejected as i64,
            error_message: result.reason.clone().unwrap_or_default(),
        }),
    };
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            answer.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => axum::Json(answer).into_response(),
    }
}
// ANCHOR_END: receive

fn store_failed(error: rusqlite::Error) -> Response {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Span store unavailable",
        error.to_string(),
    )
    .into_response()
}

fn valid_id(trace_id: &str) -> bool {
    trace_id.len() == 32
        && trace_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn not_an_id(trace_id: &str) -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "Not a trace id",
        format!("{trace_id:?} is not 32 lowercase hex digits"),
    )
    .into_response()
}

async fn one(State(handle): State<CollectorHandle>, Path(trace_id): Path<String>) -> Response {
    if !valid_id(&trace_id) {
        return not_an_id(&trace_id);
    }
    match handle.store.trace(&trace_id) {
        Ok(Some(view)) => axum::Json(view).into_response(),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            "No such trace",
            format!("trace {trace_id} was not kept, or not decided yet"),
        )
        .into_response(),
        Err(error) => store_failed(error),
    }
}

async fn page(State(handle): State<CollectorHandle>, Path(trace_id): Path<String>) -> Response {
    if !valid_id(&trace_id) {
        return not_an_id(&trace_id);
    }
    match handle.store.trace(&trace_id) {
        Ok(Some(view)) => Html(view.html()).into_response(),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            "No such trace",
            format!("trace {trace_id} was not kept, or not decided yet"),
        )
        .into_response(),
        Err(error) => store_failed(error),
    }
}

async fn list(
    State(handle): State<CollectorHandle>,
    query: Result<Query<TraceQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "Bad query",
            "service=NAME, min_duration_ms=NUMBER, error=true|false, limit=N",
        )
        .into_response();
    };
    match handle.store.traces(&query) {
        Ok(traces) => axum::Json(traces).into_response(),
        Err(error) => store_failed(error),
    }
}

async fn stats(State(handle): State<CollectorHandle>) -> Response {
    match handle.stats().await {
        Some(stats) => axum::Json(stats).into_response(),
        None => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Collector unavailable",
            "the collector has stopped",
        )
        .into_response(),
    }
}
