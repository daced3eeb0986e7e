//! [`Breaker`]: the thread-safe handle that lets many tasks share one pure breaker core.
//!
//! The core ([`breaker_core::CircuitBreaker`]) is a plain value that needs `&mut self`.
//! The obvious way to share it is `Mutex<CircuitBreaker>` and a lock per call, which is
//! what the `failsafe` crate does. It is correct, and it makes every call in the process
//! queue on one lock and pay for a full trip through the state machine, even though a
//! healthy breaker has nothing to decide.
//!
//! # Design: a lock-free path for the healthy case
//!
//! One atomic *state word* holds the core's generation and a mode:
//!
//! - `FAST`: the core is Closed **and** its window is below both thresholds, so no
//!   success can open it. Admission is one relaxed atomic load, no lock. A fast, successful
//!   outcome bumps a per-thread *stripe* counter: a counter alone on its cache line that
//!   only its owning thread writes, so the bump is a plain load and store, with no locked
//!   instruction and no cache line shared between threads. Every so often (16 × the window
//!   size calls) a thread takes the lock and feeds the batch into the core.
//! - `LOCKED`: anything else (Open, HalfOpen, a window at or above a threshold, forced
//!   states). Every admission and outcome goes through the mutex and the core decides.
//! - `DISABLED`: the operator switched the breaker off: admit everything, record nothing.
//!
//! Failures, slow calls and everything outside `FAST` take the lock, and under the lock
//! the pending successes are always fed in *first*, so the core judges every failure
//! with all the successes that came before it: the failure rate it acts on is exact. The
//! mode changes only under the lock, written by whoever just looked at the core.
//!
//! A batch is cheap to feed in: `n` successes in a row leave a count-based window of
//! `size` calls in the same state as `min(n, size)` successes do (full of successes), so
//! replaying a batch costs at most one window, however many calls it holds.
//!
//! # The trade-off
//!
//! - Successes reach the core late, in batches. That never hides a failure and cannot
//!   delay an opening (while a success could tip the verdict, by bringing the window up to
//!   `minimum_calls` with the rate at the threshold, the mode is `LOCKED`). The core's own
//!   view of the window is up to date whenever the lock is taken, which includes every
//!   read through [`Breaker::metrics`].
//! - Only count-based windows batch. A time-based window must file each call under the
//!   second it ended in, so there every outcome is recorded under the lock (admission
//!   stays lock-free).
//! - [`breaker_core::Metrics::in_flight`] does not see fast calls; this handle's
//!   [`BreakerMetrics`] counts every outcome. A fast success that races with a state
//!   change is dropped as stale, exactly as the core drops a stale permit, and one call
//!   may be admitted on the fast path just as another thread trips the breaker (any
//!   breaker admits the calls already on their way).
//! - The first 32 threads that use any breaker own a stripe each (in every breaker);
//!   later threads share 8 stripes with an atomic add: still no global lock.
//!
//! The lock is a `parking_lot::Mutex`: uncontended it is one CAS, and under contention
//! it parks instead of spinning, which matters while the breaker is Open and every call
//! takes it.

use std::cell::Cell;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use breaker_core::{
    CircuitBreaker, Config, ConfigError, Event, Metrics, Millis, Outcome, Output, Permit, Rejected,
    State, WindowKind, WindowSnapshot,
};
use parking_lot::Mutex;

use crate::clock::Clock;

/// A thread's batched successes are fed into the core after `FLUSH_PER_WINDOW_SLOT` ×
/// the window size fast calls (rounded up to a power of two): replaying a batch costs at
/// most one window (see `flush`), so this keeps the replay under 1/16 of a core call per
/// call, whatever the window size.
pub const FLUSH_PER_WINDOW_SLOT: u64 = 16;

/// Stripes owned by one thread each: the first threads to use any breaker get one.
const OWNED_STRIPES: usize = 32;

/// Stripes shared (with an atomic add) by the threads that came after.
const SHARED_STRIPES: usize = 8;

/// How many state transitions the handle remembers for [`Breaker::transitions`].
const TRANSITION_LOG: usize = 256;

const MODE_LOCKED: u64 = 0;
const MODE_FAST: u64 = 1;
const MODE_DISABLED: u64 = 2;
const MODE_BITS: u64 = 0b11;

