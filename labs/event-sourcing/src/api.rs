//! The store's HTTP API, on `lab-runtime`'s server:
//!
//! | route | what it does |
//! |---|---|
//! | `POST /streams/{stream}` | append events with an expected version: 201 with the new version and position, 200 for a retry already there, 409 naming the current version |
//! | `POST /streams/{stream}/commands` | decide a command against the order and append what it decided |
//! | `GET /streams/{stream}?from=1&limit=100` | read a stream from a version |
//! | `GET /streams/{stream}/state?version=3` | the order at any version ("time travel"), or now |
//! | `GET /all?after=0&limit=100` | read `$all` after a position |
//! | `GET /subscribe?after=0` | a live subscription as server-sent events (`Last-Event-ID` resumes) |
//!
//! Appended events are checked against the order's rules before they are written: each must
//! be what `decide` would have decided from the state before it. Every refusal is
//! problem+json and writes nothing.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use event_sourcing_core::{
    AppendError, Appended, Command, ExpectedVersion, Loaded, Millis, NewEvent, Snapshot,
    SnapshotPolicy, SubscriptionConfig, admit, check_expected, decide, decode, encode, evolve,
};
use event_sourcing_store::{Delivery, EventStore, StoreError, load, load_at, subscribe};
use futures::Stream;
use lab_http::Problem;
use serde_json::json;

use crate::problem::{bad_request, conflict, from_load, from_store, too_large, unprocessable};
use crate::wire::{self, MAX_BODY_BYTES, MAX_READ, WireEvent};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The event store.
    pub store: Arc<dyn EventStore>,
    /// When to snapshot a stream.
    pub snapshots: SnapshotPolicy,
}

/// The store service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/streams/{stream}", post(append).get(read_stream))
        .route("/streams/{stream}/commands", post(command))
        .route("/streams/{stream}/state", get(state_at))
        .route("/all", get(read_all))
        .route("/subscribe", get(subscribe_sse))
        .fallback(lab_http::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "lab": "event-sourcing" }))
}

/// The stream named in the path, checked.
fn stream_name(path: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    let Path(stream) = path.map_err(|rejection| {
        bad_request(format!(
            "the stream name is not valid UTF-8 once percent-decoded ({})",
            rejection.body_text()
        ))
    })?;
    wire::check_stream(&stream).map_err(bad_request)?;
    Ok(stream)
}

/// A number from the query string, or `default` when absent.
fn query_number(raw: &Option<String>, name: &str, default: u64) -> Result<u64, Problem> {
    let Some(raw) = raw else { return Ok(default) };
    for pair in raw.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            return value
                .parse()
                .map_err(|_| bad_request(format!("{name}={value:?} is not a number (0 or more)")));
        }
    }
    Ok(default)
}

fn limit(raw: &Option<String>) -> Result<usize, Problem> {
    let limit = query_number(raw, "limit", 100)?;
    if limit == 0 || limit > MAX_READ as u64 {
        return Err(bad_request(format!(
            "limit is 1 to {MAX_READ}, not {limit}"
        )));
    }
    Ok(limit as usize)
}

fn appended_response(stream: &str, appended: Appended) -> Response {
    let status = if appended.already_appended {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (
        status,
        Json(json!({
            "stream": stream,
            "first_version": appended.first_version,
            "version": appended.version,
            "position": appended.position,
            "already_appended": appended.already_appended,
        })),
    )
        .into_response()
}

/// How often a write decided against a stale state is decided again before giving up.
const ATTEMPTS: usize = 5;

// ANCHOR: append_handler
/// Checks `batch` against the order's rules from `loaded` and appends it: with `Exact` of the
/// loaded version when the writer's own expectation holds there (so nothing slips in between
/// the check and the write), with the writer's expectation when it does not (so the store
/// answers with the conflict, or recognises a retry).
async fn check_and_append(
    state: &AppState,
    stream: &str,
    expected: ExpectedVersion,
    batch: Vec<NewEvent>,
) -> Result<Appended, Problem> {
    for _ in 0..ATTEMPTS {
        let loaded = load(state.store.as_ref(), stream)
            .await
            .map_err(from_load)?;
        let mut order = loaded.state.clone();
        for (index, new) in batch.iter().enumerate() {
            let event = decode(&new.event_type, new.schema, &new.data)
                .map_err(|error| unprocessable(format!("event {index}: {error}")))?;
            if let Err(rejection) = admit(&order, &event) {
                // Perhaps a retry of a batch already written: ask the store, which writes
                // nothing for an expectation that cannot hold.
                return match state
                    .store
                    .append(stream, ExpectedVersion::Exact(u64::MAX), batch.clone())
                    .await
                {
                    Ok(appended) => Ok(appended),
                    Err(StoreError::Append(AppendError::PartlyAppended { .. })) | Err(_) => {
                        Err(unprocessable(format!(
                            "event {index} ({}) breaks the order's rules as version {}: {rejection}",
                            new.event_type,
                            loaded.version + 1 + index as u64
                        )))
                    }
                };
            }
            order = evolve(order, &event);
        }
        let holds = check_expected(expected, loaded.version).is_ok();
        let effective = if holds {
            ExpectedVersion::Exact(loaded.version)
        } else {
            expected
        };
        match state.store.append(stream, effective, batch.clone()).await {
            Ok(appended) => {
                if !appended.already_appended
                    && state.snapshots.due(loaded.version, appended.version)
                {
                    let snapshot = Snapshot::of(&Loaded {
                        state: order,
                        version: appended.version,
                    });
                    // A snapshot is an optimisation: failing to save one fails nothing.
                    if let Err(error) = state.store.save_snapshot(stream, snapshot).await {
                        tracing::warn!(%error, stream, "snapshot not saved");
                    }
                }
                return Ok(appended);
            }
            // Someone appended between our load and our write: decide again.
            Err(StoreError::Append(AppendError::Conflict(_))) if holds => continue,
            Err(StoreError::Append(AppendError::Conflict(found))) => return Err(conflict(found)),
            Err(error) => return Err(from_store(error)),
        }
    }
    Err(Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too much contention",
        format!("{stream} changed under {ATTEMPTS} attempts in a row; try again"),
    ))
}
// ANCHOR_END: append_handler

