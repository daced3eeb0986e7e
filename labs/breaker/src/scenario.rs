//! The scripted outage: healthy → failing → open with fallback → recovering → closed.
//!
//! The driver is generic over the [`Transport`], so the same script runs over real
//! sockets in the demo and over the axum router in-process in the tests, where tokio's
//! paused clock makes fifteen seconds of scenario take a few milliseconds and come out
//! identical every time (the snapshot test relies on that).
//!
//! Load is *open-loop*: a call starts every `1000 / rate` ms whether or not earlier calls
//! have finished, like users who do not wait for each other. That is what makes a hanging
//! upstream dangerous: calls pile up, each holding a task, a connection and a waiting user.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use breaker_core::{Backoff, Config, ConfigError, Event, Millis, TransitionReason, WindowKind};
use breaker_tower::Breaker;
use breaker_tower::clock::TokioClock;
use http::{Request, header};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{BoxError, ServiceExt};

use crate::narration::{SecondRow, Summary};
use crate::order::{OrderClient, PaymentAnswer};
use crate::payment::{Behaviour, PaymentRequest};
use crate::transport::Transport;

/// A change to the upstream at a point in the scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// When, in scenario milliseconds.
    pub at: Millis,
    /// How the payment service behaves from then on.
    pub behaviour: Behaviour,
    /// What the timeline says about it.
    pub note: &'static str,
}

/// Everything that defines a run. Times are scenario time; `speed` maps them to real time.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Seed of the upstream's failures and of the breaker's jitter.
    pub seed: u64,
    /// Calls started per second.
    pub rate_per_sec: u32,
    /// Length of the run, in seconds.
    pub duration_secs: u64,
    /// The per-attempt timeout (the innermost layer).
    pub timeout: Millis,
    /// Retries after a failed attempt (the outermost layer).
    pub retries: u32,
    /// What happens to the upstream, and when.
    pub phases: Vec<Phase>,
    /// The breaker's configuration.
    pub breaker: Config,
    /// How much faster than real time to run (1.0 = real time).
    pub speed: f64,
}

impl Scenario {
    /// The default script: 4 s healthy, 5 s of outage (every call hangs 1 s, then fails),
    /// then recovery, at 20 calls per second for 15 s.
    pub fn default_script(seed: u64) -> Self {
        Self {
            seed,
            rate_per_sec: 20,
            duration_secs: 15,
            // Not multiples of the 50 ms call period, so no timeout ever ties with the
            // start of a call: the timeline is the same however the runtime orders ties.
            timeout: Millis(280),
            retries: 1,
            phases: vec![
                Phase {
                    at: Millis::ZERO,
                    behaviour: Behaviour::HEALTHY,
                    note: "payment healthy",
                },
                Phase {
                    at: Millis(4_000),
                    behaviour: Behaviour {
                        failure_rate_percent: 100,
                        latency_ms: 1_000,
                    },
                    note: "payment hangs 1 s, then fails",
                },
                Phase {
                    at: Millis(9_000),
                    behaviour: Behaviour::HEALTHY,
                    note: "payment recovers",
                },
            ],
            breaker: Config {
                failure_rate_threshold: 50.0,
                slow_call_rate_threshold: 100.0,
                slow_call_duration: Millis(250),
                permitted_calls_in_half_open: 3,
                max_wait_in_half_open: Some(Millis(2_000)),
                window: WindowKind::CountBased { size: 20 },
                minimum_calls: 10,
                wait_in_open: Millis(2_000),
                backoff: Some(Backoff {
                    multiplier: 2.0,
                    max_wait: Millis(8_000),
                }),
                jitter: 0.1,
                // Fixed, so the same seed tells the same story (the snapshot test relies on it).
                seed: Some(seed),
                emit_call_events: false,
                max_queued_outputs: 1024,
            },
            speed: 1.0,
        }
    }

    /// The same scenario `speed` times faster.
    pub fn with_speed(mut self, speed: f64) -> Self {
        self.speed = speed;
        self
    }

    /// A breaker configured for this scenario, on a clock running at its speed.
    pub fn new_breaker(&self) -> Result<Arc<Breaker>, ConfigError> {
        Ok(Arc::new(Breaker::new(
            self.breaker.clone(),
            TokioClock::with_speed(self.speed),
        )?))
    }

    /// Scenario milliseconds as real time.
    pub fn real(&self, at: Millis) -> Duration {
        Duration::from_secs_f64(at.0 as f64 / 1000.0 / self.speed)
    }

    /// The client stack for a run over `transport`, with `breaker` or without one.
    pub fn client<T: Transport>(&self, transport: T, breaker: Option<Arc<Breaker>>) -> OrderClient {
        OrderClient::new(transport, breaker, self.real(self.timeout), self.retries)
    }
}

/// What a run produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// One row per second.
    pub rows: Vec<SecondRow>,
    /// Totals over the whole run: calls, outcomes and time wasted waiting.
    pub summary: Summary,
}

/// Sets the upstream's behaviour through its admin endpoint (not through the breaker:
/// the operator's channel is not the traffic's).
pub async fn set_behaviour<T: Transport>(
    transport: T,
    behaviour: Behaviour,
) -> Result<(), BoxError> {
    let body = serde_json::to_vec(&behaviour)?;
    let request = Request::post("/admin/behaviour")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))?;
    let response = transport.oneshot(request).await.map_err(Into::into)?;
    if !response.status().is_success() {
        return Err(format!("admin endpoint answered {}", response.status()).into());
    }
    Ok(())
}