/// A count of fast successes, alone on its cache line (two lines, for CPUs that
/// prefetch pairs), so two threads never write to the same line.
///
/// It only ever grows; the flusher remembers how far it has read (`Guarded::seen`)
/// instead of resetting it, so an owning thread can bump it with a plain load and
/// store, no read-modify-write instruction, and still never lose a count.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Stripe(AtomicU64);

/// Which stripe the current thread writes, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StripeSlot {
    /// Only this thread writes it: load + store.
    Owned(usize),
    /// Other threads write it too: atomic add.
    Shared(usize),
}

thread_local! {
    /// This thread's stripe, handed out on first use; the same index in every breaker.
    static STRIPE_SLOT: Cell<Option<StripeSlot>> = const { Cell::new(None) };
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn stripe_slot() -> StripeSlot {
    STRIPE_SLOT.with(|cell| {
        if let Some(slot) = cell.get() {
            return slot;
        }
        let n = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed);
        let slot = if n < OWNED_STRIPES {
            StripeSlot::Owned(n)
        } else {
            StripeSlot::Shared(OWNED_STRIPES + n % SHARED_STRIPES)
        };
        cell.set(Some(slot));
        slot
    })
}

/// What the mutex guards: the core, and how far each stripe has been read.
#[derive(Debug)]
struct Guarded {
    core: CircuitBreaker,
    seen: [u64; OWNED_STRIPES + SHARED_STRIPES],
}

/// Totals of every outcome this handle has seen, fast or locked.
#[derive(Debug, Default)]
struct Counters {
    /// Successes already fed to the core (pending ones live in the stripes).
    successes: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
    ignored: AtomicU64,
    released: AtomicU64,
    stale: AtomicU64,
}

/// The handle's view of the breaker: the core's [`Metrics`] plus call totals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerMetrics {
    /// The core's numbers (after pending successes were flushed into it).
    pub core: Metrics,
    /// Calls that succeeded, since the breaker was built.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls that were slow (also counted as a success or failure).
    pub slow: u64,
    /// Calls whose outcome was [`Outcome::Ignored`].
    pub ignored: u64,
    /// Admitted calls dropped before they had an outcome.
    pub released: u64,
    /// Outcomes that arrived after the breaker had changed state, so were not recorded.
    pub stale: u64,
}

/// A state transition the handle saw, kept for narration and tests.
pub type Transition = Event;

/// A circuit breaker that many tasks and threads can share (wrap it in an [`Arc`]).
pub struct Breaker {
    word: AtomicU64,
    stripes: Box<[Stripe]>,
    core: Mutex<Guarded>,
    counters: Counters,
    transitions: Mutex<Vec<Transition>>,
    slow_call_duration: Millis,
    /// Count-based windows batch fast successes; time-based ones record each under the
    /// lock, because a batch would file successes under the wrong second.
    batch_successes: bool,
    /// `count & flush_mask == 0`: time to flush this thread's stripe.
    flush_mask: u64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("word", &self.word.load(Ordering::Relaxed))
            .field("core", &self.core.lock().core)
            .finish_non_exhaustive()
    }
}

/// What an admitted call holds: how the handle will record or release it.
///
/// `repr(u64)` makes the tag a full word like the `Fast` payload, so moving a ticket is
/// two same-sized stores and loads (mixed widths defeat the CPU's store-to-load
/// forwarding, which measurably slowed the fast path).
///
/// Not `Copy`: a core permit is handed back once, so the ticket holding it moves.
#[repr(u64)]
#[derive(Debug, PartialEq, Eq)]
enum Ticket {
    /// Recorded or released already.
    Done,
    /// Admitted on the fast path, in the generation and mode of this word.
    Fast { word: u64 },
    /// Admitted by the core under the lock.
    Core(Permit),
    /// Admitted while the breaker is disabled: nothing to record.
    Unrecorded,
}

// ANCHOR: span_events
/// A rejection as an event on the current span (the rejected call's): `tracing-opentelemetry`
/// makes it an OpenTelemetry span event named by its message, `breaker.rejected`.
fn record_rejection(rejected: &Rejected) {
    tracing::event!(
        name: "breaker.rejected",
        tracing::Level::INFO,
        breaker.state = rejected.state.name(),
        breaker.retry_after_ms = rejected.retry_after.map(|wait| wait.0),
        "breaker.rejected"
    );
}

