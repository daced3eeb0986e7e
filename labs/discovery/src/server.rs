//! The registry service: the core behind Consul's HTTP API, driven by tokio's clock, its
//! registrations in SQLite, its blocking queries parked until the core answers them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

use discovery_core::{
    Config, Input, Machine, Millis, Output, ProbeOutcome, Registry, ServiceSpec, Status,
};
use lab_runtime::{Clock, TokioClock};

use crate::consul::{self, ConsulError};
use crate::decode::parse_go_duration;
use crate::store::{Store, StoreError};

/// How a registry service is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Its SQLite file; `None` keeps registrations in memory only.
    pub data: Option<PathBuf>,
    /// The most instances it holds; registrations beyond answer 429.
    pub max_instances: usize,
    /// The largest request body it reads; larger ones answer 413.
    pub max_body: usize,
    /// The seed of the blocking queries' jitter.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            data: None,
            max_instances: 10_000,
            max_body: 512 * 1024,
            seed: 0x5eed,
        }
    }
}

struct Inner {
    registry: Registry,
    store: Store,
    waiters: HashMap<u64, Waiter>,
    next_watch: u64,
}

/// Which answer a read of one service wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum View {
    /// `/v1/health/service/:name`, all instances or (`?passing`) the passing ones only.
    Health {
        /// Only the passing instances.
        passing: bool,
    },
    /// `/v1/catalog/service/:name`.
    Catalog,
}

/// A service's answer at an index, rendered once and shared by every query it answers.
type Rendered = (u64, Bytes);

/// A parked blocking query: where its answer goes, and which answer it wants.
struct Waiter {
    answer: oneshot::Sender<Rendered>,
    view: View,
}

