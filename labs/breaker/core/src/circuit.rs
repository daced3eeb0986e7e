//! The graded part: the sliding window and the breaker's state machine (reference solution).
//!
//! This file is the worked example of the lab. The learner's copy,
//! `labs/breaker/exercise/circuit.rs`, has the same public API with `todo!()` bodies; the
//! crate's `exercise` feature swaps it in and `tests/graded.rs` checks either one.
//!
//! How it fits: the driver (the lab's tower layer, the playground, a test) owns the clock and
//! the I/O. It asks [`CircuitBreaker::try_acquire`] before a call, reports the call's
//! [`Outcome`] afterwards, calls [`CircuitBreaker::handle_timeout`] when
//! [`CircuitBreaker::poll_timeout`] says a deadline has come, and drains
//! [`CircuitBreaker::poll_output`] after every input. The breaker never sleeps, spawns or
//! reads a clock, so the same code runs in a tokio service, in a browser and in a test
//! that covers an hour of traffic in a millisecond.

use std::collections::VecDeque;

use crate::config::{Config, ConfigError, WindowKind};
use crate::error::{BreakerError, Rejected};
use crate::event::{Event, Input, Output, TransitionReason};
use crate::metrics::{CallRecord, Metrics, WindowSnapshot};
use crate::outcome::Outcome;
use crate::state::{Permit, State};
use crate::time::Millis;

// ANCHOR: sliding_window
/// The breaker's memory of recent calls: the last N calls, or the calls of the last N seconds.
///
/// It keeps running totals, so reading the counts is O(1) however large the window, and
/// recording a call never allocates: the storage is allocated once, in [`SlidingWindow::new`].
#[derive(Clone, Debug)]
pub struct SlidingWindow {
    store: Store,
    /// The sum of everything in `store`, updated as calls enter and leave.
    totals: WindowSnapshot,
}

/// The two ways of remembering, each a ring buffer.
#[derive(Clone, Debug)]
enum Store {
    /// The last `capacity` calls. `ring` grows to `capacity` and is then overwritten
    /// oldest-first at `next`.
    Count {
        ring: Vec<CallRecord>,
        capacity: usize,
        next: usize,
    },
    /// One bucket per second; bucket `s % len` holds the calls of second `s`, for the
    /// seconds `newest_second - len + 1 ..= newest_second`.
    Time {
        buckets: Vec<WindowSnapshot>,
        newest_second: u64,
    },
}
// ANCHOR_END: sliding_window

impl SlidingWindow {
    /// An empty window of the given kind (its size must be at least 1: see [`Config::validate`]).
    pub fn new(kind: WindowKind) -> SlidingWindow {
        let store = match kind {
            WindowKind::CountBased { size } => {
                let capacity = size.max(1) as usize;
                Store::Count {
                    ring: Vec::with_capacity(capacity),
                    capacity,
                    next: 0,
                }
            }
            WindowKind::TimeBased { seconds } => Store::Time {
                buckets: vec![WindowSnapshot::default(); seconds.max(1) as usize],
                newest_second: 0,
            },
        };
        SlidingWindow {
            store,
            totals: WindowSnapshot::default(),
        }
    }

    // ANCHOR: record
    /// Remembers one call that finished at `now`, forgetting whatever falls out of the window.
    pub fn record(&mut self, now: Millis, call: CallRecord) {
        self.forget_expired(now);
        match &mut self.store {
            Store::Count {
                ring,
                capacity,
                next,
            } => {
                if ring.len() < *capacity {
                    ring.push(call);
                } else {
                    // The oldest call sits where the next one goes: take its counts out.
                    let oldest = core::mem::replace(&mut ring[*next], call);
                    let mut gone = WindowSnapshot::default();
                    gone.add(oldest);
                    self.totals.subtract(&gone);
                }
                // A compare instead of `%`: a division costs more than the rest of the call.
                *next += 1;
                if *next == *capacity {
                    *next = 0;
                }
            }
            Store::Time {
                buckets,
                newest_second,
            } => {
                // `forget_expired` moved `newest_second` to now's second (or kept it if the
                // clock went backwards, in which case the call joins the newest bucket).
                let index = (*newest_second % buckets.len() as u64) as usize;
                buckets[index].add(call);
            }
        }
        self.totals.add(call);
    }
    // ANCHOR_END: record