/// A state change as an event on the current span: the span of the call (or the tick)
/// whose outcome moved the breaker.
fn record_transition(event: &Event) {
    if let Event::StateTransition {
        from, to, reason, ..
    } = event
    {
        tracing::event!(
            name: "breaker.transition",
            tracing::Level::INFO,
            breaker.from = from.name(),
            breaker.to = to.name(),
            breaker.reason = ?reason,
            "breaker.transition"
        );
    }
}
// ANCHOR_END: span_events

impl Breaker {
    /// A breaker with `config`, reading time from `clock`.
    ///
    /// The handle keeps its own per-outcome counters, so it switches the core's per-call
    /// events off (`emit_call_events = false`); state transitions are always kept.
    pub fn new(config: Config, clock: impl Clock) -> Result<Self, ConfigError> {
        let slow_call_duration = config.slow_call_duration;
        let (batch_successes, flush_every) = match config.window {
            WindowKind::CountBased { size } => (
                true,
                (u64::from(size) * FLUSH_PER_WINDOW_SLOT).next_power_of_two(),
            ),
            WindowKind::TimeBased { .. } => (false, 1),
        };
        let core = CircuitBreaker::new(Config {
            emit_call_events: false,
            ..config
        })?;
        let breaker = Self {
            word: AtomicU64::new(MODE_LOCKED),
            stripes: (0..OWNED_STRIPES + SHARED_STRIPES)
                .map(|_| Stripe::default())
                .collect(),
            core: Mutex::new(Guarded {
                core,
                seen: [0; OWNED_STRIPES + SHARED_STRIPES],
            }),
            counters: Counters::default(),
            transitions: Mutex::new(Vec::new()),
            slow_call_duration,
            batch_successes,
            flush_mask: flush_every - 1,
            clock: Arc::new(clock),
        };
        breaker.settle(&mut breaker.core.lock().core);
        Ok(breaker)
    }

    /// The breaker's clock reading now (what it passes to the core).
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    // ANCHOR: try_acquire
    /// Asks to make a call. Hold the returned [`Admission`] for the duration of the call
    /// and [record](Admission::record) its outcome; dropping it instead hands the permit
    /// back unrecorded, which frees a HalfOpen trial slot.
    #[inline]
    pub fn try_acquire(&self) -> Result<Admission<&Self>, Rejected> {
        Ok(Admission::new(self, self.acquire_ticket()?))
    }

    /// [`try_acquire`](Self::try_acquire) for a future that must own its admission.
    #[inline]
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<Admission<Arc<Self>>, Rejected> {
        Ok(Admission::new(Arc::clone(self), self.acquire_ticket()?))
    }

    #[inline]
    fn acquire_ticket(&self) -> Result<Ticket, Rejected> {
        // The fast path: one load. Relaxed is enough: the word guards no other memory,
        // and a stale read costs at most one call admitted as the breaker trips, which
        // any breaker allows (the call was on its way anyway); its outcome is then stale.
        let word = self.word.load(Ordering::Relaxed);
        if word & MODE_BITS == MODE_FAST {
            return Ok(Ticket::Fast { word });
        }
        self.acquire_slow(word)
    }