/// What the handlers and the timer task share.
pub struct Shared {
    inner: Mutex<Inner>,
    clock: TokioClock,
    wake: Notify,
    http: reqwest::Client,
    /// How many service answers were rendered (JSON built and serialised) since the start.
    renders: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// A running registry: its router, and the task that lets its deadlines pass.
#[derive(Debug, Clone)]
pub struct RegistryService {
    shared: Arc<Shared>,
}

impl RegistryService {
    /// Opens the store, restores what it holds (checks critical until proven) and starts the
    /// timer task. Needs a tokio runtime.
    pub fn start(settings: &Settings, clock: TokioClock) -> Result<RegistryService, StoreError> {
        let store = Store::open(settings.data.as_deref())?;
        let mut registry = Registry::new(Config {
            max_instances: settings.max_instances,
            seed: settings.seed,
        });
        let now = clock.now();
        for spec in store.load()? {
            // A row that the core refuses now (say, a lowered limit) stays on disk, unserved.
            let _ = registry.handle_input(now, Input::Restore(spec));
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                registry,
                store,
                waiters: HashMap::new(),
                next_watch: 1,
            }),
            clock,
            wake: Notify::new(),
            http: reqwest::Client::new(),
            renders: AtomicU64::new(0),
        });
        shared.flush(&mut shared.lock());
        tokio::spawn(timer(Arc::clone(&shared)));
        Ok(RegistryService { shared })
    }

    /// The Consul-compatible router, with the lab's own `/health` and the problem+json 404.
    pub fn router(&self, settings: &Settings) -> Router {
        Router::new()
            .route("/v1/agent/service/register", put(agent_register))
            .route("/v1/agent/service/deregister/{id}", put(agent_deregister))
            .route("/v1/agent/services", get(agent_services))
            .route("/v1/agent/checks", get(agent_checks))
            .route("/v1/agent/check/pass/{id}", put(check_pass))
            .route("/v1/agent/check/warn/{id}", put(check_warn))
            .route("/v1/agent/check/fail/{id}", put(check_fail))
            .route("/v1/agent/check/update/{id}", put(check_update))
            .route("/v1/health/service/{name}", get(health_service))
            .route("/v1/catalog/services", get(catalog_services))
            .route("/v1/catalog/service/{name}", get(catalog_service))
            .route("/v1/catalog/register", put(catalog_register))
            .route("/v1/catalog/deregister", put(catalog_deregister))
            .route("/v1/status/leader", get(leader))
            .route("/health", get(own_health))
            .fallback(lab_http::not_found)
            .layer(DefaultBodyLimit::max(settings.max_body))
            .with_state(Arc::clone(&self.shared))
    }

    /// How many service answers (`/v1/health/service`, `/v1/catalog/service`) it has rendered:
    /// once per change however many blocking queries the change answers.
    pub fn renders(&self) -> u64 {
        self.shared.renders.load(Ordering::Relaxed)
    }

    /// How many blocking queries are parked now.
    pub fn watching(&self) -> usize {
        self.shared.lock().registry.watching()
    }

    /// How many instances it holds now (never more than `Settings::max_instances`).
    pub fn instance_count(&self) -> usize {
        self.shared.lock().registry.instances().count()
    }

    /// The ids of `service`'s passing instances now (for the demo's narration).
    pub fn passing(&self, service: &str) -> Vec<String> {
        let now = self.shared.clock.now();
        self.shared.lock().registry.passing(service, now)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the registry as the last complete input left it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ANCHOR: shared_answer
    /// Acts on the core's outputs, in order, and wakes the timer task (a deadline may have moved).
    ///
    /// The blocking queries one change answers all get the same bytes: each view of the
    /// service is read and serialised once, here, under the lock the change already holds,
    /// and handed out as reference-counted [`Bytes`]. Ten thousand watchers woken by one
    /// heartbeat cost one render, not ten thousand reads of the service under the lock.
    fn flush(self: &Arc<Self>, inner: &mut Inner) {
        let mut rendered: HashMap<(String, View, u64), Bytes> = HashMap::new();
        let mut now = None;
        while let Some(output) = inner.registry.poll_output() {
            match output {
                Output::Answered {
                    watch,
                    service,
                    index,
                } => {
                    let Some(waiter) = inner.waiters.remove(&watch) else {
                        continue;
                    };
                    let now = *now.get_or_insert_with(|| self.clock.now());
                    let body = rendered
                        .entry((service, waiter.view, index))
                        .or_insert_with_key(|(service, view, _)| {
                            self.render(inner, service, *view, now)
                        })
                        .clone();
                    let _ = waiter.answer.send((index, body));
                }
                Output::Probe {
                    check_id,
                    url,
                    timeout,
                } => {
                    tokio::spawn(probe(Arc::clone(self), check_id, url, timeout));
                }
                Output::Reaped { id } => {
                    if let Err(error) = inner.store.delete(&id) {
                        tracing::warn!(%error, %id, "could not delete a reaped instance");
                    }
                }
            }
        }
        self.wake.notify_one();
    }
    // ANCHOR_END: shared_answer

    /// `service`'s answer in `view` at `now`, as the JSON bytes Consul sends.
    fn render(&self, inner: &Inner, service: &str, view: View, now: Millis) -> Bytes {
        self.renders.fetch_add(1, Ordering::Relaxed);
        let (passing, entry): (bool, fn(&_) -> Value) = match view {
            View::Health { passing } => (passing, consul::health_entry),
            View::Catalog => (false, consul::catalog_entry),
        };
        let entries: Vec<Value> = inner
            .registry
            .health(service, passing, now)
            .iter()
            .map(entry)
            .collect();
        // A Vec of Values always serialises.
        Bytes::from(serde_json::to_vec(&entries).unwrap_or_else(|_| b"[]".to_vec()))
    }

    /// A read of one service: the answer a change rendered for a blocking query, else one
    /// rendered now.
    async fn service_read(
        self: &Arc<Self>,
        service: &str,
        view: View,
        query: &Query,
    ) -> Result<Response, ConsulError> {
        if let Some((index, body)) = self.block(service, view, query).await? {
            return Ok(json_read(index, body));
        }
        let now = self.clock.now();
        let inner = self.lock();
        let body = self.render(&inner, service, view, now);
        Ok(json_read(inner.registry.index(service), body))
    }

    fn input(self: &Arc<Self>, input: Input) -> Result<(), ConsulError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        // A refused input changes nothing (the core's contract): no output to act on and no
        // deadline moved, so the timer task is left asleep. A flood of refused requests then
        // costs no walk of the registry's deadlines each.
        inner.registry.handle_input(now, input)?;
        self.flush(&mut inner);
        Ok(())
    }

    fn register(self: &Arc<Self>, spec: ServiceSpec) -> Result<(), ConsulError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let previous = inner.registry.instance(&spec.id).cloned();
        // Refused (the limit, say): nothing changed, nothing to flush (see `input`).
        inner
            .registry
            .handle_input(now, Input::Register(spec.clone()))?;
        if let Err(error) = inner.store.save(&spec) {
            // Not durable, so not registered: put back what was there.
            let undo = match previous {
                Some(previous) => Input::Register(previous),
                None => Input::Deregister { id: spec.id },
            };
            let _ = inner.registry.handle_input(now, undo);
            self.flush(&mut inner);
            tracing::error!(%error, "could not persist a registration");
            return Err(ConsulError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("failed to persist the registration: {error}"),
            });
        }
        self.flush(&mut inner);
        Ok(())
    }

    fn deregister(self: &Arc<Self>, id: &str) -> Result<(), ConsulError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let result = inner
            .registry
            .handle_input(now, Input::Deregister { id: id.to_owned() });
        if result.is_ok()
            && let Err(error) = inner.store.delete(id)
        {
            tracing::error!(%error, "could not delete a registration");
        }
        self.flush(&mut inner);
        result.map_err(ConsulError::from)
    }

    /// Parks a blocking query until the core answers it, and returns the answer rendered for
    /// it; `None` at once without `index`.
    async fn block(
        self: &Arc<Self>,
        service: &str,
        view: View,
        query: &Query,
    ) -> Result<Option<Rendered>, ConsulError> {
        let Some(index) = query.index else {
            return Ok(None);
        };
        let (answer, rx) = oneshot::channel();
        let watch = {
            let mut inner = self.lock();
            let watch = inner.next_watch;
            inner.next_watch += 1;
            inner.waiters.insert(watch, Waiter { answer, view });
            watch
        };
        let mut guard = Unwatch {
            shared: Arc::clone(self),
            watch,
            answered: false,
        };
        self.input(Input::Watch {
            watch,
            service: service.to_owned(),
            index,
            wait: query.wait,
        })?;
        let answer = rx.await.ok();
        guard.answered = answer.is_some();
        drop(guard);
        Ok(answer)
    }
}