    /// The counts as of `now`: a time-based window first forgets the seconds that have
    /// passed out of it, so old calls expire even when no new call comes.
    pub fn snapshot(&mut self, now: Millis) -> WindowSnapshot {
        self.forget_expired(now);
        self.totals
    }

    /// The counts as of the latest `now` the window was given.
    pub fn totals(&self) -> WindowSnapshot {
        self.totals
    }

    /// Forgets every call, keeping the allocated storage.
    pub fn clear(&mut self) {
        match &mut self.store {
            Store::Count { ring, next, .. } => {
                ring.clear();
                *next = 0;
            }
            Store::Time { buckets, .. } => buckets.fill(WindowSnapshot::default()),
        }
        self.totals = WindowSnapshot::default();
    }

    // ANCHOR: forget_expired
    /// Time-based only: empties the buckets of the seconds between the newest bucket and
    /// `now`, because they now hold calls from more than `len` seconds ago. At most `len`
    /// buckets are touched, however long the clock jumped.
    fn forget_expired(&mut self, now: Millis) {
        let Store::Time {
            buckets,
            newest_second,
        } = &mut self.store
        else {
            return; // a count-based window forgets by count, not by time
        };
        let second = now.as_secs();
        if second <= *newest_second {
            return;
        }
        let len = buckets.len() as u64;
        for step in 1..=(second - *newest_second).min(len) {
            let index = ((*newest_second + step) % len) as usize;
            self.totals.subtract(&buckets[index]);
            buckets[index] = WindowSnapshot::default();
        }
        *newest_second = second;
    }
    // ANCHOR_END: forget_expired
}

/// A HalfOpen trial slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Can be handed out.
    Free,
    /// Held by the trial call of this admission: only its permit can free the slot, not
    /// the permit of an earlier trial that held the slot before.
    InUse {
        /// The admission number of the permit that holds the slot.
        admission: u32,
    },
    /// Its trial call's outcome is recorded: the slot stays taken until HalfOpen decides.
    Done,
}

// ANCHOR: circuit_breaker
/// A circuit breaker with resilience4j's semantics, as a sans-IO state machine.
///
/// The contract with a driver:
/// - every method takes `now` on the driver's clock; a `now` earlier than one already
///   seen is treated as that latest time (the clock never runs backwards here);
/// - each admitted call gets a [`Permit`], which must come back exactly once, with an outcome
///   ([`on_outcome`](Self::on_outcome) and its shorthands) or without one
///   ([`release`](Self::release), for a cancelled call), so HalfOpen can never be stuck;
/// - a permit from before the latest state transition is stale: handing it back is an
///   [`BreakerError::StalePermit`] and changes nothing;
/// - a permit that is not outstanding (a deserialized copy of one already handed back) is
///   [`BreakerError::UnknownPermit`] and changes nothing: it cannot free a trial slot that
///   another call holds now;
/// - deadlines (end of Open, end of HalfOpen) are applied by [`handle_timeout`](Self::handle_timeout)
///   at [`poll_timeout`](Self::poll_timeout), and also lazily by any other call made after them;
/// - events queue up for [`poll_output`](Self::poll_output): drain them after every input.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: Config,
    state: State,
    /// Bumped on every transition; permits remember it.
    generation: u32,
    /// The latest time the breaker was given.
    now: Millis,
    /// Closed's memory of recent calls.
    window: SlidingWindow,
    /// Closed and Disabled: permits handed out and not yet returned in this generation.
    in_flight: u32,
    /// The number of the latest admission (wrapping): every permit carries its own.
    admissions: u32,
    /// HalfOpen: one entry per permitted trial call.
    trial_slots: Vec<Slot>,
    /// HalfOpen: the recorded outcomes of the trial calls.
    trials: WindowSnapshot,
    /// Open: the counts that opened the breaker (shown by `metrics`).
    tripped_by: WindowSnapshot,
    /// Open: when trial calls may start.
    open_until: Millis,
    /// HalfOpen: when to give up waiting for the trials.
    half_open_deadline: Option<Millis>,
    /// Openings since the breaker was last Closed: the exponent of the backoff.
    consecutive_opens: u32,
    /// Rejections in the current state.
    not_permitted: u64,
    /// Rejections since the breaker was built.
    rejected_total: u64,
    dropped_outputs: u64,
    outputs: VecDeque<Output>,
    rng: fastrand::Rng,
}
// ANCHOR_END: circuit_breaker