    /// Everything but the healthy case: out of line, so the fast path stays small enough
    /// to inline into the caller.
    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, word: u64) -> Result<Ticket, Rejected> {
        if word & MODE_BITS == MODE_DISABLED {
            return Ok(Ticket::Unrecorded);
        }
        let permit = self
            .locked(|core, now| core.try_acquire(now))
            .inspect_err(record_rejection)?;
        Ok(match permit.admitted_in() {
            State::Disabled => Ticket::Unrecorded,
            _ => Ticket::Core(permit),
        })
    }
    // ANCHOR_END: try_acquire

    /// Runs `f` on the core under the lock: pending successes first, the mode after.
    fn locked<R>(&self, f: impl FnOnce(&mut CircuitBreaker, Millis) -> R) -> R {
        let now = self.clock.now();
        let mut guarded = self.core.lock();
        self.flush(&mut guarded, now);
        let result = f(&mut guarded.core, now);
        self.settle(&mut guarded.core);
        result
    }

    // ANCHOR: record
    #[inline]
    fn record(&self, ticket: Ticket, outcome: Outcome, duration: Millis) {
        if let Ticket::Fast { word } = ticket
            && self.batch_successes
            && outcome == Outcome::Success
            && duration < self.slow_call_duration
            // The breaker may have moved on while this call ran: then it is stale.
            && same_generation(self.word.load(Ordering::Relaxed), word)
        {
            let count = match stripe_slot() {
                StripeSlot::Owned(i) => {
                    // Only this thread writes this stripe: no locked instruction.
                    let stripe = &self.stripes[i].0;
                    let count = stripe.load(Ordering::Relaxed) + 1;
                    stripe.store(count, Ordering::Relaxed);
                    count
                }
                StripeSlot::Shared(i) => self.stripes[i].0.fetch_add(1, Ordering::Relaxed) + 1,
            };
            if count & self.flush_mask == 0 {
                self.flush_now();
            }
            return;
        }
        self.record_slow(ticket, outcome, duration);
    }

    #[cold]
    #[inline(never)]
    fn flush_now(&self) {
        self.locked(|_, _| ());
    }

    #[cold]
    #[inline(never)]
    fn record_slow(&self, ticket: Ticket, outcome: Outcome, duration: Millis) {
        match ticket {
            Ticket::Done | Ticket::Unrecorded => {}
            Ticket::Fast { word } => {
                if outcome == Outcome::Ignored {
                    // The core never heard of this call, so there is nothing to free.
                    self.counters.ignored.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                self.locked(|core, now| {
                    let current = self.word.load(Ordering::Relaxed);
                    if same_generation(current, word) && core.state() == State::Closed {
                        // Turn the fast admission into a core permit and record it at
                        // once: the same counts as if it had taken the lock on the way in.
                        if let Ok(permit) = core.try_acquire(now) {
                            self.record_in_core(core, now, permit, outcome, duration);
                        }
                    } else {
                        self.counters.stale.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Ticket::Core(permit) => {
                self.locked(|core, now| self.record_in_core(core, now, permit, outcome, duration));
            }
        }
    }
    // ANCHOR_END: record

    fn record_in_core(
        &self,
        core: &mut CircuitBreaker,
        now: Millis,
        permit: Permit,
        outcome: Outcome,
        duration: Millis,
    ) {
        if core.on_outcome(now, permit, outcome, duration).is_err() {
            // Stale (the breaker changed state during the call) or already handed back:
            // the core ignores it, and so do we, apart from counting it.
            self.counters.stale.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let counter = match outcome {
            Outcome::Success => &self.counters.successes,
            Outcome::Failure => &self.counters.failures,
            Outcome::Ignored => &self.counters.ignored,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if outcome != Outcome::Ignored && duration >= self.slow_call_duration {
            self.counters.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[cold]
    #[inline(never)]
    fn release(&self, ticket: Ticket) {
        self.counters.released.fetch_add(1, Ordering::Relaxed);
        if let Ticket::Core(permit) = ticket {
            // A stale permit is simply not outstanding any more: nothing to free.
            self.locked(|core, now| {
                let _ = core.release(now, permit);
            });
        }
        // Fast and disabled admissions hold nothing in the core.
    }

    // ANCHOR: flush
    /// Feeds the successes counted in the stripes since the last flush into the core.
    fn flush(&self, guarded: &mut Guarded, now: Millis) {
        let mut pending = 0u64;
        for (stripe, seen) in self.stripes.iter().zip(guarded.seen.iter_mut()) {
            let count = stripe.0.load(Ordering::Relaxed);
            pending += count.wrapping_sub(*seen);
            *seen = count;
        }
        if pending == 0 {
            return;
        }
        let core = &mut guarded.core;
        // Only fast admissions of the current generation reach a stripe (see `record`);
        // if the breaker has left Closed since, they describe a state that is gone.
        if core.state() != State::Closed {
            self.counters.stale.fetch_add(pending, Ordering::Relaxed);
            return;
        }
        self.counters
            .successes
            .fetch_add(pending, Ordering::Relaxed);
        // Feeding a count-based window of `size` more than `size` successes in a row
        // leaves it exactly as feeding it `size` of them: full of successes. So the
        // replay costs at most one window, however many calls were batched.
        let replay = match core.config().window {
            WindowKind::CountBased { size } => pending.min(u64::from(size)),
            WindowKind::TimeBased { .. } => pending,
        };
        for _ in 0..replay {
            // Closed admits everything, and successes cannot open it: nothing here fails
            // unless the breaker's own rules changed under us, and then we stop.
            let Ok(permit) = core.try_acquire(now) else {
                break;
            };
            if core
                .on_outcome(now, permit, Outcome::Success, Millis::ZERO)
                .is_err()
                || core.state() != State::Closed
            {
                break;
            }
        }
    }
    // ANCHOR_END: flush

    /// After every input: drain the core's outputs and publish the mode the core is in now.
    fn settle(&self, core: &mut CircuitBreaker) {
        while let Some(output) = core.poll_output() {
            if let Output::Event(event @ Event::StateTransition { .. }) = output {
                record_transition(&event);
                let mut log = self.transitions.lock();
                if log.len() == TRANSITION_LOG {
                    log.remove(0);
                }
                log.push(event);
            }
        }
        let mode = match core.state() {
            State::Closed if success_cannot_open(core) => MODE_FAST,
            State::Disabled => MODE_DISABLED,
            _ => MODE_LOCKED,
        };
        self.word
            .store(u64::from(core.generation()) << 2 | mode, Ordering::Relaxed);
    }

    /// Applies deadlines that are due (end of Open, a HalfOpen that waited too long).
    ///
    /// Admission applies them anyway; call this to see an up-to-date state without a call.
    pub fn tick(&self) {
        self.locked(|core, now| core.handle_timeout(now));
    }

    /// The state now (deadlines applied).
    pub fn state(&self) -> State {
        self.locked(|core, now| {
            core.handle_timeout(now);
            core.state()
        })
    }

    /// When the core next wants the clock (end of Open, HalfOpen's deadline), if ever.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.core.lock().core.poll_timeout()
    }

    /// The numbers, with pending successes flushed and deadlines applied first.
    pub fn metrics(&self) -> BreakerMetrics {
        let core = self.locked(|core, now| {
            core.handle_timeout(now);
            core.metrics()
        });
        let c = &self.counters;
        BreakerMetrics {
            core,
            successes: c.successes.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            slow: c.slow.load(Ordering::Relaxed),
            ignored: c.ignored.load(Ordering::Relaxed),
            released: c.released.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
        }
    }

    /// The state transitions seen so far (the latest 256 of them).
    pub fn transitions(&self) -> Vec<Transition> {
        self.transitions.lock().clone()
    }

    /// Operator: hold the breaker open until [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.locked(|core, now| core.force_open(now));
    }

    /// Operator: back to a fresh Closed.
    pub fn reset(&self) {
        self.locked(|core, now| core.reset(now));
    }

    /// Whether admission is currently lock-free (Closed and healthy): for tests and curiosity.
    pub fn is_fast_path(&self) -> bool {
        self.word.load(Ordering::Relaxed) & MODE_BITS == MODE_FAST
    }
}

/// Whether two state words belong to the same generation of the core (modes may differ).
#[inline]
fn same_generation(a: u64, b: u64) -> bool {
    (a ^ b) >> 2 == 0
}

/// In Closed, could recording a *success* open the breaker? Only if a rate is already at
/// or above its threshold (a success lowers or keeps both rates; it can only tip the
/// verdict by bringing the window up to `minimum_calls`).
fn success_cannot_open(core: &CircuitBreaker) -> bool {
    let metrics = core.metrics();
    let window = WindowSnapshot {
        calls: metrics.buffered_calls,
        failed: metrics.failed_calls,
        slow: metrics.slow_calls,
        slow_failed: metrics.slow_failed_calls,
    };
    let config = core.config();
    window.failure_rate() < config.failure_rate_threshold
        && window.slow_call_rate() < config.slow_call_rate_threshold
}

// ANCHOR: admission
/// One admitted call. Record its outcome with [`record`](Self::record); if it is dropped
/// instead (the request future was cancelled or timed out from outside), `Drop` hands the
/// permit back, so a HalfOpen trial slot is never lost and the breaker cannot get stuck.
#[must_use = "dropping an admission releases it unrecorded; call `record` with the outcome"]
#[derive(Debug)]
pub struct Admission<B: Deref<Target = Breaker>> {
    breaker: B,
    ticket: Ticket,
}

impl<B: Deref<Target = Breaker>> Admission<B> {
    #[inline]
    fn new(breaker: B, ticket: Ticket) -> Self {
        Self { breaker, ticket }
    }

    /// Records how the call went and how long it took.
    #[inline]
    pub fn record(mut self, outcome: Outcome, duration: Millis) {
        let ticket = std::mem::replace(&mut self.ticket, Ticket::Done);
        self.breaker.record(ticket, outcome, duration);
    }

    /// The breaker that admitted the call.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Whether this call is one of HalfOpen's trial calls.
    pub fn is_trial(&self) -> bool {
        matches!(&self.ticket, Ticket::Core(permit) if permit.is_trial())
    }
}

impl<B: Deref<Target = Breaker>> Drop for Admission<B> {
    #[inline]
    fn drop(&mut self) {
        if !matches!(self.ticket, Ticket::Done) {
            let ticket = std::mem::replace(&mut self.ticket, Ticket::Done);
            self.breaker.release(ticket);
        }
    }
}
// ANCHOR_END: admission

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::ManualClock;

    fn config() -> Config {
        Config {
            window: WindowKind::CountBased { size: 10 },
            minimum_calls: 4,
            permitted_calls_in_half_open: 2,
            wait_in_open: Millis(1000),
            ..Config::default()
        }
    }

    #[test]
    fn healthy_breaker_admits_on_the_fast_path_and_counts_everything() {
        let breaker = Breaker::new(config(), ManualClock::default()).unwrap();
        assert!(breaker.is_fast_path());
        for _ in 0..100 {
            breaker
                .try_acquire()
                .unwrap()
                .record(Outcome::Success, Millis(1));
        }
        let metrics = breaker.metrics();
        assert_eq!(metrics.successes, 100);
        assert_eq!(metrics.core.buffered_calls, 10);
        assert_eq!(metrics.core.state, State::Closed);
    }

    #[test]
    fn failures_see_every_success_before_them() {
        let breaker = Breaker::new(config(), ManualClock::default()).unwrap();
        // 3 successes then 3 failures = 50 % of 6: opens exactly at the third failure,
        // which it would not if the successes had been lost or counted late.
        for _ in 0..3 {
            breaker
                .try_acquire()
                .unwrap()
                .record(Outcome::Success, Millis(1));
        }
        for expected in [State::Closed, State::Closed, State::Open] {
            breaker
                .try_acquire()
                .unwrap()
                .record(Outcome::Failure, Millis(1));
            assert_eq!(breaker.state(), expected);
        }
        assert!(!breaker.is_fast_path());
    }

    #[test]
    fn the_fast_path_turns_off_while_a_success_could_open_the_breaker() {
        let breaker = Breaker::new(config(), ManualClock::default()).unwrap();
        // 2 failures out of 2: 100 %, but below minimum_calls (4). A success now brings
        // the window closer to a verdict, so it must be judged by the core.
        for _ in 0..2 {
            breaker
                .try_acquire()
                .unwrap()
                .record(Outcome::Failure, Millis(1));
        }
        assert!(!breaker.is_fast_path());
        breaker
            .try_acquire()
            .unwrap()
            .record(Outcome::Success, Millis(1));
        breaker
            .try_acquire()
            .unwrap()
            .record(Outcome::Success, Millis(1));
        // 2 of 4 failed = 50 %: the fourth call, a success, opened it.
        assert_eq!(breaker.state(), State::Open);
    }

    #[test]
    fn dropped_trial_admissions_free_their_slot() {
        let clock = Arc::new(ManualClock::default());
        let breaker = Breaker::new(config(), Arc::clone(&clock)).unwrap();
        breaker.force_open();
        breaker.reset();
        for _ in 0..4 {
            breaker
                .try_acquire()
                .unwrap()
                .record(Outcome::Failure, Millis(1));
        }
        clock.advance(Millis(1000));
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        assert!(first.is_trial() && second.is_trial());
        assert!(breaker.try_acquire().is_err(), "only two trial slots");
        drop(first);
        let again = breaker.try_acquire().unwrap();
        again.record(Outcome::Success, Millis(1));
        second.record(Outcome::Success, Millis(1));
        assert_eq!(breaker.state(), State::Closed);
    }
}
