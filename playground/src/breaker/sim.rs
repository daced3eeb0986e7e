//! The breaker playground's simulation: a simulated clock, a simulated downstream and the
//! real [`CircuitBreaker`] from `breaker-core`, wired together the way the lab's tower layer
//! does.
//!
//! The page never decides anything about the breaker. It presses buttons (send one, send a
//! burst, steady traffic, change the downstream, the operator's force open, disable and back
//! to normal) and moves the clock; this module turns those
//! into [`Input`]s for the core, drains its [`Output`]s after every input, and keeps what the
//! page draws: one mark per call, coloured by the event the core emitted for it, the state
//! transitions, the failure rate the core reports, and a log of the core's events.
//!
//! Determinism: the downstream's randomness comes from a generator seeded by the scenario's
//! seed and is drawn once per admitted call, in call order; the clock is virtual and events
//! are processed in time order however the page slices time (60 small steps or one big jump
//! give the same run). So a scenario is fully described by its settings and the list of
//! actions with their times, which is what [`BreakerSim::query`] writes into the URL.

use breaker_core::{CircuitBreaker, Event, Input, Millis, Outcome, Output, Permit};

use crate::breaker::action::Action;
use crate::breaker::settings::{BreakerSettings, Downstream};
use crate::breaker::view::{CallMark, Frame, LogLine, MarkKind, RatePoint, Totals, Transition};
use crate::breaker::wording;
use crate::query;
use crate::settings::Settings;

/// The call a batch of outputs is about.
#[derive(Clone, Copy, Debug)]
struct CallRef {
    id: u64,
    sent: u64,
}

#[derive(Debug)]
struct PendingCall {
    id: u64,
    permit: Permit,
    sent: u64,
    done_at: u64,
    outcome: Outcome,
}

/// The breaker, its downstream and its clock.
#[derive(Debug)]
pub struct BreakerSim {
    /// The settings the scenario started with (what the URL holds).
    initial: BreakerSettings,
    /// The settings now, after the actions (what the controls show).
    current: BreakerSettings,
    breaker: CircuitBreaker,
    rng: fastrand::Rng,
    now: u64,
    next_call_id: u64,
    pending: Vec<PendingCall>,
    /// Steady traffic: when it started and how many calls it has sent since.
    steady_since: u64,
    steady_sent: u64,
    actions: Vec<(u64, Action)>,
    totals: Totals,
    last_rates: Option<(Option<f32>, Option<f32>)>,
    // Not yet handed to the page.
    marks: Vec<CallMark>,
    transitions: Vec<Transition>,
    rates: Vec<RatePoint>,
    log: Vec<LogLine>,
}

/// The longest the page may ask the clock to jump at once (an hour): more would only mean a
/// frozen tab while millions of steady calls are simulated.
pub const MAX_ADVANCE_MS: u64 = 3_600_000;

impl BreakerSim {
    /// A fresh scenario with these settings, at time 0.
    pub fn new(settings: BreakerSettings) -> BreakerSim {
        // The settings' ranges keep the config valid; should a combination still be
        // refused, the defaults run instead of a blank page.
        // (No `expect`: formatting the error would pull float formatting into the WASM.)
        let breaker = CircuitBreaker::new(settings.config())
            .or_else(|_| CircuitBreaker::new(BreakerSettings::default().config()))
            .unwrap_or_else(|_| panic!("the default settings make a valid configuration"));
        let mut sim = BreakerSim {
            rng: fastrand::Rng::with_seed(settings.seed),
            initial: settings.clone(),
            current: settings,
            breaker,
            now: 0,
            next_call_id: 1,
            pending: Vec::new(),
            steady_since: 0,
            steady_sent: 0,
            actions: Vec::new(),
            totals: Totals::default(),
            last_rates: None,
            marks: Vec::new(),
            transitions: Vec::new(),
            rates: Vec::new(),
            log: Vec::new(),
        };
        sim.sample_rates();
        sim
    }

