//! Model-based property test: the breaker against a small, obviously-correct model.
//!
//! The model keeps *every* recorded call with its time and recomputes the window from
//! scratch on each question, and it counts trial calls instead of tracking slots. It is slow
//! and short, which is the point: it can be checked by reading. Proptest drives both with the
//! same random workload (calls, outcomes, cancellations, clock jumps, a clock that steps back,
//! operator commands) and random configurations, and after every step they must agree on the
//! state, the answers, the errors and the metrics. The invariant "never more than N calls
//! admitted in HalfOpen" is checked along the way.

#![allow(clippy::unwrap_used)]

use breaker_core::{
    Backoff, BreakerError, CircuitBreaker, Config, Millis, Outcome, Permit, Rejected, State,
    WindowKind,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    Finish {
        pick: usize,
        outcome: Outcome,
        duration: u64,
    },
    Release {
        pick: usize,
    },
    Wait(u64),
    Timeout,
    /// Calls `try_acquire` with a time earlier than the latest one seen.
    AcquireInThePast(u64),
    ForceOpen,
    Disable,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        4 => Just(Outcome::Success),
        4 => Just(Outcome::Failure),
        1 => Just(Outcome::Ignored),
    ];
    prop_oneof![
        30 => Just(Op::Acquire),
        30 => (any::<usize>(), outcome, prop_oneof![0u64..100, 900u64..1_100])
            .prop_map(|(pick, outcome, duration)| Op::Finish { pick, outcome, duration }),
        5 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        15 => prop_oneof![0u64..1_500, 0u64..60_000].prop_map(Op::Wait),
        5 => Just(Op::Timeout),
        3 => (1u64..5_000).prop_map(Op::AcquireInThePast),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        2 => Just(Op::Reset),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![
            (1u32..8).prop_map(|size| WindowKind::CountBased { size }),
            (1u32..6).prop_map(|seconds| WindowKind::TimeBased { seconds }),
        ],
        1u32..8,
        1u32..5,
        prop_oneof![Just(25.0f32), Just(50.0), Just(100.0)],
        prop_oneof![Just(50.0f32), Just(100.0)],
        proptest::option::of(1u64..20_000),
        any::<bool>(),
    )
        .prop_map(
            |(window, minimum_calls, permitted, failure, slow, max_wait, backoff)| Config {
                window,
                minimum_calls,
                permitted_calls_in_half_open: permitted,
                failure_rate_threshold: failure,
                slow_call_rate_threshold: slow,
                slow_call_duration: Millis(1_000),
                max_wait_in_half_open: max_wait.map(Millis),
                wait_in_open: Millis(5_000),
                backoff: backoff.then_some(Backoff {
                    multiplier: 2.0,
                    max_wait: Millis(30_000),
                }),
                ..Config::default()
            },
        )
}

/// Counts of a set of calls: (calls, failed, slow).
type Counts = (u32, u32, u32);

/// The obviously-correct breaker.
struct Model {
    config: Config,
    state: State,
    generation: u32,
    now: u64,
    /// Closed: every call recorded since entering Closed, as (time, failed, slow).
    recorded: Vec<(u64, bool, bool)>,
    /// Closed, Disabled: admitted and not handed back. HalfOpen: trials in flight.
    in_flight: u32,
    /// HalfOpen: outcomes of finished trials.
    trials: Vec<(bool, bool)>,
    tripped_by: Counts,
    open_until: u64,
    half_open_deadline: Option<u64>,
    consecutive_opens: u32,
    not_permitted: u64,
}

impl Model {
    fn new(config: Config) -> Model {
        Model {
            config,
            state: State::Closed,
            generation: 0,
            now: 0,
            recorded: Vec::new(),
            in_flight: 0,
            trials: Vec::new(),
            tripped_by: (0, 0, 0),
            open_until: 0,
            half_open_deadline: None,
            consecutive_opens: 0,
            not_permitted: 0,
        }
    }

    /// The calls the window holds now, recomputed from the full list.
    fn window(&self) -> Counts {
        let in_window: Vec<_> = match self.config.window {
            WindowKind::CountBased { size } => {
                let skip = self.recorded.len().saturating_sub(size as usize);
                self.recorded[skip..].iter().collect()
            }
            WindowKind::TimeBased { seconds } => self
                .recorded
                .iter()
                .filter(|(at, _, _)| at / 1000 + u64::from(seconds) > self.now / 1000)
                .collect(),
        };
        counts(in_window.iter().map(|(_, failed, slow)| (*failed, *slow)))
    }

