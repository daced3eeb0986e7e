//! The write side's HTTP API. Order commands are decided by the event sourcing lab's
//! aggregate against the order loaded from the store, and what it decides is appended with the
//! version it was decided at; customer and product names are the other services' events, kept
//! in their own streams. Every success carries the `$all` position of its last event in the
//! `position-token` header: a read that sends it back sees its own write.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /orders/{id}` | a command (`{"type": "CreateOrder", …}`, the aggregate's `Command`) |
//! | `POST /customers/{id}` | `{"name": …}`: registers the customer, or renames them |
//! | `POST /products/{sku}` | `{"name": …}`: lists the product, or renames it |
//!
//! Malformed bodies, bad ids and refused commands are problem+json 4xx, and write nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cqrs_core::Catalog;
use event_sourcing_core::{Command, ExpectedVersion, decide, encode};
use event_sourcing_store::{EventStore, StoreError, load};
use lab_http::Problem;
use lab_telemetry::messages::TraceHeaders;
use serde::Deserialize;
use serde_json::json;

use crate::telemetry::TraceLog;

/// The header a write answers with and a read may send back.
pub const TOKEN_HEADER: &str = "position-token";
/// The largest body a write takes.
pub const MAX_BODY: usize = 16 * 1024;

/// The write API's state: the store.
#[derive(Clone)]
pub struct WriteState {
    /// The event store the aggregate's events go to.
    pub store: Arc<dyn EventStore>,
    /// Where each command's trace context is recorded for its positions, when traced.
    pub traces: Option<Arc<TraceLog>>,
}

/// The write API.
pub fn router(state: WriteState) -> Router {
    Router::new()
        .route("/orders/{id}", post(order_command))
        .route("/customers/{id}", post(customer))
        .route("/products/{sku}", post(product))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail)
}

fn from_store(error: StoreError) -> Problem {
    match error {
        StoreError::Append(error) => {
            Problem::new(StatusCode::CONFLICT, "Conflict", error.to_string())
        }
        StoreError::Backend(error) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The store failed",
            format!("nothing is known to be written: {error}"),
        ),
    }
}

/// The id in the path, or a problem when it does not percent-decode to UTF-8.
pub fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    path.map(|Path(id)| id)
        .map_err(|rejection| bad_request(rejection.body_text()))
}

/// Ids are 1 to 64 letters, digits, `-` or `_`: they become stream names.
pub fn check_id(what: &str, id: &str) -> Result<(), Problem> {
    let fine = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(bad_request(format!(
            "the {what} id {id:?} must be 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

fn body_json<T: for<'de> Deserialize<'de>>(
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, Problem> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Body too large",
            format!("a command is at most {MAX_BODY} bytes"),
        ),
        _ => bad_request(rejection.body_text()),
    })?;
    serde_json::from_slice(&body)
        .map_err(|error| bad_request(format!("the body is not {shape}: {error}")))
}

fn written(status: StatusCode, position: u64, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(TOKEN_HEADER, HeaderValue::from(position));
    response
}

/// How often a command decided against a state someone else changed meanwhile is decided again.
const RETRIES: usize = 5;

// ANCHOR: order_command
async fn order_command(
    State(state): State<WriteState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let id = path_id(path)?;
    check_id("order", &id)?;
    let command: Command = body_json(body, "an order command")?;
    if let Command::CreateOrder { order_id, customer } = &command {
        if *order_id != id {
            return Err(bad_request(format!(
                "the command creates {order_id:?} but was sent to /orders/{id}"
            )));
        }
        check_id("customer", customer)?;
    }
    let stream = format!("order-{id}");
    for _ in 0..RETRIES {
        let loaded = load(state.store.as_ref(), &stream).await.map_err(|error| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The store failed",
                error.to_string(),
            )
        })?;
        let decided = decide(&loaded.state, command.clone()).map_err(|rejection| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Command refused",
                rejection.to_string(),
            )
        })?;
        if decided.is_empty() {
            let last = state
                .store
                .read_stream(&stream, loaded.version, 1)
                .await
                .map_err(from_store)?;
            let position = last.first().map_or(0, |event| event.position);
            return Ok(written(
                StatusCode::OK,
                position,
                json!({ "order_id": id, "events": 0 }),
            ));
        }
        let batch = decided
            .iter()
            .enumerate()
            .map(|(offset, event)| {
                encode(
                    event,
                    format!("{stream}-{}", loaded.version + 1 + offset as u64),
                )
            })
            .collect();
        let versions = (loaded.version + 1, loaded.version + decided.len() as u64);
        trace_context(&state, &stream, versions, true);
        let appended = state
            .store
            .append(&stream, ExpectedVersion::Exact(loaded.version), batch)
            .await;
        if appended.is_err() {
            trace_context(&state, &stream, versions, false);
        }
        match appended {
            Ok(appended) => {
                return Ok(written(
                    StatusCode::CREATED,
                    appended.position,
                    json!({ "order_id": id, "version": appended.version, "position": appended.position }),
                ));
            }
            Err(StoreError::Append(event_sourcing_core::AppendError::Conflict(_))) => continue,
            Err(error) => return Err(from_store(error)),
        }
    }
    Err(Problem::new(
        StatusCode::CONFLICT,
        "Conflict",
        format!("{stream} kept changing while the command was decided; send it again"),
    ))
}
// ANCHOR_END: order_command