    /// Rebuilds a shared scenario: the settings, then each action of `do` at its time, then
    /// the clock to `t`. Unreadable actions are skipped.
    pub fn from_query(text: &str) -> BreakerSim {
        let mut sim = BreakerSim::new(BreakerSettings::from_query(text));
        let mut until = 0;
        for (key, value) in query::pairs(text) {
            match key {
                "do" => {
                    for item in value.split('_') {
                        let Some((token, at)) = item.split_once('.') else {
                            continue;
                        };
                        if let (Some(action), Ok(at)) = (Action::parse(token), at.parse::<u64>()) {
                            sim.advance_to(at.max(sim.now));
                            sim.apply(action);
                        }
                    }
                }
                "t" => query::set_in_range(&mut until, value, 0, 24 * MAX_ADVANCE_MS),
                _ => {}
            }
        }
        sim.advance_to(until.max(sim.now));
        sim
    }

    /// The scenario as a query string: initial settings, actions with their times, the clock.
    pub fn query(&self) -> String {
        let mut pairs = self.initial.pairs();
        if !self.actions.is_empty() {
            let script: Vec<String> = self
                .actions
                .iter()
                .map(|(at, action)| format!("{}.{at}", action.token()))
                .collect();
            pairs.push(("do", script.join("_")));
        }
        if self.now > 0 {
            pairs.push(("t", self.now.to_string()));
        }
        query::to_query(pairs)
    }

    /// The settings as they are now (for the controls).
    pub fn settings(&self) -> &BreakerSettings {
        &self.current
    }