    fn opens(&self, (calls, failed, slow): Counts, minimum: u32) -> bool {
        calls >= minimum
            && (failed as f32 * 100.0 / calls as f32 >= self.config.failure_rate_threshold
                || slow as f32 * 100.0 / calls as f32 >= self.config.slow_call_rate_threshold)
    }

    fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
        if self.state == State::Open && self.now >= self.open_until {
            self.enter(State::HalfOpen);
        } else if self.state == State::HalfOpen
            && self.half_open_deadline.is_some_and(|d| self.now >= d)
        {
            self.enter(State::Open);
        }
    }

    fn enter(&mut self, to: State) {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        self.in_flight = 0;
        self.not_permitted = 0;
        self.half_open_deadline = None;
        self.tripped_by = (0, 0, 0);
        match to {
            State::Closed => {
                self.recorded.clear();
                self.consecutive_opens = 0;
            }
            State::Open => {
                self.tripped_by = match from {
                    State::Closed => self.window(),
                    State::HalfOpen => counts(self.trials.iter().copied()),
                    _ => (0, 0, 0),
                };
                let base = self.config.wait_in_open.0;
                let wait = match self.config.backoff {
                    // multiplier 2: doubling, capped.
                    Some(b) => (base << self.consecutive_opens.min(20)).min(b.max_wait.0),
                    None => base,
                };
                self.open_until = self.now + wait;
                self.consecutive_opens += 1;
            }
            State::HalfOpen => {
                self.trials.clear();
                self.half_open_deadline = self.config.max_wait_in_half_open.map(|w| self.now + w.0);
            }
            State::ForcedOpen | State::Disabled => {}
        }
    }

    fn try_acquire(&mut self, now: u64) -> Result<State, Rejected> {
        self.advance(now);
        let admitted = match self.state {
            State::Closed | State::Disabled => true,
            State::HalfOpen => {
                self.in_flight + (self.trials.len() as u32)
                    < self.config.permitted_calls_in_half_open
            }
            State::Open | State::ForcedOpen => false,
        };
        if admitted {
            self.in_flight += 1;
            Ok(self.state)
        } else {
            self.not_permitted += 1;
            Err(Rejected {
                state: self.state,
                retry_after: (self.state == State::Open)
                    .then(|| Millis(self.open_until - self.now)),
            })
        }
    }

    fn finish(
        &mut self,
        now: u64,
        generation: u32,
        outcome: Option<Outcome>,
        duration: u64,
    ) -> Result<(), BreakerError> {
        self.advance(now);
        if generation != self.generation {
            return Err(BreakerError::StalePermit {
                permit: generation,
                current: self.generation,
            });
        }
        self.in_flight -= 1;
        let Some(outcome @ (Outcome::Success | Outcome::Failure)) = outcome else {
            return Ok(()); // released or ignored: nothing recorded
        };
        let call = (
            outcome == Outcome::Failure,
            duration >= self.config.slow_call_duration.0,
        );
        match self.state {
            State::Closed => {
                self.recorded.push((self.now, call.0, call.1));
                if self.opens(self.window(), self.config.effective_minimum_calls()) {
                    self.enter(State::Open);
                }
            }
            State::HalfOpen => {
                self.trials.push(call);
                let permitted = self.config.permitted_calls_in_half_open;
                if self.trials.len() as u32 == permitted {
                    let trials = counts(self.trials.iter().copied());
                    self.enter(if self.opens(trials, permitted) {
                        State::Open
                    } else {
                        State::Closed
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// What the breaker's metrics must say: (buffered, failed, slow, in flight).
    fn expected_counts(&self) -> (Counts, u32) {
        let counts = match self.state {
            State::Closed => self.window(),
            State::HalfOpen => counts(self.trials.iter().copied()),
            State::Open => self.tripped_by,
            State::ForcedOpen | State::Disabled => (0, 0, 0),
        };
        let in_flight = match self.state {
            State::Open | State::ForcedOpen => 0,
            _ => self.in_flight,
        };
        (counts, in_flight)
    }
}

fn counts(calls: impl Iterator<Item = (bool, bool)>) -> Counts {
    calls.fold((0, 0, 0), |(n, f, s), (failed, slow)| {
        (n + 1, f + u32::from(failed), s + u32::from(slow))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn breaker_agrees_with_the_model(config in config(), ops in proptest::collection::vec(op(), 1..200)) {
        let mut breaker = CircuitBreaker::new(config.clone()).expect("generated configs are valid");
        let mut model = Model::new(config.clone());
        let mut now = 0u64;
        // Outstanding calls: the breaker's permit and the generation the model admitted it in.
        let mut outstanding: Vec<(Permit, u32)> = Vec::new();

        for (index, op) in ops.iter().enumerate() {
            let context = format!("step {index}: {op:?} at {now} ms, config {config:?}");
            match op {
                Op::Acquire | Op::AcquireInThePast(_) => {
                    let at = match op {
                        Op::AcquireInThePast(back) => now.saturating_sub(*back),
                        _ => now,
                    };
                    let real = breaker.try_acquire(Millis(at));
                    let expected = model.try_acquire(at);
                    prop_assert_eq!(
                        real.as_ref().map(Permit::admitted_in).map_err(|rejected| *rejected),
                        expected,
                        "{}", context
                    );
                    if let Ok(permit) = real {
                        outstanding.push((permit, model.generation));
                    }
                }
                Op::Finish { pick, outcome, duration } if !outstanding.is_empty() => {
                    let (permit, generation) = outstanding.remove(pick % outstanding.len());
                    let real = breaker.on_outcome(Millis(now), permit, *outcome, Millis(*duration));
                    let expected = model.finish(now, generation, Some(*outcome), *duration);
                    prop_assert_eq!(real, expected, "{}", context);
                }
                Op::Release { pick } if !outstanding.is_empty() => {
                    let (permit, generation) = outstanding.remove(pick % outstanding.len());
                    let real = breaker.release(Millis(now), permit);
                    let expected = model.finish(now, generation, None, 0);
                    prop_assert_eq!(real, expected, "{}", context);
                }
                Op::Wait(ms) => now += ms,
                Op::Timeout => {
                    breaker.handle_timeout(Millis(now));
                    model.advance(now);
                }
                Op::ForceOpen => {
                    breaker.force_open(Millis(now));
                    model.advance(now);
                    if model.state != State::ForcedOpen {
                        model.enter(State::ForcedOpen);
                    }
                }
                Op::Disable => {
                    breaker.disable(Millis(now));
                    model.advance(now);
                    if model.state != State::Disabled {
                        model.enter(State::Disabled);
                    }
                }
                Op::Reset => {
                    breaker.reset(Millis(now));
                    model.advance(now);
                    model.enter(State::Closed);
                }
                _ => {}
            }
            while breaker.poll_output().is_some() {}

            prop_assert_eq!(breaker.state(), model.state, "{}", context);
            prop_assert_eq!(breaker.generation(), model.generation, "{}", context);
            let metrics = breaker.metrics();
            let ((calls, failed, slow), in_flight) = model.expected_counts();
            prop_assert_eq!(
                (metrics.buffered_calls, metrics.failed_calls, metrics.slow_calls, metrics.in_flight),
                (calls, failed, slow, in_flight),
                "(buffered, failed, slow, in flight) differ; {}", context
            );
            prop_assert_eq!(metrics.not_permitted_calls, model.not_permitted, "{}", context);
            let expected_timeout = match model.state {
                State::Open => Some(Millis(model.open_until)),
                State::HalfOpen => model.half_open_deadline.map(Millis),
                _ => None,
            };
            prop_assert_eq!(breaker.poll_timeout(), expected_timeout, "{}", context);

            // The invariant the lab is about: HalfOpen never lets more than N trials in.
            if breaker.state() == State::HalfOpen {
                let trials_in_flight = outstanding
                    .iter()
                    .filter(|(permit, _)| permit.generation() == breaker.generation())
                    .count() as u32;
                prop_assert!(
                    trials_in_flight + metrics.buffered_calls <= config.permitted_calls_in_half_open,
                    "invariant: half_open_admits_at_most_n: {} trials in flight and {} finished \
                     exceed {}; {}",
                    trials_in_flight, metrics.buffered_calls,
                    config.permitted_calls_in_half_open, context
                );
            }
        }
    }
}
