//! The choreographed saga end to end: every failure point, transient failures, duplicate
//! deliveries and dead letters.
//!
//! With `NATS_URL` set (as `cargo xtask test` does after starting `nats-server -js`) the
//! events travel through NATS JetStream, on the lab's stream with subjects and consumers of
//! their own per test; otherwise through the in-process bus. Each test prints which. Nothing
//! asserts on time: `settle` polls the order's status and a test fails only if the saga never
//! ends.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use lab_saga::bus::{Bus, Message, NatsSettings};
use lab_saga::choreography::{self, Choreography, RetryPolicy, Settings};
use lab_saga::system::{Options, Place, Seed, System, order_line};
use saga_core::OrderStatus;

/// Enough 5 ms checks for a slow CI machine: a saga that has not ended by then never will.
const MAX_CHECKS: u32 = 6_000;

async fn bus(test: &str) -> Bus {
    match std::env::var("NATS_URL") {
        Ok(url) if !url.is_empty() => {
            let run = format!("{test}-{}-{}", std::process::id(), fastish_id());
            let bus = Bus::nats(&NatsSettings::lab(&url), &run)
                .await
                .expect("NATS_URL is set but NATS is not reachable");
            println!("{test}: using NATS JetStream at {url}");
            bus
        }
        _ => {
            println!("{test}: using the in-process bus (set NATS_URL to use NATS JetStream)");
            Bus::in_process()
        }
    }
}

fn fastish_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

/// Retries over a fraction of a second, so a message that keeps failing is parked quickly.
fn short_retries() -> RetryPolicy {
    RetryPolicy {
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        give_up_after: Duration::from_millis(300),
        redeliver_after: Duration::from_millis(100),
    }
}

async fn start(test: &str, seed: &Seed) -> (System, Choreography) {
    start_with(test, seed, RetryPolicy::default()).await
}

