//! Exercise: build the circuit breaker's sliding window and state machine.
//!
//! This is your copy of the graded module. `cargo xtask grade breaker` compiles the crate
//! `breaker-core` with this file in place of the reference and runs `tests/graded.rs`
//! against it, from `starts_closed` to the edge cases. Add `--watch` to re-grade on save.
//!
//! The task: a breaker with resilience4j's semantics, as a sans-IO state machine.
//! - Closed admits calls and records each outcome in a [`SlidingWindow`]. Once the window
//!   holds at least `minimum_calls` calls, a failure rate or slow-call rate at or above its
//!   threshold opens the breaker.
//! - Open rejects every call until `wait_in_open` has passed, then becomes HalfOpen.
//! - HalfOpen admits exactly `permitted_calls_in_half_open` trial calls. When all of them
//!   have an outcome it decides: below both thresholds → Closed, otherwise → Open again.
//! - ForcedOpen and Disabled are for operators; `reset` returns to a fresh Closed.
//!
//! Everything else is written for you in the other modules of the crate: `Config` and its
//! validation, `Millis`, `Permit`, `State`, `Event`, `Output`, `Metrics`, `WindowSnapshot`
//! (with `add`, `subtract`, `failure_rate`, `slow_call_rate`). The public signatures here
//! must stay as they are: the lab's tower layer and the playground call them. The private
//! fields and helpers are a suggested design; change them freely.
//!
//! Replace each `todo!()`, one test at a time, in the order of the scorecard.
//! Read: book chapter patterns/circuit-breaker.md (the state diagram comes first).

// The suggested fields and helpers are unused until you write the bodies.
#![allow(dead_code, unused_variables, unused_imports, unused_mut)]

use std::collections::VecDeque;

use crate::config::{Config, ConfigError, WindowKind};
use crate::error::{BreakerError, Rejected};
use crate::event::{Event, Input, Output, TransitionReason};
use crate::metrics::{CallRecord, Metrics, WindowSnapshot};
use crate::outcome::Outcome;
use crate::state::{Permit, State};
use crate::time::Millis;

/// The breaker's memory of recent calls: the last N calls, or the calls of the last N seconds.
///
/// Keep running totals so that reading the counts costs the same for a window of 10 calls
/// as for one of 10 000, and allocate the storage once, in `new`: recording a call is on
/// every request's path and must not allocate.
#[derive(Clone, Debug)]
pub struct SlidingWindow {
    store: Store,
    /// The sum of everything in `store`, updated as calls enter and leave.
    totals: WindowSnapshot,
}

/// The two ways of remembering. Both are ring buffers.
#[derive(Clone, Debug)]
enum Store {
    /// The last `capacity` calls: `ring` grows to `capacity`, then the oldest entry (at
    /// `next`) is overwritten.
    Count {
        ring: Vec<CallRecord>,
        capacity: usize,
        next: usize,
    },
    /// One bucket per second: bucket `s % buckets.len()` holds the calls of second `s`.
    Time {
        buckets: Vec<WindowSnapshot>,
        newest_second: u64,
    },
}

impl SlidingWindow {
    /// An empty window of the given kind.
    pub fn new(kind: WindowKind) -> SlidingWindow {
        // TODO: build a `Store::Count` with `Vec::with_capacity(size)`, or a `Store::Time`
        // with one empty `WindowSnapshot` per second (`vec![WindowSnapshot::default(); n]`).
        todo!("create an empty window")
    }

    /// Remembers one call that finished at `now`, forgetting whatever falls out of the window.
    pub fn record(&mut self, now: Millis, call: CallRecord) {
        // TODO (count-based): while the ring is not full, push. Once full, the slot at
        // `next` holds the oldest call: subtract it from `totals` before overwriting it.
        // TODO (time-based): forget expired seconds first, then add the call to the
        // bucket of `now`'s second.
        // Either way, add the call to `totals`.
        // Hint: `WindowSnapshot::add` takes a `CallRecord`; to subtract one call, add it
        // to an empty snapshot and `subtract` that.
        // Read: book chapter patterns/circuit-breaker.md, "The sliding window".
        todo!("record a call")
    }

    /// The counts as of `now`: a time-based window first forgets the seconds that have
    /// passed out of it, so old calls expire even when no new call comes.
    pub fn snapshot(&mut self, now: Millis) -> WindowSnapshot {
        todo!("forget expired seconds, then return the totals")
    }

    /// The counts as of the latest `now` the window was given.
    pub fn totals(&self) -> WindowSnapshot {
        todo!("return the running totals")
    }

    /// Forgets every call, keeping the allocated storage.
    pub fn clear(&mut self) {
        todo!("empty the store and the totals")
    }