/// Forgets a blocking query whose caller went away (or that was answered: then a no-op).
struct Unwatch {
    shared: Arc<Shared>,
    watch: u64,
    /// Answered: the core forgot the query when it answered, so there is nothing to undo
    /// and no need to take the lock.
    answered: bool,
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let now = self.shared.clock.now();
        let mut inner = self.shared.lock();
        // An answered query's waiter is gone already, and the core forgot it: nothing to do.
        if inner.waiters.remove(&self.watch).is_some() {
            let _ = inner
                .registry
                .handle_input(now, Input::Unwatch { watch: self.watch });
        }
    }
}

/// Lets the core's deadlines pass: sleeps until its `poll_timeout`, or until an input moved it.
async fn timer(shared: Arc<Shared>) {
    loop {
        let due = shared.lock().registry.poll_timeout();
        let woken = shared.wake.notified();
        match due {
            Some(due) => {
                tokio::select! {
                    () = shared.clock.sleep_until(due) => {
                        let now = shared.clock.now().max(due);
                        let mut inner = shared.lock();
                        inner.registry.handle_timeout(now);
                        shared.flush(&mut inner);
                    }
                    () = woken => {}
                }
            }
            None => woken.await,
        }
        if Arc::strong_count(&shared) == 1 {
            return;
        }
    }
}

