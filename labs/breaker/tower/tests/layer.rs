//! The tower layer: what it counts, what it refuses, and that a dropped call gives its
//! HalfOpen trial slot back, so the breaker can never get stuck in HalfOpen.
//!
//! Every test runs on tokio's paused clock: `tokio::time::advance` moves the breaker's
//! clock (a `TokioClock`) and every timeout together, with no real waiting.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use breaker_core::{Config, Millis, State, WindowKind};
use breaker_tower::Breaker;
use breaker_tower::clock::TokioClock;
use breaker_tower::layer::{BreakerLayer, rejection};
use http::{Request, Response, StatusCode};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// Opens after 2 calls if both failed; 2 trial calls; 1 s in Open.
fn breaker() -> Arc<Breaker> {
    let config = Config {
        window: WindowKind::CountBased { size: 2 },
        minimum_calls: 2,
        permitted_calls_in_half_open: 2,
        wait_in_open: Millis(1_000),
        ..Config::default()
    };
    Arc::new(Breaker::new(config, TokioClock::new()).unwrap())
}

type Upstream = tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// An upstream that answers with the status in the path (`/503`), hangs on `/hang`, and
/// counts the requests that reached it.
fn upstream(hits: Arc<AtomicUsize>) -> Upstream {
    tower::util::BoxCloneSyncService::new(service_fn(move |request: Request<Body>| {
        hits.fetch_add(1, Ordering::SeqCst);
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let answer: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
            if path == "hang" {
                std::future::pending::<()>().await;
            }
            let status = path.parse().unwrap_or(200);
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(response)
        });
        answer
    }))
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn call<S>(service: &mut S, path: &str) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    service.ready().await?.call(get(path)).await
}

#[tokio::test(start_paused = true)]
async fn server_errors_open_the_breaker_and_rejected_calls_never_reach_the_upstream() {
    let hits = Arc::new(AtomicUsize::new(0));
    let breaker = breaker();
    let mut service = BreakerLayer::new(breaker.clone()).layer(upstream(hits.clone()));
    assert_eq!(call(&mut service, "/500").await.unwrap().status(), 500);
    assert_eq!(call(&mut service, "/503").await.unwrap().status(), 503);
    assert_eq!(breaker.state(), State::Open);

    let error = call(&mut service, "/200").await.unwrap_err();
    let rejected = rejection(&error).expect("a rejection, not an upstream error");
    assert_eq!(rejected.state, State::Open);
    assert_eq!(rejected.retry_after, Some(Millis(1_000)));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "the third call was never sent"
    );
}

#[tokio::test(start_paused = true)]
async fn client_errors_do_not_count_against_the_upstream() {
    let breaker = breaker();
    let mut service = BreakerLayer::new(breaker.clone()).layer(upstream(Arc::default()));
    for _ in 0..10 {
        assert_eq!(call(&mut service, "/404").await.unwrap().status(), 404);
        assert_eq!(call(&mut service, "/422").await.unwrap().status(), 422);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_inside_the_breaker_counts_as_a_failure() {
    let breaker = breaker();
    let mut service = ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker.clone()))
        .timeout(Duration::from_millis(100))
        .service(upstream(Arc::default()));
    for _ in 0..2 {
        let error = call(&mut service, "/hang").await.unwrap_err();
        assert!(error.is::<tower::timeout::error::Elapsed>(), "{error}");
    }
    assert_eq!(breaker.state(), State::Open, "a hanging upstream opens it");
}

#[tokio::test(start_paused = true)]
async fn the_classifier_is_pluggable() {
    let breaker = breaker();
    // A rule of our own: 429 Too Many Requests is the upstream's trouble too.
    let too_many_fails = |result: &Result<Response<Body>, Infallible>| match result {
        Ok(r) if r.status() == 429 || r.status().is_server_error() => {
            breaker_core::Outcome::Failure
        }
        _ => breaker_core::Outcome::Success,
    };
    let mut service = BreakerLayer::new(breaker.clone())
        .with_classifier(too_many_fails)
        .layer(upstream(Arc::default()));
    call(&mut service, "/429").await.unwrap();
    call(&mut service, "/429").await.unwrap();
    assert_eq!(breaker.state(), State::Open);
}

// ANCHOR: never_stuck
#[tokio::test(start_paused = true)]
async fn dropped_trial_calls_release_their_slot_so_half_open_never_sticks() {
    let breaker = breaker();
    let service = BreakerLayer::new(breaker.clone()).layer(upstream(Arc::default()));
    let mut open_it = service.clone();
    call(&mut open_it, "/500").await.unwrap();
    call(&mut open_it, "/500").await.unwrap();
    tokio::time::advance(Duration::from_millis(1_000)).await;
    assert_eq!(breaker.state(), State::HalfOpen);

    // Both trial slots go to calls that hang; the callers give up after 100 ms, which
    // drops the breaker's response futures mid-flight.
    for _ in 0..2 {
        let trial = service.clone().oneshot(get("/hang"));
        let gave_up = tokio::time::timeout(Duration::from_millis(100), trial).await;
        assert!(gave_up.is_err(), "the caller timed out");
    }

    // The slots came back: two new trials are admitted, succeed, and close the breaker.
    // Had the dropped futures kept their slots, every call from here on would be
    // rejected and the breaker would sit in HalfOpen forever.
    assert_eq!(breaker.state(), State::HalfOpen);
    let mut after = service.clone();
    assert_eq!(call(&mut after, "/200").await.unwrap().status(), 200);
    assert_eq!(call(&mut after, "/200").await.unwrap().status(), 200);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().released, 2);
}
// ANCHOR_END: never_stuck

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_its_trial_calls_while_they_run() {
    let breaker = breaker();
    let service = BreakerLayer::new(breaker.clone()).layer(upstream(Arc::default()));
    let mut open_it = service.clone();
    call(&mut open_it, "/500").await.unwrap();
    call(&mut open_it, "/500").await.unwrap();
    tokio::time::advance(Duration::from_millis(1_000)).await;

    let in_flight: Vec<_> = (0..2)
        .map(|_| tokio::spawn(service.clone().oneshot(get("/hang"))))
        .collect();
    tokio::task::yield_now().await;
    let error = service.clone().oneshot(get("/200")).await.unwrap_err();
    let rejected = rejection(&error).unwrap();
    assert_eq!(
        rejected.state,
        State::HalfOpen,
        "both trial slots are taken"
    );
    for task in in_flight {
        task.abort();
    }
}
