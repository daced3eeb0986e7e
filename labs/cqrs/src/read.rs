//! The read side's HTTP API, over the views' SQLite files (so it runs in any process), and
//! the projections' admin API (in the process that runs them).
//!
//! | route | what it does |
//! |---|---|
//! | `GET /orders/{id}` | the order-details view's row |
//! | `GET /customers/{id}/summary` | the customer-summary view's row |
//! | `GET /metrics` | each projection's checkpoint and lag, in positions and milliseconds |
//! | `GET /admin/projections/{name}` | a projection's rebuild status |
//! | `POST /admin/projections/{name}/rebuild` | starts a rebuild: 202 with its status |
//!
//! A read may send the `position-token` a write answered with (header, or `?token=`): it then
//! waits until the view's checkpoint reaches the token, up to `?wait_ms=` (at most
//! [`MAX_WAIT_MS`]), and answers with what it has, saying `fresh` or `stale` in the body and
//! in the `read-freshness` header. A token past the store's last position is refused.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cqrs_core::{Details, Freshness, Summary, View, freshness};
use lab_http::Problem;
use rusqlite::{Connection, OpenFlags};
use serde_json::json;

use crate::projection::Admin;
use crate::viewdb::{self, wall_ms};
use crate::write::{TOKEN_HEADER, check_id, path_id};

/// The default wait for a token, in ms.
pub const DEFAULT_WAIT_MS: u64 = 2_000;
/// The longest wait a read may ask for, in ms.
pub const MAX_WAIT_MS: u64 = 10_000;
/// How often a waiting read looks at the view's checkpoint again.
const RECHECK: Duration = Duration::from_millis(5);

/// Where the files are: the store and each view.
#[derive(Clone)]
pub struct ReadState {
    /// The event store's file (for its head).
    pub store: PathBuf,
    /// Each view's name and file.
    pub views: Vec<(&'static str, PathBuf)>,
    /// The projections this process runs (for the admin API), empty in a read-only process.
    pub admin: Vec<Arc<dyn Admin>>,
}

/// The read API, `/metrics` and the admin API.
pub fn router(state: ReadState) -> Router {
    Router::new()
        .route("/orders/{id}", get(order))
        .route("/customers/{id}/summary", get(summary))
        .route("/metrics", get(metrics))
        .route("/admin/projections/{name}", get(rebuild_status))
        .route("/admin/projections/{name}/rebuild", post(rebuild))
        .with_state(Arc::new(state))
}

fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail)
}

fn unavailable(error: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "A view file failed",
        error.to_string(),
    )
}

fn read_only(path: &std::path::Path) -> Result<Connection, Problem> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|error| unavailable(format!("{}: {error}", path.display())))?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(unavailable)?;
    Ok(connection)
}

/// The store's last `$all` position (0 when it is empty or not created yet).
pub fn store_head(store: &std::path::Path) -> Result<u64, Problem> {
    if !store.exists() {
        return Ok(0);
    }
    read_only(store)?
        .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |row| {
            row.get(0)
        })
        .map_err(unavailable)
}

fn view_file(state: &ReadState, name: &str) -> Result<PathBuf, Problem> {
    state
        .views
        .iter()
        .find(|(view, _)| *view == name)
        .map(|(_, path)| path.clone())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "Unknown projection",
                format!("no projection is called {name:?}"),
            )
        })
}

/// `?name=value` from a raw query string.
fn query_param<'a>(raw: &'a Option<String>, name: &str) -> Option<&'a str> {
    raw.as_deref()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn number(text: &str, what: &str) -> Result<u64, Problem> {
    text.parse()
        .map_err(|_| bad_request(format!("the {what} {text:?} is not a whole number")))
}

// ANCHOR: read_your_writes
/// Reads the row `key` of `table` in view `name`: at once without a token; with one, once the
/// view's checkpoint reaches it or the wait is over.
async fn read_row(
    state: &ReadState,
    name: &'static str,
    table: &str,
    key: &str,
    headers: &HeaderMap,
    query: &Option<String>,
) -> Result<Response, Problem> {
    let token = match (headers.get(TOKEN_HEADER), query_param(query, "token")) {
        (Some(header), _) => Some(number(header.to_str().unwrap_or("?"), "position token")?),
        (None, Some(text)) => Some(number(text, "position token")?),
        (None, None) => None,
    };
    let wait_ms = query_param(query, "wait_ms")
        .map(|text| number(text, "wait_ms"))
        .transpose()?;
    let wait_ms = wait_ms.unwrap_or(DEFAULT_WAIT_MS);
    if wait_ms > MAX_WAIT_MS {
        return Err(bad_request(format!("wait_ms is at most {MAX_WAIT_MS}")));
    }
    let head = store_head(&state.store)?;
    if let Some(token) = token
        && token > head
    {
        return Err(bad_request(format!(
            "the position token {token} is from the future: the store's last position is {head}"
        )));
    }
    let connection = read_only(&view_file(state, name)?)?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let mut checkpoint = viewdb::active_checkpoint(&connection)
        .map_err(unavailable)?
        .position;
    if let Some(token) = token {
        while checkpoint < token && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(RECHECK).await;
            checkpoint = viewdb::active_checkpoint(&connection)
                .map_err(unavailable)?
                .position;
        }
    }
    let row = viewdb::row(&connection, table, key).map_err(unavailable)?;
    let answer = freshness(token.unwrap_or(0), checkpoint);
    let label = match answer {
        Freshness::Fresh { .. } if token.is_some() => "fresh",
        Freshness::Fresh { .. } => "unchecked",
        Freshness::Stale { .. } => "stale",
    };
    let Some(row) = row else {
        let detail = format!("{name} has no row {key:?} at position {checkpoint} ({label})");
        let problem = Problem::new(StatusCode::NOT_FOUND, "Not in the view", detail);
        return Err(problem.with_header(
            axum::http::HeaderName::from_static("read-freshness"),
            HeaderValue::from_static(label),
        ));
    };
    let body = json!({ "view": name, "row": row, "checkpoint": checkpoint, "freshness": label, "token": token });
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert("read-freshness", HeaderValue::from_static(label));
    Ok(response)
}
// ANCHOR_END: read_your_writes