impl CircuitBreaker {
    /// A Closed breaker with an empty window, or the reason `config` is unusable.
    pub fn new(config: Config) -> Result<CircuitBreaker, ConfigError> {
        config.validate()?;
        Ok(CircuitBreaker {
            state: State::Closed,
            generation: 0,
            now: Millis::ZERO,
            window: SlidingWindow::new(config.window),
            in_flight: 0,
            admissions: 0,
            trial_slots: vec![Slot::Free; config.permitted_calls_in_half_open as usize],
            trials: WindowSnapshot::default(),
            tripped_by: WindowSnapshot::default(),
            open_until: Millis::ZERO,
            half_open_deadline: None,
            consecutive_opens: 0,
            not_permitted: 0,
            rejected_total: 0,
            dropped_outputs: 0,
            outputs: VecDeque::with_capacity(config.max_queued_outputs.min(1024)),
            rng: fastrand::Rng::with_seed(config.jitter_seed()),
            config,
        })
    }

    /// The configuration the breaker was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state (as of the latest time given; a due deadline is applied by the
    /// next call that passes `now`).
    pub fn state(&self) -> State {
        self.state
    }

    /// How many state transitions have happened: permits from an earlier generation are stale.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The latest time the breaker was given.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The breaker's numbers as of the latest time it was given.
    pub fn metrics(&self) -> Metrics {
        let (judged, minimum) = match self.state {
            State::Closed => (self.window.totals(), self.config.effective_minimum_calls()),
            State::HalfOpen => (self.trials, self.config.permitted_calls_in_half_open),
            // What opened the breaker was judged already: show it whatever its size.
            State::Open => (self.tripped_by, 1),
            State::ForcedOpen | State::Disabled => (WindowSnapshot::default(), 1),
        };
        let judged_enough = judged.calls >= minimum;
        Metrics {
            state: self.state,
            failure_rate: judged_enough.then(|| judged.failure_rate()),
            slow_call_rate: judged_enough.then(|| judged.slow_call_rate()),
            buffered_calls: judged.calls,
            failed_calls: judged.failed,
            slow_calls: judged.slow,
            slow_failed_calls: judged.slow_failed,
            in_flight: match self.state {
                State::Closed | State::Disabled => self.in_flight,
                State::HalfOpen => self
                    .trial_slots
                    .iter()
                    .filter(|s| matches!(s, Slot::InUse { .. }))
                    .count() as u32,
                State::Open | State::ForcedOpen => 0,
            },
            not_permitted_calls: self.not_permitted,
            rejected_calls: self.rejected_total,
            consecutive_opens: self.consecutive_opens,
            open_until: (self.state == State::Open).then_some(self.open_until),
            dropped_outputs: self.dropped_outputs,
        }
    }

    // ANCHOR: try_acquire
    /// Asks to make a call at `now`: a [`Permit`] to hand back when the call ends, or a
    /// [`Rejected`] saying why not and, in Open, how long until trial calls are let through.
    pub fn try_acquire(&mut self, now: Millis) -> Result<Permit, Rejected> {
        let now = self.advance(now);
        match self.state {
            State::Closed | State::Disabled => {
                self.in_flight = self.in_flight.saturating_add(1);
                let admission = self.next_admission();
                Ok(Permit::new(self.generation, self.state, 0, admission))
            }
            State::HalfOpen => {
                // Exactly `permitted_calls_in_half_open` trials: a slot is needed, and a
                // slot comes back only through `release` or an ignored outcome.
                match self.trial_slots.iter().position(|s| *s == Slot::Free) {
                    Some(slot) => {
                        let admission = self.next_admission();
                        self.trial_slots[slot] = Slot::InUse { admission };
                        Ok(Permit::new(
                            self.generation,
                            State::HalfOpen,
                            slot as u32,
                            admission,
                        ))
                    }
                    None => Err(self.reject(now, None)),
                }
            }
            State::Open => Err(self.reject(now, Some(self.open_until - now))),
            State::ForcedOpen => Err(self.reject(now, None)),
        }
    }
    // ANCHOR_END: try_acquire

    /// Records a successful call (see [`on_outcome`](Self::on_outcome)).
    pub fn on_success(
        &mut self,
        now: Millis,
        permit: Permit,
        duration: Millis,
    ) -> Result<(), BreakerError> {
        self.on_outcome(now, permit, Outcome::Success, duration)
    }