/// Runs one HTTP probe and feeds its outcome back.
async fn probe(shared: Arc<Shared>, check_id: String, url: String, timeout: Millis) {
    let request = shared.http.get(&url).send();
    let outcome = match tokio::time::timeout(shared.clock.real(timeout), request).await {
        Err(_) => ProbeOutcome::TimedOut,
        Ok(Err(_)) => ProbeOutcome::Unreachable,
        Ok(Ok(response)) => ProbeOutcome::Response(response.status().as_u16()),
    };
    // The check may be gone by now: nothing to report then.
    let _ = shared.input(Input::Probed { check_id, outcome });
}

/// A read's query string: `?index=&wait=` and `?passing`.
#[derive(Debug, Default)]
struct Query {
    index: Option<u64>,
    wait: Option<Millis>,
    passing: bool,
}

// ANCHOR: query
/// Parses a read's query string as Consul does: `passing` with no value means true (Go's
/// `strconv.ParseBool` words otherwise), `index` a number, `wait` a Go duration.
fn parse_query(raw: Option<&str>) -> Result<Query, ConsulError> {
    let mut query = Query::default();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "passing" => {
                query.passing = match value {
                    "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    _ => return Err(ConsulError::bad_request("Invalid value for ?passing")),
                }
            }
            "index" => {
                query.index = Some(
                    value
                        .parse()
                        .map_err(|_| ConsulError::bad_request("Invalid index"))?,
                )
            }
            "wait" => {
                query.wait = Some(
                    parse_go_duration(value)
                        .map_err(|_| ConsulError::bad_request("Invalid wait time"))?,
                )
            }
            _ => {}
        }
    }
    Ok(query)
}
// ANCHOR_END: query

/// A JSON read with Consul's headers.
fn read(index: u64, body: Value) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("X-Consul-Index", HeaderValue::from(index));
    headers.insert("X-Consul-KnownLeader", HeaderValue::from_static("true"));
    headers.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
    (headers, axum::Json(body)).into_response()
}

/// A read already rendered to JSON bytes, with Consul's headers.
fn json_read(index: u64, body: Bytes) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("X-Consul-Index", HeaderValue::from(index));
    headers.insert("X-Consul-KnownLeader", HeaderValue::from_static("true"));
    headers.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (headers, body).into_response()
}

