//! The orchestrated saga end to end: every failure point, transient faults, lost replies,
//! compensations that keep failing, and crashes at every command with a reopened database.
//!
//! All four services run in one process and talk in-process (their routers are called
//! directly), so tokio's paused clock drives the backoffs: nothing here waits for real.

#![allow(clippy::unwrap_used)]

use lab_saga::order::CrashPlan;
use lab_saga::system::{Options, Place, Seed, System, fresh_dir, order_line};
use saga_core::{Event, OrderStatus, SagaOutcome};

/// Where each scenario makes the saga fail (a business refusal from real data).
#[derive(Clone, Copy, Debug)]
enum FailAt {
    None,
    Payment,
    Inventory,
    Shipping,
}

fn seed(fail_at: FailAt) -> Seed {
    let mut seed = Seed::default();
    match fail_at {
        FailAt::None => {}
        FailAt::Payment => seed.balance = 100,
        FailAt::Inventory => seed.stock = 0,
        FailAt::Shipping => seed.couriers = 0,
    }
    seed
}

fn compensated_steps(system: &System, order_id: &str) -> Vec<usize> {
    let view = system.order.view(order_id).unwrap().unwrap();
    view.log
        .iter()
        .filter_map(|entry| match entry.event {
            Event::CompensationSucceeded { step } => Some(step),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn every_failure_point_ends_consistent_with_reverse_compensations() {
    for (fail_at, outcome, undone) in [
        (FailAt::None, SagaOutcome::Completed, vec![]),
        (FailAt::Payment, SagaOutcome::Compensated, vec![0]),
        (FailAt::Inventory, SagaOutcome::Compensated, vec![1, 0]),
        (FailAt::Shipping, SagaOutcome::Compensated, vec![2, 1, 0]),
    ] {
        let system =
            System::start(&Place::Memory, Some(&seed(fail_at)), Options::default()).unwrap();
        let line = order_line("o-1", 2);
        let got = system.order.run_order(&line).await.unwrap();
        assert_eq!(got, outcome, "{fail_at:?}");
        assert_eq!(compensated_steps(&system, "o-1"), undone, "{fail_at:?}");
        let balances = system.balances("o-1").unwrap();
        assert!(balances.is_consistent(), "{fail_at:?}: {balances:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_and_lost_replies_do_not_charge_twice() {
    let system = System::start(&Place::Memory, Some(&Seed::default()), Options::default()).unwrap();
    system
        .payment
        .faults
        .fail_next
        .store(2, std::sync::atomic::Ordering::SeqCst);
    system
        .inventory
        .faults
        .lose_reply_next
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let line = order_line("o-2", 1);
    assert_eq!(
        system.order.run_order(&line).await.unwrap(),
        SagaOutcome::Completed
    );
    let balances = system.balances("o-2").unwrap();
    assert_eq!(balances.money_captured, line.amount);
    assert_eq!(
        balances.stock_reserved, 1,
        "the lost reply must not reserve twice"
    );
    assert_eq!(balances.inventory["available"], 9);
    assert_eq!(
        system
            .inventory
            .faults
            .executions
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the retry is answered from the idempotency table"
    );
}

#[tokio::test(start_paused = true)]
async fn a_step_that_keeps_timing_out_is_compensated_too() {
    let system = System::start(&Place::Memory, Some(&Seed::default()), Options::default()).unwrap();
    // Every inventory reply is lost: the stock may be reserved, so it must be released.
    system
        .inventory
        .faults
        .lose_reply_next
        .store(1, std::sync::atomic::Ordering::SeqCst);
    system
        .inventory
        .faults
        .fail_next
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let line = order_line("o-3", 1);
    // First try does the work and loses the reply; later tries are answered from the table
    // (200), so to keep the outcome unknown make the next two fail before the table is read.
    system.order.crash_at(CrashPlan {
        before_send: None,
        after_reply: Some(2),
        ..CrashPlan::default()
    });
    assert!(system.order.run_order(&line).await.is_err());
    system
        .inventory
        .faults
        .fail_next
        .store(10, std::sync::atomic::Ordering::SeqCst);
    system.order.crash_at(CrashPlan::default());
    assert_eq!(
        system.order.resume_unfinished().await.unwrap(),
        vec![("o-3".to_owned(), SagaOutcome::Compensated)],
        "inventory is down for ten more tries: the release is retried until it goes through"
    );
    let balances = system.balances("o-3").unwrap();
    assert_eq!(
        balances.stock_reserved, 0,
        "the lost reservation was released"
    );
    assert_eq!(balances.inventory["available"], 10);
    assert!(balances.is_consistent(), "{balances:?}");
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_keeps_failing_leaves_the_order_needing_attention() {
    let system = System::start(
        &Place::Memory,
        Some(&seed(FailAt::Inventory)),
        Options::default(),
    )
    .unwrap();
    // Stop right after the payment was reserved, then take payment down for good.
    system.order.crash_at(CrashPlan {
        before_send: None,
        after_reply: Some(1),
        ..CrashPlan::default()
    });
    let line = order_line("o-4", 1);
    assert!(system.order.run_order(&line).await.is_err());
    system.order.crash_at(CrashPlan::default());
    system
        .payment
        .faults
        .fail_next
        .store(u32::MAX, std::sync::atomic::Ordering::SeqCst);
    let outcomes = system.order.resume_unfinished().await.unwrap();
    assert_eq!(
        outcomes,
        vec![("o-4".to_owned(), SagaOutcome::NeedsAttention)]
    );
    let balances = system.balances("o-4").unwrap();
    assert_eq!(balances.order_status, OrderStatus::NeedsAttention);
    assert_eq!(
        balances.money_held, line.amount,
        "the refund never went through"
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("saga-lab-{name}-{}", std::process::id()));
    fresh_dir(&dir).unwrap();
    dir
}

// ANCHOR: crash_recovery
#[tokio::test(start_paused = true)]
async fn a_crash_at_any_command_resumes_and_finishes_exactly_once() {
    for fail_at in [FailAt::None, FailAt::Inventory, FailAt::Shipping] {
        // Count the commands of an uninterrupted run, then crash at each one in turn.
        let reference =
            System::start(&Place::Memory, Some(&seed(fail_at)), Options::default()).unwrap();
        let expected = reference
            .order
            .run_order(&order_line("o-5", 3))
            .await
            .unwrap();
        let commands = reference
            .order
            .view("o-5")
            .unwrap()
            .unwrap()
            .log
            .iter()
            .filter(|entry| {
                matches!(
                    entry.event,
                    Event::StepStarted { .. } | Event::CompensationStarted { .. }
                )
            })
            .count();
        for n in 0..commands {
            for plan in [
                CrashPlan {
                    before_send: Some(n),
                    after_reply: None,
                    ..CrashPlan::default()
                },
                CrashPlan {
                    before_send: None,
                    after_reply: Some(n),
                    ..CrashPlan::default()
                },
            ] {
                let dir = temp_dir(&format!("crash-{n}"));
                let place = Place::Dir(dir.clone());
                {
                    let system =
                        System::start(&place, Some(&seed(fail_at)), Options::default()).unwrap();
                    system.order.crash_at(plan);
                    let crashed = system.order.run_order(&order_line("o-5", 3)).await;
                    assert!(crashed.is_err(), "{fail_at:?} {plan:?} should crash");
                } // every connection closed: the "process" is gone
                let restarted = System::start(&place, None, Options::default()).unwrap();
                let resumed = restarted.order.resume_unfinished().await.unwrap();
                assert_eq!(
                    resumed,
                    vec![("o-5".to_owned(), expected)],
                    "{fail_at:?} {plan:?}"
                );
                let balances = restarted.balances("o-5").unwrap();
                assert!(
                    balances.is_consistent(),
                    "{fail_at:?} {plan:?}: {balances:?}"
                );
                if expected == SagaOutcome::Completed {
                    assert_eq!(balances.money_captured, 7_500, "charged exactly once");
                    assert_eq!(balances.inventory["available"], 7, "reserved exactly once");
                } else {
                    assert_eq!(
                        balances.payment["balance"], 100_000,
                        "refunded exactly once"
                    );
                }
                std::fs::remove_dir_all(&dir).ok();
            }
        }
    }
}
// ANCHOR_END: crash_recovery

#[tokio::test(start_paused = true)]
async fn many_orders_conserve_money_and_stock() {
    let system = System::start(
        &Place::Memory,
        Some(&Seed {
            balance: 40_000,
            stock: 9,
            couriers: 4,
        }),
        Options::default(),
    )
    .unwrap();
    for i in 0..12 {
        system
            .order
            .run_order(&order_line(&format!("o-{i:02}"), 1 + i % 3))
            .await
            .unwrap();
    }
    let mut held = 0;
    let mut reserved = 0;
    for i in 0..12 {
        let balances = system.balances(&format!("o-{i:02}")).unwrap();
        assert!(balances.is_consistent(), "{balances:?}");
        held += balances.money_held + balances.money_captured;
        reserved += balances.stock_reserved;
    }
    let totals = system.balances("o-00").unwrap();
    assert_eq!(totals.payment["balance"].as_i64().unwrap() + held, 40_000);
    assert_eq!(
        totals.inventory["available"].as_i64().unwrap() + reserved,
        9
    );
    assert_eq!(system.order.count_by_status(OrderStatus::Pending), 0);
}

/// The saga's command for `step`'s action, try 1, as the orchestrator sends it.
fn action_command(step: usize) -> saga_core::Command {
    let definition = saga_core::SagaDefinition::order_fulfilment();
    saga_core::Command {
        saga_id: "o-7".to_owned(),
        step,
        step_name: definition.steps[step].name.clone(),
        participant: definition.steps[step].participant.clone(),
        operation: definition.steps[step].action.clone(),
        kind: saga_core::CommandKind::Action,
        attempt: 1,
        idempotency_key: definition.idempotency_key("o-7", step, saga_core::CommandKind::Action),
    }
}

#[test]
fn a_408_409_or_429_reply_is_retried_not_taken_as_a_final_refusal() {
    use lab_saga::line::Reply;
    use lab_saga::order::input_for;
    use saga_core::{FailureKind, Input};
    let command = action_command(1);
    let kind_of = |status: u16| match input_for(
        &command,
        &Reply {
            status,
            body: serde_json::json!({ "detail": format!("status {status}") }),
        },
    ) {
        Input::StepFailed { kind, .. } => kind,
        other => panic!("{status}: expected a failure, got {other:?}"),
    };
    for status in [408, 409, 425, 429, 500, 502, 503, 504] {
        assert_eq!(kind_of(status), FailureKind::Retryable, "{status}");
    }
    for status in [400, 402, 403, 404, 410, 422] {
        assert_eq!(kind_of(status), FailureKind::Business, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_approved_order_has_its_payment_captured_not_left_held() {
    let system = System::start(&Place::Memory, Some(&Seed::default()), Options::default()).unwrap();
    let line = order_line("o-8", 2);
    assert_eq!(
        system.order.run_order(&line).await.unwrap(),
        SagaOutcome::Completed
    );
    let hold: (String, i64) = system
        .payment
        .db()
        .lock()
        .query_row(
            "SELECT status, amount FROM holds WHERE order_id = 'o-8'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(hold, ("CAPTURED".to_owned(), line.amount));
    let balances = system.balances("o-8").unwrap();
    assert_eq!(balances.money_held, 0, "captured money is no longer held");
    assert_eq!(balances.payment["balance"], 100_000 - line.amount);
    assert!(balances.is_consistent(), "{balances:?}");
}

/// How many sagas the outage test runs at once.
const OUTAGE_SAGAS: usize = 1_000;

// ANCHOR: outage
#[tokio::test(start_paused = true)]
async fn an_inventory_outage_under_a_thousand_sagas_ends_every_saga_approved_or_cancelled() {
    const COURIERS: i64 = 600;
    const STOCK: i64 = 2_000;
    let balance = 2_500 * OUTAGE_SAGAS as i64;
    let system = System::start(
        &Place::Memory,
        Some(&Seed {
            balance,
            stock: STOCK,
            couriers: COURIERS,
        }),
        Options::default(),
    )
    .unwrap();
    // A thousand sagas start over 5 s, one every 5 ms; from 1 s to 5 s inventory answers
    // nothing but 503s, so hundreds are in flight when it goes down and when it comes back.
    let mut sagas = Vec::new();
    for i in 0..OUTAGE_SAGAS {
        let order = std::sync::Arc::clone(&system.order);
        sagas.push(tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5 * i as u64)).await;
            order.run_order(&order_line(&format!("o-{i:04}"), 1)).await
        }));
    }
    let inventory = std::sync::Arc::clone(&system.inventory);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    inventory
        .faults
        .fail_next
        .store(u32::MAX, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    inventory
        .faults
        .fail_next
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let mut outcomes = std::collections::BTreeMap::new();
    for saga in sagas {
        let outcome = saga.await.unwrap().unwrap();
        *outcomes.entry(format!("{outcome:?}")).or_insert(0) += 1;
    }
    assert_eq!(
        outcomes.get("NeedsAttention"),
        None,
        "every saga ends APPROVED or CANCELLED: {outcomes:?}"
    );
    let (mut approved, mut charged) = (0, 0);
    for i in 0..OUTAGE_SAGAS {
        let id = format!("o-{i:04}");
        let balances = system.balances(&id).unwrap();
        assert!(balances.is_consistent(), "{id}: {balances:?}");
        if balances.order_status == OrderStatus::Approved {
            approved += 1;
            charged += 2_500;
        }
    }
    let totals = system.balances("o-0000").unwrap();
    assert_eq!(totals.payment["balance"], balance - charged, "money");
    assert_eq!(totals.payment["held"], 0, "no money left held");
    assert_eq!(totals.inventory["available"], STOCK - approved, "stock");
    assert_eq!(totals.inventory["reserved"], approved, "stock");
    assert_eq!(
        totals.shipping["free_slots"],
        COURIERS - approved,
        "couriers"
    );
    assert!(approved > 0 && approved <= COURIERS, "{outcomes:?}");
}
// ANCHOR_END: outage

/// A saga stopped in NEEDS_ATTENTION: stock is short (so it compensates) and payment stays
/// down for the whole compensation window, so the refund never goes through.
async fn saga_needing_attention(system: &System, order_id: &str) {
    system.order.crash_at(CrashPlan {
        after_reply: Some(1),
        ..CrashPlan::default()
    });
    assert!(
        system
            .order
            .run_order(&order_line(order_id, 1))
            .await
            .is_err()
    );
    system.order.crash_at(CrashPlan::default());
    system
        .payment
        .faults
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        system.order.resume_unfinished().await.unwrap(),
        vec![(order_id.to_owned(), SagaOutcome::NeedsAttention)]
    );
}

/// Waits (on tokio's paused clock, so without real time passing) until the order's saga
/// is over, and returns its status.
async fn final_status(system: &System, order_id: &str) -> OrderStatus {
    for _ in 0..10_000 {
        let status = system.order.view(order_id).unwrap().unwrap().status;
        if !status.is_locked() {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the saga of {order_id} did not end");
}

async fn http(
    router: &axum::Router,
    method: &str,
    path: &str,
) -> (axum::http::StatusCode, String, serde_json::Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or_default(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_saga_needing_attention_is_listed_and_an_operator_resumes_it() {
    let system = System::start(
        &Place::Memory,
        Some(&seed(FailAt::Inventory)),
        Options::default(),
    )
    .unwrap();
    saga_needing_attention(&system, "o-10").await;
    let router = lab_saga::order::router(std::sync::Arc::clone(&system.order));
    let (status, _, list) = http(&router, "GET", "/sagas?status=NEEDS_ATTENTION").await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["order_id"], "o-10");
    assert_eq!(list[0]["step"], "reserve_payment");
    assert_eq!(list[0]["participant"], "payment");
    assert_eq!(list[0]["kind"], "compensation");
    assert!(
        list[0]["last_error"].as_str().unwrap().contains("down"),
        "{list}"
    );
    let (status, content_type, problem) = http(&router, "GET", "/sagas?status=LOST").await;
    assert_eq!(
        (status, content_type.as_str()),
        (
            axum::http::StatusCode::BAD_REQUEST,
            "application/problem+json"
        ),
        "{problem}"
    );

    // Payment is back; the operator resumes the saga.
    system
        .payment
        .faults
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (status, _, _) = http(&router, "POST", "/sagas/o-10/resume").await;
    assert_eq!(status, axum::http::StatusCode::ACCEPTED);
    assert_eq!(final_status(&system, "o-10").await, OrderStatus::Cancelled);
    let balances = system.balances("o-10").unwrap();
    assert_eq!(balances.money_held, 0, "refunded");
    assert_eq!(balances.payment["balance"], 100_000);
    assert!(balances.is_consistent(), "{balances:?}");
    let view = system.order.view("o-10").unwrap().unwrap();
    assert!(view.log.iter().any(|entry| entry.event == Event::Resumed));

    // Over now: a second resume says so, an unknown order is a 404, both problem+json.
    let (status, content_type, problem) = http(&router, "POST", "/sagas/o-10/resume").await;
    assert_eq!(status, axum::http::StatusCode::CONFLICT, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert!(problem["detail"].as_str().unwrap().contains("CANCELLED"));
    let (status, _, _) = http(&router, "POST", "/sagas/nope/resume").await;
    assert_eq!(status, axum::http::StatusCode::NOT_FOUND);
    let (_, _, list) = http(&router, "GET", "/sagas?status=NEEDS_ATTENTION").await;
    assert_eq!(list, serde_json::json!([]));
}

#[tokio::test(start_paused = true)]
async fn a_saga_needing_attention_resumes_by_itself_once_its_participant_is_back() {
    let system = System::start(
        &Place::Memory,
        Some(&seed(FailAt::Inventory)),
        Options::default(),
    )
    .unwrap();
    saga_needing_attention(&system, "o-11").await;
    let watch = system
        .order
        .spawn_attention_watch(std::time::Duration::from_secs(5));
    // Still down: the watch leaves it alone.
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    assert_eq!(
        system.order.view("o-11").unwrap().unwrap().status,
        OrderStatus::NeedsAttention
    );
    system
        .payment
        .faults
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let status = final_status(&system, "o-11").await;
    watch.abort();
    assert_eq!(status, OrderStatus::Cancelled);
    assert!(system.balances("o-11").unwrap().is_consistent());
}

#[tokio::test(start_paused = true)]
async fn a_restart_resumes_a_saga_that_needed_attention() {
    let dir = temp_dir("attention-restart");
    let place = Place::Dir(dir.clone());
    {
        let system =
            System::start(&place, Some(&seed(FailAt::Inventory)), Options::default()).unwrap();
        saga_needing_attention(&system, "o-12").await;
    } // the process is gone; payment comes back with the restart
    let restarted = System::start(&place, None, Options::default()).unwrap();
    assert_eq!(
        restarted.order.resume_unfinished().await.unwrap(),
        vec![("o-12".to_owned(), SagaOutcome::Compensated)]
    );
    assert!(restarted.balances("o-12").unwrap().is_consistent());
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(start_paused = true)]
async fn crash_at_a_step_crashes_after_that_step_however_many_commands_came_first() {
    let system = System::start(&Place::Memory, Some(&Seed::default()), Options::default()).unwrap();
    // A retried payment makes reserve_inventory the fourth command, not the third.
    system
        .payment
        .faults
        .fail_next
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let plan = CrashPlan::for_step(system.order.definition(), "reserve_inventory", None).unwrap();
    system.order.crash_at(plan);
    let crashed = system.order.run_order(&order_line("o-13", 1)).await;
    let message = crashed.unwrap_err().to_string();
    assert!(
        message.contains("after reserve_inventory reserve replied"),
        "{message}"
    );
    // A step the scenario never reaches is refused, and so is a name that is no step.
    let refused = CrashPlan::for_step(
        system.order.definition(),
        "reserve_inventory",
        Some("payment"),
    )
    .unwrap_err();
    assert!(refused.contains("never runs"), "{refused}");
    let unknown = CrashPlan::for_step(system.order.definition(), "ship", None).unwrap_err();
    assert!(unknown.contains("schedule_shipping"), "{unknown}");
}

#[tokio::test(start_paused = true)]
async fn the_saga_log_can_be_synced_on_every_commit() {
    use lab_saga::order::LogSync;
    let dir = temp_dir("log-sync");
    let system = System::start(
        &Place::Dir(dir.clone()),
        Some(&Seed::default()),
        Options::default(),
    )
    .unwrap();
    assert_eq!(system.order.log_sync().unwrap(), LogSync::Normal);
    system.order.set_log_sync(LogSync::Full).unwrap();
    assert_eq!(system.order.log_sync().unwrap(), LogSync::Full);
    assert_eq!(
        system
            .order
            .run_order(&order_line("o-14", 1))
            .await
            .unwrap(),
        SagaOutcome::Completed
    );
    drop(system);
    std::fs::remove_dir_all(&dir).ok();
}