    /// Records a failed call (see [`on_outcome`](Self::on_outcome)).
    pub fn on_failure(
        &mut self,
        now: Millis,
        permit: Permit,
        duration: Millis,
    ) -> Result<(), BreakerError> {
        self.on_outcome(now, permit, Outcome::Failure, duration)
    }

    // ANCHOR: on_outcome
    /// Hands a permit back with the call's outcome and duration.
    ///
    /// In Closed the call enters the sliding window and may open the breaker; in HalfOpen it
    /// is a trial, and the last trial decides between Closed and Open; in Disabled nothing is
    /// recorded. [`Outcome::Ignored`] records nothing and frees the permit like
    /// [`release`](Self::release). A stale or unknown permit is an error and changes nothing.
    pub fn on_outcome(
        &mut self,
        now: Millis,
        permit: Permit,
        outcome: Outcome,
        duration: Millis,
    ) -> Result<(), BreakerError> {
        let now = self.advance(now);
        self.take_back(&permit)?;
        if outcome == Outcome::Ignored {
            self.emit_call_event(Event::Ignored { at: now, duration });
            return Ok(());
        }
        let call = CallRecord {
            failed: outcome == Outcome::Failure,
            slow: duration >= self.config.slow_call_duration,
        };
        self.emit_call_event(if call.failed {
            Event::Failure { at: now, duration }
        } else {
            Event::Success { at: now, duration }
        });
        if call.slow {
            self.emit_call_event(Event::SlowCall {
                at: now,
                duration,
                failed: call.failed,
            });
        }
        match permit.admitted_in() {
            State::Closed => {
                self.window.record(now, call);
                let minimum = self.config.effective_minimum_calls();
                if let Some(reason) = self.verdict(self.window.totals(), minimum) {
                    self.transition(now, State::Open, reason);
                }
            }
            State::HalfOpen => {
                self.trial_slots[permit.slot() as usize] = Slot::Done;
                self.trials.add(call);
                let permitted = self.config.permitted_calls_in_half_open;
                if self.trials.calls >= permitted {
                    // Every trial has an outcome: like resilience4j, decide only now.
                    match self.verdict(self.trials, permitted) {
                        Some(reason) => self.transition(now, State::Open, reason),
                        None => {
                            self.transition(now, State::Closed, TransitionReason::TrialsSucceeded)
                        }
                    }
                }
            }
            // Disabled records nothing; `take_back` admits no other state.
            _ => {}
        }
        Ok(())
    }
    // ANCHOR_END: on_outcome

    /// Hands back the permit of a call that was cancelled (dropped, timed out by the
    /// caller) before it had an outcome. Nothing is recorded; a HalfOpen trial slot is
    /// freed for another trial call. A permit that is not outstanding (already handed
    /// back) is [`BreakerError::UnknownPermit`], a stale one [`BreakerError::StalePermit`],
    /// and either changes nothing.
    pub fn release(&mut self, now: Millis, permit: Permit) -> Result<(), BreakerError> {
        let now = self.advance(now);
        self.take_back(&permit)?;
        self.emit_call_event(Event::Released {
            at: now,
            admitted_in: permit.admitted_in(),
        });
        Ok(())
    }

    /// Operator: hold the breaker open (rejecting everything) until another operator
    /// command. Does nothing if already ForcedOpen.
    pub fn force_open(&mut self, now: Millis) {
        let now = self.advance(now);
        if self.state != State::ForcedOpen {
            self.transition(now, State::ForcedOpen, TransitionReason::ForcedOpen);
        }
    }

    /// Operator: admit every call and record nothing until another operator command.
    /// Does nothing if already Disabled.
    pub fn disable(&mut self, now: Millis) {
        let now = self.advance(now);
        if self.state != State::Disabled {
            self.transition(now, State::Disabled, TransitionReason::Disabled);
        }
    }

    /// Operator: back to Closed with an empty window and no backoff history, from any
    /// state (also from Closed, which empties the window). Outstanding permits become stale.
    ///
    /// It always queues [`Event::StateTransition`] to Closed with
    /// [`TransitionReason::Reset`], from Closed too (Closed to Closed): resilience4j's
    /// `reset` publishes a transition to CLOSED and a reset event, and this transition is
    /// both. The jitter is not re-seeded: the next opening draws the next number of the
    /// same sequence, as resilience4j's reset leaves its random source alone.
    pub fn reset(&mut self, now: Millis) {
        let now = self.advance(now);
        self.transition(now, State::Closed, TransitionReason::Reset);
    }

