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
    assert_eq!(balances.money_held, line.amount);
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
        vec![("o-3".to_owned(), SagaOutcome::NeedsAttention)],
        "inventory stays down, so releasing it fails too and the saga asks for a human"
    );
    system
        .inventory
        .faults
        .fail_next
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let view = system.order.view("o-3").unwrap().unwrap();
    assert_eq!(view.status, OrderStatus::NeedsAttention);
    assert!(view.status.is_locked());
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
                },
                CrashPlan {
                    before_send: None,
                    after_reply: Some(n),
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
                    assert_eq!(balances.money_held, 7_500, "charged exactly once");
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
        held += balances.money_held;
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