    /// Time-based only: empties the buckets of the seconds between the newest bucket and
    /// `now`, subtracting what they held from `totals`.
    fn forget_expired(&mut self, now: Millis) {
        // TODO: a call recorded in second `s` belongs to the window until the clock
        // reaches second `s + len`. If the clock jumped by an hour, you need not visit
        // 3600 buckets: at most `len` of them can hold anything.
        // Hint: `now.as_secs()`; ignore a `now` whose second is not newer than `newest_second`.
        // Read: book chapter patterns/circuit-breaker.md, "The sliding window".
        todo!("expire old buckets")
    }
}

/// A HalfOpen trial slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Can be handed out.
    Free,
    /// Held by the trial call of this admission (a permit's `admission()`): a permit of an
    /// earlier trial that held the same slot must not free it.
    InUse {
        /// The admission number of the permit that holds the slot.
        admission: u32,
    },
    /// Its trial call's outcome is recorded: the slot stays taken until HalfOpen decides.
    Done,
}

/// A circuit breaker with resilience4j's semantics, as a sans-IO state machine.
///
/// The contract with a driver:
/// - every method takes `now`; a `now` earlier than one already seen counts as that latest time;
/// - each admitted call gets a [`Permit`] that comes back exactly once, with an outcome
///   (`on_outcome`) or without one (`release`, for a cancelled call);
/// - a permit from before the latest state transition is stale: an error that changes nothing;
/// - a permit that is not outstanding (a deserialized copy of one already handed back) is
///   `UnknownPermit`: an error that changes nothing;
/// - deadlines are applied by `handle_timeout` and lazily by any later call;
/// - events queue up for `poll_output`.
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

impl CircuitBreaker {
    /// A Closed breaker with an empty window, or the reason `config` is unusable.
    pub fn new(config: Config) -> Result<CircuitBreaker, ConfigError> {
        // TODO: `config.validate()?` first, then fill every field. One trial slot per
        // permitted HalfOpen call; the jitter's generator is
        // `fastrand::Rng::with_seed(config.jitter_seed())` (the fixed seed, or one per breaker).
        todo!("build a Closed breaker")
    }

    /// The configuration the breaker was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state (as of the latest time given).
    pub fn state(&self) -> State {
        todo!("return the current state")
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
        // TODO: which counts does each state judge by? Closed: the window (rates only once
        // `config.effective_minimum_calls()` calls are in it). HalfOpen: the trials (rates
        // only once all have an outcome). Open: what tripped it. ForcedOpen, Disabled: nothing.
        todo!("report the metrics")
    }

    /// Asks to make a call at `now`: a [`Permit`], or a [`Rejected`] saying why not and,
    /// in Open, how long until trial calls are let through.
    pub fn try_acquire(&mut self, now: Millis) -> Result<Permit, Rejected> {
        // TODO: apply due deadlines first (`advance`), then answer by state:
        // - Closed, Disabled: always a permit (count it in `in_flight`);
        // - HalfOpen: a permit only while a trial slot is free; the permit names its slot,
        //   and the slot remembers which admission holds it;
        // - Open: rejected, `retry_after` = what is left of the wait;
        // - ForcedOpen: rejected, no `retry_after`.
        // Hint: `Permit::new(self.generation, state, slot, admission)` makes a permit; give
        // every admission a new number.
        // Read: book chapter patterns/circuit-breaker.md, "Half-open: trial calls".
        todo!("admit or reject a call")
    }

    /// Records a successful call (see [`on_outcome`](Self::on_outcome)).
    pub fn on_success(
        &mut self,
        now: Millis,
        permit: Permit,
        duration: Millis,
    ) -> Result<(), BreakerError> {
        todo!("delegate to on_outcome")
    }