    /// The simulated clock, in ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The breaker itself, read-only.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Does what the reader asked, now, and remembers it for the URL.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::SendOne => self.send_one(),
            Action::Burst => {
                for _ in 0..self.current.burst {
                    self.send_one();
                }
            }
            Action::Steady(on) => {
                if on != self.current.steady {
                    self.current.steady = on;
                    self.steady_since = self.now;
                    self.steady_sent = 0;
                }
            }
            Action::Downstream(mode) => self.current.downstream = mode,
            Action::Rate(rate) => {
                if rate != self.current.rate {
                    self.current.rate = rate;
                    self.steady_since = self.now;
                    self.steady_sent = 0;
                }
            }
            Action::FailurePercent(percent) => self.current.failure_percent = percent,
            Action::ForceOpen => self.operator(Input::ForceOpen),
            Action::Disable => self.operator(Input::Disable),
            Action::Reset => self.operator(Input::Reset),
        }
        if action.is_setting() && self.actions.is_empty() && self.now == 0 {
            // Nothing has happened yet: this is the scenario's starting point, not an event.
            self.initial = self.current.clone();
        } else {
            self.actions.push((self.now, action));
        }
    }

    /// An operator command: the core changes state (calls still out become stale, and come
    /// back late) and says so in a `StateTransition` event, unless it is already there.
    fn operator(&mut self, input: Input) {
        // ForceOpen, Disable and Reset cannot fail; only permits and TransitionTo can.
        let _ = self.breaker.handle_input(Millis(self.now), input);
        self.drain(None);
    }

    /// Moves the clock forward by `ms`, letting everything due happen in time order.
    pub fn advance(&mut self, ms: u64) {
        self.advance_to(self.now.saturating_add(ms.min(MAX_ADVANCE_MS)));
    }

    /// Jumps to the next moment something happens (a reply, a deadline, a steady call);
    /// with nothing scheduled, one second passes.
    pub fn step(&mut self) {
        let next = self.next_event().unwrap_or(self.now + 1000);
        self.advance_to(next.max(self.now));
    }

    /// The time of the next scheduled happening, if any.
    fn next_event(&self) -> Option<u64> {
        let reply = self.pending.iter().map(|call| call.done_at).min();
        let deadline = self.breaker.poll_timeout().map(|at| at.0);
        [reply, deadline, self.next_arrival()]
            .into_iter()
            .flatten()
            .min()
    }

    fn next_arrival(&self) -> Option<u64> {
        self.current.steady.then(|| {
            self.steady_since + (self.steady_sent + 1) * 1000 / u64::from(self.current.rate.max(1))
        })
    }

    fn advance_to(&mut self, target: u64) {
        // Bounded so a bug can never hang the page; a real run needs a few thousand turns.
        for _ in 0..1_000_000 {
            let Some(at) = self.next_event().filter(|at| *at <= target) else {
                break;
            };
            self.now = at.max(self.now);
            let now = self.now;
            // Replies first, then the breaker's deadline, then new traffic: a trial call
            // sent at the very instant Open ends finds the breaker already HalfOpen.
            let (mut due, pending): (Vec<PendingCall>, Vec<PendingCall>) =
                std::mem::take(&mut self.pending)
                    .into_iter()
                    .partition(|call| call.done_at <= now);
            self.pending = pending;
            due.sort_by_key(|call| (call.done_at, call.id));
            for call in due {
                self.complete(call);
            }
            if self.breaker.poll_timeout().is_some_and(|at| at.0 <= now) {
                self.breaker.handle_timeout(Millis(now));
                self.drain(None);
            }
            if self.next_arrival().is_some_and(|at| at <= now) {
                self.steady_sent += 1;
                self.send_one();
            }
        }
        self.now = target.max(self.now);
        self.breaker.handle_timeout(Millis(self.now));
        self.drain(None);
    }

    /// What the simulated downstream does with one call: its outcome and how long it takes.
    fn call_downstream(&mut self) -> (Outcome, u64) {
        let quick = 20 + self.rng.u64(0..=80);
        match self.current.downstream {
            Downstream::Healthy => (Outcome::Success, quick),
            Downstream::Failing => {
                if self.rng.u32(0..100) < self.current.failure_percent {
                    // A failing service usually fails fast (a 503 from its proxy).
                    (Outcome::Failure, 5 + self.rng.u64(0..=30))
                } else {
                    (Outcome::Success, quick)
                }
            }
            Downstream::Slow => {
                let base = self.current.slow_latency_ms;
                let spread = base / 10;
                (
                    Outcome::Success,
                    base - spread + self.rng.u64(0..=spread * 2),
                )
            }
        }
    }

    fn send_one(&mut self) {
        let id = self.next_call_id;
        self.next_call_id += 1;
        self.totals.sent += 1;
        // Acquire cannot fail as an input; its answer comes out as an output.
        let _ = self.breaker.handle_input(Millis(self.now), Input::Acquire);
        let call = CallRef { id, sent: self.now };
        if let Some(permit) = self.drain(Some(call)) {
            self.totals.admitted += 1;
            let (outcome, duration) = self.call_downstream();
            self.pending.push(PendingCall {
                id,
                permit,
                sent: self.now,
                done_at: self.now + duration,
                outcome,
            });
        }
    }

    fn complete(&mut self, call: PendingCall) {
        let duration = Millis(call.done_at - call.sent);
        let reported = self.breaker.handle_input(
            Millis(self.now),
            Input::Outcome {
                permit: call.permit,
                outcome: call.outcome,
                duration,
            },
        );
        let before = self.marks.len();
        self.drain(Some(CallRef {
            id: call.id,
            sent: call.sent,
        }));
        if let Err(error) = reported {
            // The breaker moved on while this call was out: its outcome describes a state
            // that no longer exists, so the core refuses it (and we show that).
            self.totals.late += 1;
            self.log.push(LogLine {
                t: self.now,
                kind: "late",
                text: wording::late_text(call.id, &error),
                raw: serde_json::to_string(&error).unwrap_or_default(),
            });
            self.marks.push(CallMark {
                id: call.id,
                sent: call.sent,
                done: Some(self.now),
                kind: MarkKind::Late,
            });
        } else if self.marks.len() == before {
            // Only Success/Failure/SlowCall events make marks; an event-less outcome
            // (not produced by this driver) would otherwise vanish from the timeline.
            self.marks.push(CallMark {
                id: call.id,
                sent: call.sent,
                done: Some(self.now),
                kind: MarkKind::Late,
            });
        }
    }

    /// Drains the core's outputs into marks, transitions and log lines; returns a permit if
    /// one was granted. `call` is the call the outputs are about, if any.
    fn drain(&mut self, call: Option<CallRef>) -> Option<Permit> {
        let mut granted = None;
        while let Some(output) = self.breaker.poll_output() {
            match output {
                Output::Permitted(permit) => granted = Some(permit),
                Output::Rejected(_) => {
                    self.totals.rejected += 1;
                    if let Some(call) = call {
                        self.marks.push(CallMark {
                            id: call.id,
                            sent: call.sent,
                            done: None,
                            kind: MarkKind::Rejected,
                        });
                    }
                }
                Output::Event(event) => self.record_event(event, call),
            }
        }
        self.sample_rates();
        granted
    }

    fn record_event(&mut self, event: Event, call: Option<CallRef>) {
        match event {
            Event::StateTransition { at, from, to, .. } => {
                self.transitions.push(Transition { at: at.0, from, to });
            }
            Event::Success { .. } => self.mark_outcome(call, MarkKind::Success),
            Event::Failure { .. } => self.mark_outcome(call, MarkKind::Failure),
            Event::SlowCall { failed, .. } => self.mark_outcome(
                call,
                if failed {
                    MarkKind::SlowFailure
                } else {
                    MarkKind::Slow
                },
            ),
            Event::Ignored { .. } | Event::Released { .. } | Event::Rejected { .. } => {}
        }
        let (kind, text) =
            wording::event_line(&event, call.map(|call| call.id), self.breaker.config());
        self.log.push(LogLine {
            t: event.at().0,
            kind,
            text,
            raw: serde_json::to_string(&event).unwrap_or_default(),
        });
    }

    /// A Success or Failure event makes the call's mark; a SlowCall event right after it
    /// refines that mark.
    fn mark_outcome(&mut self, call: Option<CallRef>, kind: MarkKind) {
        let Some(call) = call else { return };
        let refines = matches!(kind, MarkKind::Slow | MarkKind::SlowFailure);
        match self.marks.last_mut() {
            Some(mark) if refines && mark.id == call.id => mark.kind = kind,
            _ => self.marks.push(CallMark {
                id: call.id,
                sent: call.sent,
                done: Some(self.now),
                kind,
            }),
        }
    }

    fn sample_rates(&mut self) {
        let metrics = self.breaker.metrics();
        let rates = (metrics.failure_rate, metrics.slow_call_rate);
        if self.last_rates != Some(rates) {
            self.last_rates = Some(rates);
            self.rates.push(RatePoint {
                t: self.now,
                failure: rates.0,
                slow: rates.1,
            });
        }
    }

    /// Everything new since the last call, and the current state.
    pub fn take_frame(&mut self) -> Frame {
        Frame {
            now: self.now,
            state: self.breaker.state(),
            metrics: self.breaker.metrics(),
            next_timeout: self.breaker.poll_timeout().map(|at| at.0),
            pending: self.pending.len(),
            totals: self.totals,
            marks: std::mem::take(&mut self.marks),
            transitions: std::mem::take(&mut self.transitions),
            rates: std::mem::take(&mut self.rates),
            log: std::mem::take(&mut self.log),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breaker_core::State;

    fn failing() -> BreakerSim {
        BreakerSim::from_query("down=failing&pct=100")
    }

    #[test]
    fn a_failing_downstream_opens_the_breaker_and_later_calls_are_rejected() {
        let mut sim = failing();
        for _ in 0..5 {
            sim.apply(Action::SendOne);
            sim.advance(200);
        }
        assert_eq!(sim.breaker().state(), State::Open);
        sim.apply(Action::SendOne);
        let frame = sim.take_frame();
        assert_eq!(frame.state, State::Open);
        assert_eq!(frame.metrics.failure_rate, Some(100.0));
        assert!(frame.marks.iter().any(|m| m.kind == MarkKind::Rejected));
        assert_eq!(
            frame
                .marks
                .iter()
                .filter(|m| m.kind == MarkKind::Failure)
                .count(),
            5
        );
        assert!(
            frame.transitions.iter().any(|t| t.to == State::Open),
            "{:?}",
            frame.transitions
        );
    }

    #[test]
    fn after_the_wait_in_open_the_breaker_is_half_open_and_trials_decide() {
        let mut sim = failing();
        sim.apply(Action::Burst);
        sim.advance(500);
        assert_eq!(sim.breaker().state(), State::Open);
        // Step jumps straight to Open's deadline: nothing else is scheduled.
        sim.step();
        assert_eq!(sim.breaker().state(), State::HalfOpen);
        assert_eq!(sim.now(), 5000 + sim.take_frame().transitions[0].at);
        sim.apply(Action::Downstream(Downstream::Healthy));
        for _ in 0..3 {
            sim.apply(Action::SendOne);
        }
        sim.advance(500);
        assert_eq!(sim.breaker().state(), State::Closed);
    }

    #[test]
    fn calls_still_out_when_the_breaker_opens_come_back_late() {
        let mut sim = BreakerSim::from_query("down=slow&lat=3000&slowms=1000&slow=50&burst=6");
        sim.apply(Action::Burst);
        sim.advance(2900);
        sim.apply(Action::Downstream(Downstream::Failing));
        sim.apply(Action::FailurePercent(100));
        sim.advance(1000);
        // Slow calls: a slow-call rate of 100% opened the breaker at the 5th reply (minimum 5);
        // the 6th reply describes the old Closed state and is refused.
        let frame = sim.take_frame();
        assert_eq!(frame.state, State::Open);
        assert!(frame.marks.iter().any(|m| m.kind == MarkKind::Slow));
        assert_eq!(frame.totals.late, 1, "{:?}", frame.marks);
    }

    #[test]
    fn steady_traffic_sends_at_the_rate() {
        let mut sim = BreakerSim::from_query("rate=10");
        sim.apply(Action::Steady(true));
        sim.advance(1000);
        assert_eq!(sim.take_frame().totals.sent, 10);
    }

    #[test]
    fn a_scenario_replays_identically_from_its_query() {
        let mut sim = BreakerSim::from_query("down=failing&pct=50&seed=7&rate=20");
        sim.apply(Action::Steady(true));
        sim.advance(3_000);
        sim.apply(Action::Downstream(Downstream::Healthy));
        sim.apply(Action::Burst);
        // Slice time differently: the run must not depend on frame sizes.
        for _ in 0..70 {
            sim.advance(100);
        }
        let query = sim.query();
        assert!(
            query.contains("do=s1.0") || query.contains("steady=1"),
            "{query}"
        );
        let mut replay = BreakerSim::from_query(&query);
        assert_eq!(replay.now(), sim.now());
        assert_eq!(replay.query(), query);
        let (a, b) = (sim.take_frame(), replay.take_frame());
        assert_eq!(a.totals, b.totals);
        assert_eq!(a.metrics, b.metrics);
        assert_eq!(replay.settings().downstream, Downstream::Healthy);
    }

    fn transitions_to(frame: &Frame) -> Vec<State> {
        frame.transitions.iter().map(|t| t.to).collect()
    }

    #[test]
    fn forcing_open_rejects_every_call_until_back_to_normal() {
        // A healthy downstream: only the operator can explain the rejections.
        let mut sim = BreakerSim::from_query("");
        sim.apply(Action::SendOne);
        sim.advance(200);
        sim.take_frame();
        sim.apply(Action::ForceOpen);
        assert_eq!(sim.breaker().state(), State::ForcedOpen);
        sim.apply(Action::Burst);
        // No deadline ends ForcedOpen: an hour later it still holds.
        sim.step();
        sim.advance(MAX_ADVANCE_MS);
        let frame = sim.take_frame();
        assert_eq!(frame.state, State::ForcedOpen);
        assert_eq!(frame.next_timeout, None);
        assert_eq!(transitions_to(&frame), [State::ForcedOpen]);
        assert_eq!(frame.totals.rejected, 10);
        assert_eq!(
            frame
                .marks
                .iter()
                .filter(|m| m.kind == MarkKind::Rejected)
                .count(),
            10
        );
        assert!(
            frame.log.iter().any(|line| line.kind == "state_transition"
                && line.text.contains("an operator forced it open")),
            "{:?}",
            frame.log
        );
        // Forcing open again changes nothing: the core stays where it is.
        sim.apply(Action::ForceOpen);
        assert!(sim.take_frame().transitions.is_empty());

        sim.apply(Action::Reset);
        sim.apply(Action::SendOne);
        sim.advance(200);
        let frame = sim.take_frame();
        assert_eq!(frame.state, State::Closed);
        assert_eq!(transitions_to(&frame), [State::Closed]);
        assert_eq!(
            frame.totals.rejected, 10,
            "back to normal admits calls again"
        );
        assert_eq!(frame.marks.last().map(|m| m.kind), Some(MarkKind::Success));
    }

    #[test]
    fn a_disabled_breaker_lets_failures_through_and_never_opens() {
        let mut sim = failing();
        sim.apply(Action::Disable);
        for _ in 0..3 {
            sim.apply(Action::Burst);
            sim.advance(500);
        }
        let frame = sim.take_frame();
        assert_eq!(frame.state, State::Disabled);
        assert_eq!(transitions_to(&frame), [State::Disabled]);
        assert_eq!((frame.totals.admitted, frame.totals.rejected), (30, 0));
        // The calls show as failures (the core still reports them), but none is recorded.
        assert_eq!(
            frame
                .marks
                .iter()
                .filter(|m| m.kind == MarkKind::Failure)
                .count(),
            30
        );
        assert_eq!(frame.metrics.buffered_calls, 0);
        assert_eq!(frame.metrics.failure_rate, None);

        // Back to normal: a fresh Closed, which the same failures now open.
        sim.apply(Action::Reset);
        assert_eq!(sim.breaker().state(), State::Closed);
        sim.apply(Action::Burst);
        sim.advance(500);
        assert_eq!(sim.breaker().state(), State::Open);
    }

    #[test]
    fn calls_out_when_the_operator_acts_come_back_late() {
        let mut sim = BreakerSim::from_query("down=slow&lat=2000&burst=4");
        sim.apply(Action::Burst);
        sim.advance(100);
        sim.apply(Action::Disable);
        sim.advance(3000);
        let frame = sim.take_frame();
        assert_eq!(frame.totals.late, 4, "{:?}", frame.marks);
        assert_eq!(frame.pending, 0);
    }

    #[test]
    fn operator_actions_replay_from_the_query_and_old_links_still_work() {
        // Recorded even at time 0, when a setting would become the starting point instead.
        let mut sim = BreakerSim::from_query("down=failing&pct=100");
        sim.apply(Action::ForceOpen);
        sim.apply(Action::Burst);
        sim.advance(1000);
        sim.apply(Action::Disable);
        sim.apply(Action::Burst);
        sim.advance(1000);
        sim.apply(Action::Reset);
        sim.advance(500);
        let query = sim.query();
        assert!(query.contains("do=f.0_b.0_x.1000_b.1000_n.2000"), "{query}");
        let mut replay = BreakerSim::from_query(&query);
        assert_eq!(replay.query(), query);
        let (a, b) = (sim.take_frame(), replay.take_frame());
        assert_eq!(a.state, State::Closed);
        assert_eq!(b.state, State::Closed);
        assert_eq!(a.totals, b.totals);
        assert_eq!(transitions_to(&a), transitions_to(&b));
        assert_eq!(
            transitions_to(&b),
            [State::ForcedOpen, State::Disabled, State::Closed]
        );

        // A link written before the operator buttons existed replays as it always did.
        let old = "down=failing&pct=70&do=1.0_1.400_1.800_1.1200_1.1600_1.2000&t=2500";
        let mut sim = BreakerSim::from_query(old);
        assert_eq!(sim.query(), BreakerSim::from_query(&sim.query()).query());
        assert!(
            sim.query()
                .ends_with("do=1.0_1.400_1.800_1.1200_1.1600_1.2000&t=2500"),
            "{}",
            sim.query()
        );
        assert_eq!(sim.take_frame().totals.sent, 6);
    }
}