/// With tracing on, records the current span's context for `versions` of `stream` (before the
/// append: the publisher may read the events the moment they commit), or forgets it (the
/// append failed). A failure here loses only a trace's link, never the command.
fn trace_context(state: &WriteState, stream: &str, versions: (u64, u64), record: bool) {
    let Some(traces) = &state.traces else {
        return;
    };
    let (first, last) = versions;
    let done = if record {
        traces.record(stream, first, last, &TraceHeaders::current())
    } else {
        traces.forget(stream, first, last)
    };
    if let Err(error) = done {
        tracing::warn!(%error, stream, "the command's trace context was not kept");
    }
}

/// A name to show: 1 to 200 characters, not blank.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Name {
    name: String,
}

fn check_name(name: &str) -> Result<(), Problem> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(bad_request(
            "the name must be 1 to 200 characters and not blank",
        ));
    }
    Ok(())
}

async fn append_catalog(
    state: &WriteState,
    first: Catalog,
    then: Catalog,
) -> Result<Response, Problem> {
    let stream = first.stream();
    let version = state.store.version(&stream).await.map_err(from_store)?;
    let event = if version == 0 { first } else { then };
    let new = event.encode(format!("{stream}-{}", version + 1));
    let appended = state
        .store
        .append(&stream, ExpectedVersion::Exact(version), vec![new])
        .await
        .map_err(from_store)?;
    Ok(written(
        StatusCode::CREATED,
        appended.position,
        json!({ "stream": stream, "version": appended.version, "position": appended.position }),
    ))
}

async fn customer(
    State(state): State<WriteState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let id = path_id(path)?;
    check_id("customer", &id)?;
    let Name { name } = body_json(body, "{\"name\": …}")?;
    check_name(&name)?;
    let registered = Catalog::CustomerRegistered {
        customer_id: id.clone(),
        name: name.clone(),
    };
    let renamed = Catalog::CustomerRenamed {
        customer_id: id,
        name,
    };
    append_catalog(&state, registered, renamed).await
}

async fn product(
    State(state): State<WriteState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let sku = path_id(path)?;
    check_id("product", &sku)?;
    let Name { name } = body_json(body, "{\"name\": …}")?;
    check_name(&name)?;
    let listed = Catalog::ProductListed {
        sku: sku.clone(),
        name: name.clone(),
    };
    let renamed = Catalog::ProductRenamed { sku, name };
    append_catalog(&state, listed, renamed).await
}