    /// Records a failed call (see [`on_outcome`](Self::on_outcome)).
    pub fn on_failure(
        &mut self,
        now: Millis,
        permit: Permit,
        duration: Millis,
    ) -> Result<(), BreakerError> {
        todo!("delegate to on_outcome")
    }

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
        // TODO: check the permit before anything else (`take_back`): an error must change nothing.
        // TODO: a call is slow when `duration >= config.slow_call_duration`.
        // TODO: queue `Event::Success`/`Event::Failure` (and `Event::SlowCall`) with
        // `emit_call_event`, then record by the state that admitted the permit.
        // Hint: decide HalfOpen only when every trial has an outcome, like resilience4j.
        // Read: book chapter patterns/circuit-breaker.md, "When does it open?".
        todo!("record the outcome")
    }

    /// Hands back the permit of a call that was cancelled before it had an outcome.
    /// Nothing is recorded; a HalfOpen trial slot is freed for another trial call. A permit
    /// that is not outstanding is `BreakerError::UnknownPermit`, a stale one
    /// `BreakerError::StalePermit`, and either changes nothing.
    pub fn release(&mut self, now: Millis, permit: Permit) -> Result<(), BreakerError> {
        // Hint: if a cancelled trial kept its slot, a breaker whose trial requests time out
        // would stay in HalfOpen forever.
        todo!("free the permit")
    }

    /// Operator: hold the breaker open until another operator command (no-op if already).
    pub fn force_open(&mut self, now: Millis) {
        todo!("go to ForcedOpen")
    }

    /// Operator: admit every call and record nothing until another operator command
    /// (no-op if already Disabled).
    pub fn disable(&mut self, now: Millis) {
        todo!("go to Disabled")
    }

    /// Operator: back to Closed with an empty window and no backoff history, from any state.
    /// Always queues `Event::StateTransition` to Closed with `TransitionReason::Reset`, from
    /// Closed too; the jitter is not re-seeded.
    pub fn reset(&mut self, now: Millis) {
        todo!("go to a fresh Closed")
    }

    /// Operator: go to `state` now. Asking for the current state is
    /// [`BreakerError::InvalidTransition`].
    pub fn transition_to(&mut self, now: Millis, state: State) -> Result<(), BreakerError> {
        todo!("transition on request")
    }

    /// The sans-IO entry point: applies one [`Input`]. An [`Input::Acquire`] is answered
    /// with [`Output::Permitted`] or [`Output::Rejected`] on the output queue.
    pub fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), BreakerError> {
        // TODO: one arm per `Input`, each calling the method that does the work.
        todo!("dispatch the input")
    }

    /// Applies the deadlines that have passed by `now`.
    pub fn handle_timeout(&mut self, now: Millis) {
        todo!("advance the clock")
    }

    /// The next queued output, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        todo!("pop the oldest output")
    }

    /// When the breaker next wants `handle_timeout`: the end of Open, or HalfOpen's
    /// `max_wait_in_half_open` deadline; `None` when no deadline is pending.
    pub fn poll_timeout(&self) -> Option<Millis> {
        todo!("name the next deadline")
    }

    /// Moves the breaker's clock to `now` (never backwards) and applies a due deadline:
    /// Open whose wait is over → HalfOpen; HalfOpen past its deadline → Open.
    fn advance(&mut self, now: Millis) -> Millis {
        // Hint: in Closed, let a time-based window forget expired seconds here too, so
        // `metrics()` does not show calls that have left the window.
        todo!("apply due deadlines")
    }

    /// Should these counts open the breaker? Not before `minimum` calls; then a failure
    /// rate or slow-call rate at or above its threshold does.
    fn verdict(&self, counts: WindowSnapshot, minimum: u32) -> Option<TransitionReason> {
        // Hint: "at or above" — 2 failures out of 4 reach a 50 % threshold.
        todo!("judge the counts")
    }

    /// Checks that `permit` is outstanding in the current generation and marks it returned.
    fn take_back(&mut self, permit: &Permit) -> Result<(), BreakerError> {
        // TODO: another generation → `BreakerError::StalePermit`; not outstanding (already
        // returned, a free or finished HalfOpen slot, or a slot another admission holds now)
        // → `BreakerError::UnknownPermit`.
        // Read: book chapter patterns/circuit-breaker.md, "Permits and generations".
        todo!("validate the permit")
    }

    /// Enters `to`: a new generation (outstanding permits become stale) and fresh
    /// bookkeeping for the state entered; queues `Event::StateTransition`.
    fn transition(&mut self, now: Millis, to: State, reason: TransitionReason) {
        // TODO: entering Closed empties the window and forgets the backoff; entering Open
        // sets `open_until` (see `wait_in_open`); entering HalfOpen frees every trial slot
        // and starts the `max_wait_in_half_open` deadline.
        todo!("change state")
    }

    /// The wait for the opening about to happen: `wait_in_open × multiplier^k` for the
    /// `k`-th consecutive opening, capped at `max_wait`, then spread by the seeded jitter.
    fn wait_in_open(&mut self) -> Millis {
        // Hint: `f64::powi`, then `self.rng.f64()` (in [0, 1)) only when `jitter > 0`.
        // Read: book chapter patterns/circuit-breaker.md, "Backoff and jitter".
        todo!("compute the wait in Open")
    }

    /// Counts a rejection, and queues an `Event::Rejected` for it only when
    /// `config.emit_call_events` is on (a rejection is a per-call event).
    fn reject(&mut self, now: Millis, retry_after: Option<Millis>) -> Rejected {
        todo!("count the rejection")
    }

    /// Queues a per-call event, unless `config.emit_call_events` is off.
    fn emit_call_event(&mut self, event: Event) {
        if self.config.emit_call_events {
            self.push_output(Output::Event(event));
        }
    }

    /// Queues an output; when the queue is full the oldest output is dropped (and counted).
    fn push_output(&mut self, output: Output) {
        if self.outputs.len() >= self.config.max_queued_outputs {
            self.outputs.pop_front();
            self.dropped_outputs += 1;
        }
        self.outputs.push_back(output);
    }
}