async fn start_with(test: &str, seed: &Seed, retry: RetryPolicy) -> (System, Choreography) {
    let system = System::start(
        &Place::Memory,
        Some(seed),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    let choreography = Choreography::start_with(
        &system,
        bus(test).await,
        Settings {
            retry,
            ..Settings::default()
        },
    )
    .await
    .unwrap();
    (system, choreography)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_point_ends_consistent() {
    let cases = [
        ("none", Seed::default(), OrderStatus::Approved),
        (
            "payment",
            Seed {
                balance: 100,
                ..Seed::default()
            },
            OrderStatus::Cancelled,
        ),
        (
            "inventory",
            Seed {
                stock: 0,
                ..Seed::default()
            },
            OrderStatus::Cancelled,
        ),
        (
            "shipping",
            Seed {
                couriers: 0,
                ..Seed::default()
            },
            OrderStatus::Cancelled,
        ),
    ];
    for (fail_at, seed, expected) in cases {
        let (system, choreography) = start(&format!("fail-at-{fail_at}"), &seed).await;
        choreography.place(&order_line("c-1", 2)).unwrap();
        assert_eq!(
            choreography.settle("c-1", MAX_CHECKS).await,
            expected,
            "fail at {fail_at}"
        );
        let balances = system.balances("c-1").unwrap();
        assert!(balances.is_consistent(), "fail at {fail_at}: {balances:?}");
        assert_eq!(
            balances.payment["balance"].as_i64().unwrap()
                + balances.money_held
                + balances.money_captured,
            seed.balance,
            "money is conserved"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_by_the_consumer() {
    let (system, choreography) = start("transient", &Seed::default()).await;
    system.payment.faults.fail_next.store(2, Ordering::SeqCst);
    system
        .shipping
        .faults
        .lose_reply_next
        .store(1, Ordering::SeqCst);
    choreography.place(&order_line("c-2", 1)).unwrap();
    assert_eq!(
        choreography.settle("c-2", MAX_CHECKS).await,
        OrderStatus::Approved
    );
    assert!(system.balances("c-2").unwrap().is_consistent());
    assert_eq!(system.shipping.faults.executions.load(Ordering::SeqCst), 1);
    assert!(choreography.dead_letters().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivery_has_no_second_effect() {
    let (system, choreography) = start("duplicate", &Seed::default()).await;
    let line = order_line("c-3", 1);
    choreography.place(&line).unwrap();
    assert_eq!(
        choreography.settle("c-3", MAX_CHECKS).await,
        OrderStatus::Approved
    );
    // Deliver OrderCreated and PaymentReserved again, as an at-least-once bus may.
    for event in ["OrderCreated", "PaymentReserved"] {
        choreography
            .bus()
            .publish(Message {
                id: format!("c-3:{event}:redelivered"),
                event: event.to_owned(),
                payload: serde_json::to_vec(&line).unwrap(),
                trace: Default::default(),
            })
            .await
            .unwrap();
    }
    // A later order flows through the same consumers, so once it settles the duplicates
    // (published before it) have been handled.
    choreography.place(&order_line("c-4", 1)).unwrap();
    assert_eq!(
        choreography.settle("c-4", MAX_CHECKS).await,
        OrderStatus::Approved
    );
    let balances = system.balances("c-3").unwrap();
    assert_eq!(balances.money_captured, line.amount, "charged once");
    assert_eq!(balances.stock_reserved, 1, "reserved once");
    assert_eq!(
        system.payment.faults.executions.load(Ordering::SeqCst),
        4,
        "a reserve and a capture per order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_goes_to_the_dead_letter_table() {
    let (system, choreography) = start_with("dead-letter", &Seed::default(), short_retries()).await;
    system
        .payment
        .faults
        .fail_next
        .store(u32::MAX, Ordering::SeqCst);
    choreography.place(&order_line("c-5", 1)).unwrap();
    let mut letters = Vec::new();
    for _ in 0..MAX_CHECKS {
        letters = choreography.dead_letters();
        if !letters.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0, "payment");
    assert_eq!(letters[0].1, "c-5:OrderCreated");
    let balances = system.balances("c-5").unwrap();
    assert_eq!(
        balances.order_status,
        OrderStatus::Pending,
        "locked until an operator acts"
    );
    assert_eq!(balances.money_held, 0);
}

async fn wait_for_dead_letter(choreography: &Choreography) -> Vec<(String, String, String)> {
    for _ in 0..MAX_CHECKS {
        let letters = choreography.dead_letters();
        if !letters.is_empty() {
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no dead letter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_redriven_completes_the_saga() {
    let (system, choreography) = start_with("redrive", &Seed::default(), short_retries()).await;
    system
        .payment
        .faults
        .fail_next
        .store(u32::MAX, Ordering::SeqCst);
    choreography.place(&order_line("c-6", 1)).unwrap();
    let letters = wait_for_dead_letter(&choreography).await;
    assert_eq!(letters[0].1, "c-6:OrderCreated", "{letters:?}");
    // The operator fixes the cause, then re-drives the parked message.
    system.payment.faults.fail_next.store(0, Ordering::SeqCst);
    choreography
        .redrive("payment", "c-6:OrderCreated")
        .await
        .unwrap();
    assert_eq!(
        choreography.settle("c-6", MAX_CHECKS).await,
        OrderStatus::Approved
    );
    assert!(system.balances("c-6").unwrap().is_consistent());
    assert!(
        choreography.dead_letters().is_empty(),
        "re-driven, not parked"
    );
    assert_eq!(
        system.payment.faults.executions.load(Ordering::SeqCst),
        2,
        "one reserve (re-driven, not repeated) and one capture"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_still_fails_stays_parked() {
    let (system, choreography) =
        start_with("redrive-fails", &Seed::default(), short_retries()).await;
    system
        .payment
        .faults
        .fail_next
        .store(u32::MAX, Ordering::SeqCst);
    choreography.place(&order_line("c-7", 1)).unwrap();
    wait_for_dead_letter(&choreography).await;
    let error = choreography
        .redrive("payment", "c-7:OrderCreated")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("still fails"), "{error}");
    assert_eq!(choreography.dead_letters().len(), 1);
    assert!(matches!(
        choreography.redrive("payment", "nothing-here").await,
        Err(choreography::RedriveError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_without_a_nats_msg_id_are_not_collapsed_into_one() {
    let Ok(url) = std::env::var("NATS_URL") else {
        println!("messages without Nats-Msg-Id: skipped (set NATS_URL to run it against NATS)");
        return;
    };
    let (system, choreography) = start("no-msg-id", &Seed::default()).await;
    // Another publisher, not the lab's relay: it sends no Nats-Msg-Id header.
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let subject = choreography.bus().subject("OrderCreated").unwrap();
    for order_id in ["raw-1", "raw-2"] {
        let payload = serde_json::to_vec(&order_line(order_id, 1)).unwrap();
        jetstream
            .publish(subject.clone(), payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // No order rows exist for these, so the saga runs through the participants only: wait
    // until payment has captured both (its last reaction, after shipping scheduled them).
    let captured = |id: &str| system.balances(id).unwrap().money_captured > 0;
    for _ in 0..MAX_CHECKS {
        if captured("raw-1") && captured("raw-2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(captured("raw-1"), "the first message was handled");
    assert!(
        captured("raw-2"),
        "the second message without an id is a different message, not a redelivery"
    );
    assert_eq!(
        system.payment.faults.executions.load(Ordering::SeqCst),
        4,
        "a reserve and a capture for each"
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_that_is_not_an_order_line_is_dead_lettered_at_once_not_retried() {
    // In-process, on the paused clock: a retry would cost no real time, so count the tries.
    let system = System::start(
        &Place::Memory,
        Some(&Seed::default()),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    let choreography = Choreography::start(&system, Bus::in_process(), None)
        .await
        .unwrap();
    choreography
        .bus()
        .publish(Message {
            id: "garbage-1".to_owned(),
            event: "OrderCreated".to_owned(),
            payload: b"not json".to_vec(),
            trace: Default::default(),
        })
        .await
        .unwrap();
    let payment = choreography::Service::participant(&system.payment);
    let mut letters = Vec::new();
    for _ in 0..MAX_CHECKS {
        letters = choreography::dead_letters_of(&payment).unwrap();
        if !letters.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].message_id, "garbage-1");
    assert_eq!(
        letters[0].attempts, 1,
        "a message that can never be read is parked at once: {letters:?}"
    );
    assert!(
        letters[0].error.contains("not an order line"),
        "{letters:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_and_redriven_over_http() {
    use tower::ServiceExt;
    let (system, choreography) =
        start_with("redrive-http", &Seed::default(), short_retries()).await;
    system
        .payment
        .faults
        .fail_next
        .store(u32::MAX, Ordering::SeqCst);
    choreography.place(&order_line("c-8", 1)).unwrap();
    wait_for_dead_letter(&choreography).await;
    system.payment.faults.fail_next.store(0, Ordering::SeqCst);
    let choreography = std::sync::Arc::new(choreography);
    let router = choreography::order_router(std::sync::Arc::clone(&choreography));
    let call = |method: &str, uri: &str| {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let listed = router
        .clone()
        .oneshot(call("GET", "/dead-letters"))
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let body = axum::body::to_bytes(listed.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("c-8:OrderCreated"),
        "{body:?}"
    );
    let redriven = router
        .clone()
        .oneshot(call("POST", "/dead-letters/c-8:OrderCreated/redrive"))
        .await
        .unwrap();
    assert_eq!(redriven.status(), 200);
    assert_eq!(
        choreography.settle("c-8", MAX_CHECKS).await,
        OrderStatus::Approved
    );
    let again = router
        .oneshot(call("POST", "/dead-letters/c-8:OrderCreated/redrive"))
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "nothing parked any more");
    assert_eq!(again.headers()["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_choreographed_order_has_its_payment_captured_not_held() {
    let (system, choreography) = start("capture", &Seed::default()).await;
    let line = order_line("c-9", 2);
    choreography.place(&line).unwrap();
    assert_eq!(
        choreography.settle("c-9", MAX_CHECKS).await,
        OrderStatus::Approved
    );
    let balances = system.balances("c-9").unwrap();
    assert_eq!(
        (balances.money_held, balances.money_captured),
        (0, line.amount),
        "after the pivot the held money is taken for good: {balances:?}"
    );
    assert!(balances.is_consistent(), "{balances:?}");
    assert!(choreography.dead_letters().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mispriced_choreographed_order_is_refused_with_a_422_naming_the_price() {
    use tower::ServiceExt;
    let (system, choreography) = start("mispriced", &Seed::default()).await;
    let line = lab_saga::line::OrderLine {
        amount: 1,
        ..order_line("c-10", 2)
    };
    let problem = choreography.place(&line).unwrap_err();
    assert_eq!(problem.status, 422, "{problem:?}");
    assert!(
        problem.detail.contains("5000 cents (2500 each)"),
        "the detail names the price: {problem:?}"
    );
    assert!(
        system.order.view("c-10").unwrap().is_none(),
        "nothing placed"
    );
    // The same over HTTP, as problem+json.
    let router = choreography::order_router(std::sync::Arc::new(choreography));
    let request = axum::http::Request::post("/orders")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(&line).unwrap()))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("2500 each"),
        "{body:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_capture_stops_the_order_for_an_operator_instead_of_approving_it() {
    let system = System::start(
        &Place::Memory,
        Some(&Seed::default()),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    // A PENDING order whose OrderCreated never went out: payment holds nothing for it.
    let line = order_line("c-11", 1);
    choreography::place_in(system.order.db(), &line).unwrap();
    system
        .order
        .db()
        .lock()
        .execute("DELETE FROM outbox", [])
        .unwrap();
    let choreography =
        Choreography::start_with(&system, bus("capture-refused").await, Settings::default())
            .await
            .unwrap();
    // Shipping is scheduled (an event out of nowhere): there is no hold to capture.
    choreography
        .bus()
        .publish(Message {
            id: "c-11:ShippingScheduled".to_owned(),
            event: "ShippingScheduled".to_owned(),
            payload: serde_json::to_vec(&line).unwrap(),
            trace: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(
        choreography.settle("c-11", MAX_CHECKS).await,
        OrderStatus::NeedsAttention,
        "after the pivot a refusal cannot be compensated: an operator decides"
    );
    let balances = system.balances("c-11").unwrap();
    assert_eq!((balances.money_held, balances.money_captured), (0, 0));
    assert!(choreography.dead_letters().is_empty());
}