    /// Operator: go to `state` now (Open starts a full wait, HalfOpen a fresh set of trial
    /// slots). Asking for the current state is [`BreakerError::InvalidTransition`].
    pub fn transition_to(&mut self, now: Millis, state: State) -> Result<(), BreakerError> {
        let now = self.advance(now);
        if state == self.state {
            return Err(BreakerError::InvalidTransition {
                from: self.state,
                to: state,
            });
        }
        self.transition(now, state, TransitionReason::Manual);
        Ok(())
    }

    // ANCHOR: handle_input
    /// The sans-IO entry point: applies one [`Input`]. An [`Input::Acquire`] is answered
    /// with [`Output::Permitted`] or [`Output::Rejected`] on the output queue.
    pub fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), BreakerError> {
        match input {
            Input::Acquire => {
                let answer = match self.try_acquire(now) {
                    Ok(permit) => Output::Permitted(permit),
                    Err(rejected) => Output::Rejected(rejected),
                };
                self.push_output(answer);
                Ok(())
            }
            Input::Outcome {
                permit,
                outcome,
                duration,
            } => self.on_outcome(now, permit, outcome, duration),
            Input::Release { permit } => self.release(now, permit),
            Input::ForceOpen => {
                self.force_open(now);
                Ok(())
            }
            Input::Disable => {
                self.disable(now);
                Ok(())
            }
            Input::Reset => {
                self.reset(now);
                Ok(())
            }
            Input::TransitionTo { state } => self.transition_to(now, state),
        }
    }
    // ANCHOR_END: handle_input

    /// Applies the deadlines that have passed by `now` (Open → HalfOpen, a HalfOpen that
    /// waited too long → Open) and lets a time-based window forget expired seconds.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.advance(now);
    }

    /// The next queued output, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the breaker next wants [`handle_timeout`](Self::handle_timeout): the end of the
    /// wait in Open, or HalfOpen's `max_wait_in_half_open` deadline; `None` when no
    /// deadline is pending.
    pub fn poll_timeout(&self) -> Option<Millis> {
        match self.state {
            State::Open => Some(self.open_until),
            State::HalfOpen => self.half_open_deadline,
            _ => None,
        }
    }

    // ANCHOR: advance
    /// Moves the breaker's clock to `now` (never backwards) and applies a due deadline.
    /// Returns the time to use for the rest of the input.
    fn advance(&mut self, now: Millis) -> Millis {
        let now = now.max(self.now);
        self.now = now;
        match self.state {
            State::Open if now >= self.open_until => {
                self.transition(now, State::HalfOpen, TransitionReason::WaitElapsed);
            }
            State::HalfOpen if self.half_open_deadline.is_some_and(|d| now >= d) => {
                self.transition(now, State::Open, TransitionReason::HalfOpenTimedOut);
            }
            State::Closed => {
                self.window.snapshot(now);
            }
            _ => {}
        }
        now
    }
    // ANCHOR_END: advance

    // ANCHOR: verdict
    /// Should these counts open the breaker? Not before `minimum` calls; then a failure
    /// rate or slow-call rate at or above its threshold does.
    fn verdict(&self, counts: WindowSnapshot, minimum: u32) -> Option<TransitionReason> {
        if counts.calls < minimum {
            return None;
        }
        let failure_rate = counts.failure_rate();
        if failure_rate >= self.config.failure_rate_threshold {
            return Some(TransitionReason::FailureRateExceeded { rate: failure_rate });
        }
        let slow_call_rate = counts.slow_call_rate();
        if slow_call_rate >= self.config.slow_call_rate_threshold {
            return Some(TransitionReason::SlowCallRateExceeded {
                rate: slow_call_rate,
            });
        }
        None
    }
    // ANCHOR_END: verdict

    /// The number of a new admission, for its permit.
    fn next_admission(&mut self) -> u32 {
        self.admissions = self.admissions.wrapping_add(1);
        self.admissions
    }

    /// Checks that `permit` is outstanding in the current generation and marks it returned.
    fn take_back(&mut self, permit: &Permit) -> Result<(), BreakerError> {
        if permit.generation() != self.generation {
            return Err(BreakerError::StalePermit {
                permit: permit.generation(),
                current: self.generation,
            });
        }
        match (self.state, permit.admitted_in()) {
            (State::Closed, State::Closed) | (State::Disabled, State::Disabled)
                if self.in_flight > 0 =>
            {
                // Closed admits any number of calls, so it keeps a count, not a list:
                // a permit handed back twice is caught once the count reaches zero.
                self.in_flight -= 1;
                Ok(())
            }
            (State::HalfOpen, State::HalfOpen) => {
                let held_by_this_permit = Slot::InUse {
                    admission: permit.admission(),
                };
                match self.trial_slots.get_mut(permit.slot() as usize) {
                    // Only the permit of the admission that holds the slot frees it: an
                    // earlier holder's permit, handed back again, must not.
                    Some(slot) if *slot == held_by_this_permit => {
                        // Free now; `on_outcome` marks it Done if an outcome is recorded.
                        *slot = Slot::Free;
                        Ok(())
                    }
                    _ => Err(BreakerError::UnknownPermit),
                }
            }
            _ => Err(BreakerError::UnknownPermit),
        }
    }

    // ANCHOR: transition
    /// Enters `to`: a new generation (outstanding permits become stale) and fresh
    /// bookkeeping for the state entered.
    fn transition(&mut self, now: Millis, to: State, reason: TransitionReason) {
        let from = self.state;
        self.state = to;
        self.generation = self.generation.wrapping_add(1);
        self.in_flight = 0;
        self.not_permitted = 0;
        self.half_open_deadline = None;
        self.tripped_by = WindowSnapshot::default();
        match to {
            State::Closed => {
                self.window.clear();
                self.consecutive_opens = 0;
            }
            State::Open => {
                self.tripped_by = match from {
                    State::Closed => self.window.totals(),
                    State::HalfOpen => self.trials,
                    _ => WindowSnapshot::default(),
                };
                self.open_until = now + self.wait_in_open();
                self.consecutive_opens = self.consecutive_opens.saturating_add(1);
            }
            State::HalfOpen => {
                self.trial_slots.fill(Slot::Free);
                self.trials = WindowSnapshot::default();
                self.half_open_deadline = self.config.max_wait_in_half_open.map(|w| now + w);
            }
            State::ForcedOpen | State::Disabled => {}
        }
        self.push_output(Output::Event(Event::StateTransition {
            at: now,
            from,
            to,
            reason,
        }));
    }
    // ANCHOR_END: transition

    // ANCHOR: wait_in_open
    /// The wait for the opening about to happen: `wait_in_open × multiplier^k` for the
    /// `k`-th consecutive opening, capped, then spread by the seeded jitter.
    fn wait_in_open(&mut self) -> Millis {
        let base = self.config.wait_in_open.0 as f64;
        let mut wait = match self.config.backoff {
            Some(backoff) => {
                let exponent = i32::try_from(self.consecutive_opens).unwrap_or(i32::MAX);
                (base * backoff.multiplier.powi(exponent)).min(backoff.max_wait.0 as f64)
            }
            None => base,
        };
        if self.config.jitter > 0.0 {
            // Uniform in [1 - jitter, 1 + jitter): the same seed gives the same waits.
            wait *= 1.0 + self.config.jitter * (2.0 * self.rng.f64() - 1.0);
        }
        // At least 1 ms, so Open always rejects something; `as` saturates huge values.
        Millis((wait.round() as u64).max(1))
    }
    // ANCHOR_END: wait_in_open

    /// Counts a rejection, and queues an [`Event::Rejected`] for it only when
    /// `config.emit_call_events` is on (a rejection is a per-call event).
    fn reject(&mut self, now: Millis, retry_after: Option<Millis>) -> Rejected {
        let rejected = Rejected {
            state: self.state,
            retry_after,
        };
        self.not_permitted += 1;
        self.rejected_total += 1;
        self.emit_call_event(Event::Rejected { at: now, rejected });
        rejected
    }

    fn emit_call_event(&mut self, event: Event) {
        if self.config.emit_call_events {
            self.push_output(Output::Event(event));
        }
    }

    /// Queues an output; when the queue is full the oldest output is dropped (and counted)
    /// so a driver that never drains cannot make the breaker grow without bound.
    fn push_output(&mut self, output: Output) {
        if self.outputs.len() >= self.config.max_queued_outputs {
            self.outputs.pop_front();
            self.dropped_outputs += 1;
        }
        self.outputs.push_back(output);
    }
}