async fn order(
    State(state): State<Arc<ReadState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let id = path_id(path)?;
    check_id("order", &id)?;
    read_row(&state, Details::NAME, "orders", &id, &headers, &query).await
}

async fn summary(
    State(state): State<Arc<ReadState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let id = path_id(path)?;
    check_id("customer", &id)?;
    read_row(&state, Summary::NAME, "customers", &id, &headers, &query).await
}

/// One projection's lag, as `/metrics` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lag {
    /// The view's checkpoint.
    pub checkpoint: u64,
    /// The store's head minus the checkpoint.
    pub positions: u64,
    /// 0 when caught up; else the last event's publish-to-commit delay plus the time since
    /// that commit.
    pub millis: u64,
}

/// The lag of the view in `path` against a store at `head`.
pub fn lag(path: &std::path::Path, head: u64) -> anyhow::Result<Lag> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let checkpoint = viewdb::active_checkpoint(&connection)?;
    let positions = head.saturating_sub(checkpoint.position);
    let millis = if positions == 0 {
        0
    } else {
        checkpoint.delay_ms + wall_ms().saturating_sub(checkpoint.committed_ms)
    };
    Ok(Lag {
        checkpoint: checkpoint.position,
        positions,
        millis,
    })
}

// ANCHOR: metrics
async fn metrics(State(state): State<Arc<ReadState>>) -> Result<Response, Problem> {
    let head = store_head(&state.store)?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# HELP cqrs_store_head The store's last $all position.\n# TYPE cqrs_store_head gauge\ncqrs_store_head {head}"
    );
    let _ = writeln!(
        text,
        "# HELP cqrs_projection_checkpoint The last position a projection committed.\n# TYPE cqrs_projection_checkpoint gauge"
    );
    let mut lags = Vec::new();
    for (name, path) in &state.views {
        let lag = if path.exists() {
            lag(path, head).map_err(unavailable)?
        } else {
            Lag {
                checkpoint: 0,
                positions: head,
                millis: 0,
            }
        };
        let _ = writeln!(
            text,
            "cqrs_projection_checkpoint{{projection=\"{name}\"}} {}",
            lag.checkpoint
        );
        lags.push((name, lag));
    }
    let _ = writeln!(
        text,
        "# HELP cqrs_projection_lag_positions Events in the store not yet in the view.\n# TYPE cqrs_projection_lag_positions gauge"
    );
    for (name, lag) in &lags {
        let _ = writeln!(
            text,
            "cqrs_projection_lag_positions{{projection=\"{name}\"}} {}",
            lag.positions
        );
    }
    let _ = writeln!(
        text,
        "# HELP cqrs_projection_lag_ms How far behind the view is, in milliseconds.\n# TYPE cqrs_projection_lag_ms gauge"
    );
    for (name, lag) in &lags {
        let _ = writeln!(
            text,
            "cqrs_projection_lag_ms{{projection=\"{name}\"}} {}",
            lag.millis
        );
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(response)
}
// ANCHOR_END: metrics

fn admin(state: &ReadState, name: &str) -> Result<Arc<dyn Admin>, Problem> {
    if let Some(found) = state.admin.iter().find(|admin| admin.name() == name) {
        return Ok(Arc::clone(found));
    }
    view_file(state, name)?;
    Err(Problem::new(
        StatusCode::NOT_FOUND,
        "Projection not run here",
        format!(
            "{name:?} is projected by another process: ask the one started with --role project"
        ),
    ))
}

async fn rebuild_status(
    State(state): State<Arc<ReadState>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let name = path_id(path)?;
    Ok(axum::Json(admin(&state, &name)?.status()).into_response())
}

async fn rebuild(
    State(state): State<Arc<ReadState>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let name = path_id(path)?;
    let status = admin(&state, &name)?.start_rebuild().map_err(|error| {
        Problem::new(StatusCode::CONFLICT, "Rebuild refused", error.to_string())
    })?;
    Ok((StatusCode::ACCEPTED, axum::Json(status)).into_response())
}