// ANCHOR: run
/// Runs `scenario` against the payment service behind `transport`, through `breaker` if
/// given, calling `on_row` live at the end of every second.
pub async fn run<T: Transport>(
    transport: T,
    scenario: &Scenario,
    breaker: Option<Arc<Breaker>>,
    mut on_row: impl FnMut(&SecondRow),
) -> Result<RunReport, BoxError> {
    let client = scenario.client(transport.clone(), breaker.clone());
    let seconds = usize::try_from(scenario.duration_secs.max(1))?;
    let rows = Arc::new(Mutex::new(
        (0..seconds)
            .map(|s| SecondRow {
                second: s as u64,
                ..SecondRow::default()
            })
            .collect::<Vec<_>>(),
    ));
    let period_ms = 1000 / u64::from(scenario.rate_per_sec.max(1));
    let total_calls = scenario.duration_secs * 1000 / period_ms;
    let mut phases = scenario.phases.iter().peekable();
    let mut calls = JoinSet::new();
    let mut longest_wait_ms = 0;
    let start = Instant::now();

    for call in 0..total_calls {
        let at = Millis(call * period_ms);
        tokio::time::sleep_until(start + scenario.real(at)).await;
        let second = at.as_secs() as usize;
        if second > 0 && at.0.is_multiple_of(1000) {
            emit_row(&rows, second - 1, breaker.as_deref(), &mut on_row);
        }
        while let Some(phase) = phases.next_if(|p| p.at <= at) {
            let behaviour = Behaviour {
                latency_ms: scenario
                    .real(Millis(phase.behaviour.latency_ms))
                    .as_millis() as u64,
                ..phase.behaviour
            };
            set_behaviour(transport.clone(), behaviour).await?;
            note(&rows, second, phase.note);
        }
        let client = client.clone();
        let rows = Arc::clone(&rows);
        let scenario_ms = {
            let speed = scenario.speed;
            move |real: Duration| (real.as_secs_f64() * 1000.0 * speed).round() as u64
        };
        calls.spawn(async move {
            let started = Instant::now();
            let answer = client
                .pay(PaymentRequest {
                    order_id: call,
                    amount_cents: 4_200,
                })
                .await;
            let waited = scenario_ms(started.elapsed());
            let ended = scenario_ms(start.elapsed()) / 1000;
            let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
            let last = rows.len() - 1;
            let row = &mut rows[usize::try_from(ended).unwrap_or(last).min(last)];
            row.calls += 1;
            match answer {
                PaymentAnswer::Paid(_) | PaymentAnswer::Declined => row.ok += 1,
                PaymentAnswer::Deferred => {
                    row.fallback += 1;
                    // Usually 0 ms; more when an attempt failed before the breaker opened
                    // and the retry was rejected: that first wait was wasted too.
                    row.wasted_ms += waited;
                }
                PaymentAnswer::Failed { .. } => {
                    row.failed += 1;
                    row.wasted_ms += waited;
                }
            }
            waited
        });
    }
    tokio::time::sleep_until(start + scenario.real(Millis::from_secs(scenario.duration_secs)))
        .await;
    // Calls still in flight finish (every one is bounded by its timeouts) and count in
    // the last second.
    while let Some(joined) = calls.join_next().await {
        longest_wait_ms = longest_wait_ms.max(joined?);
    }
    emit_row(&rows, seconds - 1, breaker.as_deref(), &mut on_row);

    let rows = rows.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut summary = Summary {
        longest_wait_ms,
        transitions: breaker
            .as_deref()
            .map(|b| b.transitions().iter().filter_map(describe).collect())
            .unwrap_or_default(),
        ..Summary::default()
    };
    rows.iter().for_each(|row| summary.add(row));
    Ok(RunReport { rows, summary })
}
// ANCHOR_END: run

fn emit_row(
    rows: &Mutex<Vec<SecondRow>>,
    second: usize,
    breaker: Option<&Breaker>,
    on_row: &mut impl FnMut(&SecondRow),
) {
    let state = breaker.map(|b| b.state().name().to_owned());
    let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(row) = rows.get_mut(second) {
        row.state = state;
        on_row(row);
    }
}

fn note(rows: &Mutex<Vec<SecondRow>>, second: usize, text: &str) {
    let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(row) = rows.get_mut(second) {
        row.note = Some(text.to_owned());
    }
}

/// `4.6s  closed → open  (failure rate 100%)`, for the summary.
fn describe(event: &Event) -> Option<String> {
    let Event::StateTransition {
        at,
        from,
        to,
        reason,
    } = event
    else {
        return None;
    };
    let why = match reason {
        TransitionReason::FailureRateExceeded { rate } => format!("failure rate {rate:.0}%"),
        TransitionReason::SlowCallRateExceeded { rate } => format!("slow-call rate {rate:.0}%"),
        TransitionReason::WaitElapsed => "wait in open elapsed".to_owned(),
        TransitionReason::TrialsSucceeded => "trial calls succeeded".to_owned(),
        TransitionReason::HalfOpenTimedOut => "no verdict in time".to_owned(),
        other => format!("{other:?}"),
    };
    Some(format!("{:>7}  {from} → {to}  ({why})", at.to_string()))
}
