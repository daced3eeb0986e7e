//! What a trace shows of the breaker: a rejected call gets a `breaker.rejected` event on its
//! own span, with the state that refused it and the retry-after; a state change gets a
//! `breaker.transition` event on the span of the call that caused it. `tracing-opentelemetry`
//! turns both into OpenTelemetry span events (the event's message is the event's name).
//!
//! A `tracing` subscriber of the test's own records every event with the span it belongs to.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use breaker_core::{Config, Millis, State, WindowKind};
use breaker_tower::Breaker;
use breaker_tower::clock::TokioClock;
use breaker_tower::layer::{BreakerLayer, rejection};
use http::{Request, Response, StatusCode};
use parking_lot::Mutex;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use tracing::Instrument;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One recorded event: its name, the span it was recorded on, and its fields as text.
#[derive(Clone, Debug)]
struct Recorded {
    name: String,
    span: Option<String>,
    fields: BTreeMap<String, String>,
}

/// Keeps every event with the name of its span.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").replace('"', ""),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> tracing_subscriber::Layer<S> for Recorder
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().push(Recorded {
            name: event.metadata().name().to_owned(),
            span: ctx.event_span(event).map(|span| span.name().to_owned()),
            fields,
        });
    }
}

impl Recorder {
    fn named(&self, name: &str) -> Vec<Recorded> {
        self.0
            .lock()
            .iter()
            .filter(|event| event.name == name)
            .cloned()
            .collect()
    }
}

/// Opens after 2 calls if both failed; 1 s in Open.
fn breaker() -> Arc<Breaker> {
    let config = Config {
        window: WindowKind::CountBased { size: 2 },
        minimum_calls: 2,
        wait_in_open: Millis(1_000),
        ..Config::default()
    };
    Arc::new(Breaker::new(config, TokioClock::new()).unwrap())
}

type Upstream = tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// An upstream that answers with the status in the path (`/503`).
fn upstream() -> Upstream {
    tower::util::BoxCloneSyncService::new(service_fn(|request: Request<Body>| {
        let status = request.uri().path().trim_start_matches('/').parse();
        async move {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::from_u16(status.unwrap_or(200)).unwrap();
            Ok::<_, Infallible>(response)
        }
    }))
}

async fn call<S>(
    service: &mut S,
    path: &str,
    span: &'static str,
) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    let request = Request::get(path).body(Body::empty()).unwrap();
    let span = match span {
        "first failure" => tracing::info_span!("first failure"),
        "second failure" => tracing::info_span!("second failure"),
        _ => tracing::info_span!("rejected call"),
    };
    async { service.ready().await?.call(request).await }
        .instrument(span)
        .await
}

#[tokio::test(start_paused = true)]
async fn a_rejected_call_records_a_span_event_with_the_state_and_the_retry_after() {
    let recorder = Recorder::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let mut service = BreakerLayer::new(breaker()).layer(upstream());
    call(&mut service, "/500", "first failure").await.unwrap();
    call(&mut service, "/503", "second failure").await.unwrap();
    let error = call(&mut service, "/200", "rejected call")
        .await
        .unwrap_err();
    assert!(rejection(&error).is_some(), "the third call is rejected");

    let rejected = recorder.named("breaker.rejected");
    assert_eq!(rejected.len(), 1, "one rejection, one event: {rejected:?}");
    let event = &rejected[0];
    assert_eq!(
        event.span.as_deref(),
        Some("rejected call"),
        "the event is on the rejected call's span"
    );
    assert_eq!(
        event.fields.get("breaker.state").map(String::as_str),
        Some("open")
    );
    assert_eq!(
        event
            .fields
            .get("breaker.retry_after_ms")
            .map(String::as_str),
        Some("1000"),
        "the retry-after in ms: {event:?}"
    );
    assert_eq!(
        event.fields.get("message").map(String::as_str),
        Some("breaker.rejected"),
        "the message names the OpenTelemetry event"
    );
}

#[tokio::test(start_paused = true)]
async fn a_state_transition_records_a_span_event_on_the_call_that_caused_it() {
    let recorder = Recorder::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let breaker = breaker();
    let mut service = BreakerLayer::new(breaker.clone()).layer(upstream());
    call(&mut service, "/500", "first failure").await.unwrap();
    assert!(
        recorder.named("breaker.transition").is_empty(),
        "still closed"
    );
    call(&mut service, "/503", "second failure").await.unwrap();
    assert_eq!(breaker.state(), State::Open);

    let transitions = recorder.named("breaker.transition");
    assert_eq!(transitions.len(), 1, "{transitions:?}");
    let event = &transitions[0];
    assert_eq!(event.span.as_deref(), Some("second failure"));
    assert_eq!(
        event.fields.get("breaker.from").map(String::as_str),
        Some("closed")
    );
    assert_eq!(
        event.fields.get("breaker.to").map(String::as_str),
        Some("open")
    );
    assert!(
        event
            .fields
            .get("breaker.reason")
            .is_some_and(|reason| reason.contains("FailureRateExceeded")),
        "the reason: {event:?}"
    );
}