/// Consul answers a write with an empty 200, the catalog's with `true`.
fn written(catalog: bool) -> Response {
    if catalog {
        axum::Json(json!(true)).into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

/// The handlers' state.
type Shared_ = State<Arc<Shared>>;

async fn agent_register(State(shared): Shared_, body: Bytes) -> Result<Response, ConsulError> {
    let spec = consul::agent_registration(&consul::body_json(&body)?)?;
    shared.register(spec)?;
    Ok(written(false))
}

async fn agent_deregister(
    State(shared): Shared_,
    Path(id): Path<String>,
) -> Result<Response, ConsulError> {
    shared.deregister(&id)?;
    Ok(written(false))
}

async fn agent_services(State(shared): Shared_) -> Response {
    let inner = shared.lock();
    let services: serde_json::Map<String, Value> = inner
        .registry
        .instances()
        .map(|spec| (spec.id.clone(), consul::agent_service(spec)))
        .collect();
    read(inner.registry.last_index(), Value::Object(services))
}

async fn agent_checks(State(shared): Shared_) -> Response {
    let now = shared.clock.now();
    let inner = shared.lock();
    let checks: serde_json::Map<String, Value> = inner
        .registry
        .checks(now)
        .iter()
        .filter_map(|check| {
            let service = inner.registry.instance(&check.service_id)?;
            Some((check.spec.id.clone(), consul::check(check, service)))
        })
        .collect();
    read(inner.registry.last_index(), Value::Object(checks))
}

fn report(
    shared: &Arc<Shared>,
    id: String,
    status: Status,
    note: String,
) -> Result<Response, ConsulError> {
    shared.input(Input::Report {
        check_id: id,
        status,
        note,
    })?;
    Ok(written(false))
}

fn note(raw: Option<&str>) -> String {
    // `?note=` is form-encoded like every query: `+` is a space, `%XX` a byte.
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "note")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

async fn check_pass(
    State(shared): Shared_,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsulError> {
    report(&shared, id, Status::Passing, note(raw.as_deref()))
}

async fn check_warn(
    State(shared): Shared_,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsulError> {
    report(&shared, id, Status::Warning, note(raw.as_deref()))
}

async fn check_fail(
    State(shared): Shared_,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsulError> {
    report(&shared, id, Status::Critical, note(raw.as_deref()))
}

async fn check_update(
    State(shared): Shared_,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsulError> {
    let body = consul::body_json(&body)?;
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| ConsulError::bad_request("Invalid check status: \"\""))?;
    let status = consul::status_word(status)?;
    let output = body
        .get("output")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    report(&shared, id, status, output)
}

async fn health_service(
    State(shared): Shared_,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsulError> {
    let query = parse_query(raw.as_deref())?;
    let view = View::Health {
        passing: query.passing,
    };
    shared.service_read(&name, view, &query).await
}

async fn catalog_service(
    State(shared): Shared_,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsulError> {
    let query = parse_query(raw.as_deref())?;
    shared.service_read(&name, View::Catalog, &query).await
}

async fn catalog_services(
    State(shared): Shared_,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsulError> {
    parse_query(raw.as_deref())?;
    let inner = shared.lock();
    let services: serde_json::Map<String, Value> = inner
        .registry
        .services()
        .into_iter()
        .map(|(name, tags)| (name.to_owned(), json!(tags)))
        .collect();
    Ok(read(inner.registry.last_index(), Value::Object(services)))
}

async fn catalog_register(State(shared): Shared_, body: Bytes) -> Result<Response, ConsulError> {
    let spec = consul::catalog_registration(&consul::body_json(&body)?)?;
    shared.register(spec)?;
    Ok(written(true))
}

async fn catalog_deregister(State(shared): Shared_, body: Bytes) -> Result<Response, ConsulError> {
    let body = consul::body_json(&body)?;
    if body
        .get("node")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ConsulError::bad_request("Must provide node"));
    }
    if body.get("checkid").is_some_and(|c| !c.is_null()) {
        return Err(ConsulError::bad_request(
            "Deregistering a single check is not supported by this registry; deregister its service",
        ));
    }
    let Some(id) = body.get("serviceid").and_then(Value::as_str) else {
        return Err(ConsulError::bad_request("Must provide ServiceID"));
    };
    shared.deregister(id)?;
    Ok(written(true))
}

async fn leader() -> axum::Json<Value> {
    axum::Json(json!("127.0.0.1:8300"))
}

/// The lab's own health: up, and how many blocking queries are parked (what the benchmark
/// waits for before it makes its change).
async fn own_health(State(shared): Shared_) -> axum::Json<Value> {
    let watching = shared.lock().registry.watching();
    axum::Json(json!({ "status": "ok", "lab": "discovery", "watching": watching }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_like_consul() {
        assert!(parse_query(Some("passing")).expect("valid").passing);
        assert!(!parse_query(Some("passing=false")).expect("valid").passing);
        assert!(parse_query(Some("passing=maybe")).is_err());
        let q = parse_query(Some("index=42&wait=1m30s")).expect("valid");
        assert_eq!((q.index, q.wait), (Some(42), Some(Millis(90_000))));
        assert!(parse_query(Some("index=x")).is_err());
        assert!(parse_query(Some("wait=10")).is_err());
        assert_eq!(note(Some("note=all%20good+here")), "all good here");
        assert_eq!(note(Some("note=100%")), "100%");
        assert_eq!(note(Some("other=1&note=a%26b")), "a&b");
        assert_eq!(note(None), "");
    }
}