async fn append(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let stream = stream_name(path)?;
    let body = body.map_err(|rejection| {
        too_large(format!(
            "the body could not be read ({}); the limit is {MAX_BODY_BYTES} bytes",
            rejection.body_text()
        ))
    })?;
    let request = wire::append_request(&body).map_err(|(status, detail)| match status {
        413 => too_large(detail),
        422 => unprocessable(detail),
        _ => bad_request(detail),
    })?;
    let appended = check_and_append(&state, &stream, request.expected, request.events).await?;
    Ok(appended_response(&stream, appended))
}

async fn command(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let stream = stream_name(path)?;
    let body = body.map_err(|rejection| bad_request(rejection.body_text()))?;
    let command: Command = serde_json::from_slice(&body)
        .map_err(|error| bad_request(format!("not a command: {error}")))?;
    let expected = match headers.get("expected-version") {
        None => ExpectedVersion::Any,
        Some(value) => value
            .to_str()
            .map_err(|_| bad_request("Expected-Version is not text"))?
            .parse()
            .map_err(bad_request)?,
    };
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|key| !key.is_empty() && key.len() <= 100)
                .ok_or_else(|| bad_request("Idempotency-Key is 1 to 100 characters of text"))?
                .to_owned(),
        ),
    };
    let loaded = load(state.store.as_ref(), &stream)
        .await
        .map_err(from_load)?;
    let decided = match decide(&loaded.state, command) {
        Ok(decided) => decided,
        Err(rejection) => {
            return Err(unprocessable(format!(
                "refused at version {}: {rejection}",
                loaded.version
            )));
        }
    };
    if decided.is_empty() {
        return Ok((
            StatusCode::OK,
            Json(json!({ "stream": stream, "version": loaded.version, "events": 0 })),
        )
            .into_response());
    }
    let batch = decided
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let id = match &key {
                Some(key) => format!("{key}/{index}"),
                None => format!("{stream}@{}", loaded.version + 1 + index as u64),
            };
            encode(event, id)
        })
        .collect();
    let appended = check_and_append(&state, &stream, expected, batch).await?;
    Ok(appended_response(&stream, appended))
}

async fn read_stream(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let stream = stream_name(path)?;
    let from = query_number(&query, "from", 1)?;
    let limit = limit(&query)?;
    let version = state.store.version(&stream).await.map_err(from_store)?;
    let events = state
        .store
        .read_stream(&stream, from, limit)
        .await
        .map_err(from_store)?;
    let events: Vec<WireEvent> = events.into_iter().map(WireEvent::from).collect();
    Ok(Json(json!({ "stream": stream, "version": version, "events": events })).into_response())
}

async fn state_at(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let stream = stream_name(path)?;
    let current = state.store.version(&stream).await.map_err(from_store)?;
    let version = query_number(&query, "version", current)?;
    if version > current {
        return Err(bad_request(format!(
            "{stream} is at version {current}; there is no version {version} yet"
        )));
    }
    let loaded = load_at(state.store.as_ref(), &stream, version)
        .await
        .map_err(from_load)?;
    Ok(Json(json!({
        "stream": stream,
        "version": loaded.version,
        "current_version": current,
        "state": loaded.state,
        "total_cents": loaded.state.as_ref().map(|order| order.total_cents()),
    }))
    .into_response())
}

async fn read_all(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let after = query_number(&query, "after", 0)?;
    let limit = limit(&query)?;
    let events = state
        .store
        .read_all(after, limit)
        .await
        .map_err(from_store)?;
    let events: Vec<WireEvent> = events.into_iter().map(WireEvent::from).collect();
    Ok(Json(json!({ "after": after, "events": events })).into_response())
}

/// How the SSE subscription pages and checkpoints (its checkpoint is the client's
/// `Last-Event-ID`, so it only marks the place in the stream).
const SSE_SUBSCRIPTION: SubscriptionConfig = SubscriptionConfig {
    page_size: 500,
    checkpoint_every: 1_000,
    checkpoint_after: Millis(1_000),
    live_buffer: 1_000,
};

async fn subscribe_sse(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| bad_request("Last-Event-ID is not a position"))?,
        None => query_number(&query, "after", 0)?,
    };
    let feed = subscribe(Arc::clone(&state.store), after, SSE_SUBSCRIPTION);
    let events = futures::stream::unfold(feed, |mut feed| async move {
        let delivery = feed.recv().await?;
        Some((Ok(sse_event(delivery)), feed))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// A delivery as an SSE event: `id` is the position, `event` the type; the switch to live
/// and checkpoints are comments.
fn sse_event(delivery: Delivery) -> SseEvent {
    match delivery {
        Delivery::Event(event) => {
            let id = event.position.to_string();
            let name = event.event_type.clone();
            let data = serde_json::to_string(&WireEvent::from(event)).unwrap_or_default();
            SseEvent::default().id(id).event(name).data(data)
        }
        Delivery::Live { at } => SseEvent::default().comment(format!("live after {at}")),
        Delivery::Checkpoint(at) => SseEvent::default().comment(format!("checkpoint {at}")),
        Delivery::Failed(error) => SseEvent::default().event("error").data(error),
    }
}
