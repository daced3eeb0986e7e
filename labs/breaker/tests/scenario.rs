//! The scripted scenario, in-process and on tokio's paused clock: a deterministic story.
//!
//! The payment router is the transport (tower `oneshot` on the axum `Router`), so no
//! socket is opened, and `start_paused` lets fifteen seconds of scenario run instantly.
//! The snapshot pins the narrated timeline of the default script: a change in the
//! breaker's behaviour shows up as a readable diff of the story.
#![allow(clippy::unwrap_used)]

use lab_breaker::narration::{self, Palette};
use lab_breaker::payment::{self, PaymentState};
use lab_breaker::scenario::{self, RunReport, Scenario};

async fn run(with_breaker: bool) -> RunReport {
    let scenario = Scenario::default_script(7);
    let breaker = with_breaker.then(|| scenario.new_breaker().unwrap());
    let router = payment::router(PaymentState::new(scenario.seed));
    scenario::run(router, &scenario, breaker, |_| {})
        .await
        .unwrap()
}

fn timeline(report: &RunReport) -> String {
    let mut text = narration::header(Palette::PLAIN);
    text.push('\n');
    for row in &report.rows {
        text.push_str(&narration::render_row(row, Palette::PLAIN));
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&narration::render_summary(
        "Summary, with a breaker",
        &report.summary,
        Palette::PLAIN,
    ));
    text
}

#[tokio::test(start_paused = true)]
async fn default_scenario_timeline_snapshot() {
    let report = run(true).await;
    insta::assert_snapshot!("default_scenario_with_breaker", timeline(&report));
}

#[tokio::test(start_paused = true)]
async fn the_story_is_healthy_then_open_then_half_open_then_closed() {
    let report = run(true).await;
    let states: Vec<&str> = report
        .rows
        .iter()
        .map(|r| r.state.as_deref().unwrap())
        .collect();
    assert_eq!(states[..4], ["closed"; 4], "healthy at first: {states:?}");
    assert!(
        states[4..9].contains(&"open"),
        "opens in the outage: {states:?}"
    );
    assert!(states.contains(&"half-open"), "tries again: {states:?}");
    assert_eq!(states.last(), Some(&"closed"), "recovers: {states:?}");
    assert!(
        report.summary.fallback > 0,
        "rejected calls got the fallback"
    );
}

#[tokio::test(start_paused = true)]
async fn the_breaker_cuts_the_waiting_on_a_broken_service() {
    let with = run(true).await.summary;
    let without = run(false).await.summary;
    assert_eq!(with.calls, without.calls);
    assert!(
        with.wasted_ms * 5 < without.wasted_ms,
        "with a breaker {} ms wasted, without {} ms",
        with.wasted_ms,
        without.wasted_ms
    );
    assert!(without.failed > with.failed);
    let comparison = narration::render_comparison(&with, &without, Palette::PLAIN);
    insta::assert_snapshot!("comparison", comparison);
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_story() {
    let first = run(true).await;
    let second = run(true).await;
    assert_eq!(first.rows, second.rows);
    assert_eq!(first.summary, second.summary);
}
