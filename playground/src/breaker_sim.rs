//! The breaker playground's world: a simulated clock, a simulated downstream and the real
//! [`CircuitBreaker`] from `breaker-core`, wired together the way the lab's tower layer does.
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

use breaker_core::{
    CircuitBreaker, Config, Event, Input, Metrics, Millis, Outcome, Output, Permit, State,
    TransitionReason, WindowKind,
};
use serde::Serialize;

use crate::query;

/// How the simulated service behind the breaker behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Downstream {
    /// Answers quickly and correctly.
    Healthy,
    /// Fails (quickly, like a 503) a given percentage of the calls.
    Failing,
    /// Answers correctly but slowly: every call takes about the slow latency.
    Slow,
}

impl Downstream {
    fn code(self) -> &'static str {
        match self {
            Downstream::Healthy => "healthy",
            Downstream::Failing => "failing",
            Downstream::Slow => "slow",
        }
    }

    /// Reads the names the page's select uses (`healthy`, `failing`, `slow`).
    pub fn parse(text: &str) -> Option<Downstream> {
        [Downstream::Healthy, Downstream::Failing, Downstream::Slow]
            .into_iter()
            .find(|mode| mode.code() == text)
    }
}

/// Everything the controls set. The field names in the query string are the names of the
/// page's form fields, so the page restores its controls from [`BreakerSettings::pairs`].
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerSettings {
    /// `true`: the window holds the last N calls; `false`: the calls of the last N seconds.
    pub count_window: bool,
    /// N, in calls or seconds.
    pub window_size: u32,
    /// Failure-rate threshold, percent.
    pub failure_threshold: u32,
    /// Slow-call-rate threshold, percent.
    pub slow_threshold: u32,
    /// A call at least this long is slow.
    pub slow_call_ms: u64,
    /// No verdict before this many calls are in the window.
    pub minimum_calls: u32,
    /// How long Open rejects before trial calls.
    pub wait_in_open_ms: u64,
    /// Trial calls in HalfOpen.
    pub half_open_calls: u32,
    /// Spread of the wait in Open, percent (0 = none).
    pub jitter_percent: u32,
    /// The downstream's behaviour.
    pub downstream: Downstream,
    /// Share of failing calls when the downstream is failing, percent.
    pub failure_percent: u32,
    /// Latency of a call to a slow downstream.
    pub slow_latency_ms: u64,
    /// Calls per second of steady traffic.
    pub rate: u32,
    /// Calls in one burst.
    pub burst: u32,
    /// Whether steady traffic runs.
    pub steady: bool,
    /// Seed of the downstream's randomness and of the breaker's jitter.
    pub seed: u64,
}

impl Default for BreakerSettings {
    /// Small numbers, so a reader sees the breaker trip within a few clicks.
    fn default() -> Self {
        BreakerSettings {
            count_window: true,
            window_size: 10,
            failure_threshold: 50,
            slow_threshold: 80,
            slow_call_ms: 1000,
            minimum_calls: 5,
            wait_in_open_ms: 5000,
            half_open_calls: 3,
            jitter_percent: 0,
            downstream: Downstream::Healthy,
            failure_percent: 70,
            slow_latency_ms: 1500,
            rate: 5,
            burst: 10,
            steady: false,
            seed: 42,
        }
    }
}

impl BreakerSettings {
    /// Reads the settings from a query string; unknown keys and bad values keep defaults.
    pub fn from_query(text: &str) -> BreakerSettings {
        let mut settings = BreakerSettings::default();
        for (key, value) in query::pairs(text) {
            let s = &mut settings;
            match key {
                "win" => s.count_window = value != "time",
                "size" => query::set_in_range(&mut s.window_size, value, 1, 1000),
                "fail" => query::set_in_range(&mut s.failure_threshold, value, 1, 100),
                "slow" => query::set_in_range(&mut s.slow_threshold, value, 1, 100),
                "slowms" => query::set_in_range(&mut s.slow_call_ms, value, 1, 600_000),
                "min" => query::set_in_range(&mut s.minimum_calls, value, 1, 1000),
                "wait" => query::set_in_range(&mut s.wait_in_open_ms, value, 1, 3_600_000),
                "trial" => query::set_in_range(&mut s.half_open_calls, value, 1, 100),
                "jitter" => query::set_in_range(&mut s.jitter_percent, value, 0, 90),
                "down" => {
                    if let Some(mode) = Downstream::parse(value) {
                        s.downstream = mode;
                    }
                }
                "pct" => query::set_in_range(&mut s.failure_percent, value, 0, 100),
                "lat" => query::set_in_range(&mut s.slow_latency_ms, value, 1, 600_000),
                "rate" => query::set_in_range(&mut s.rate, value, 1, 200),
                "burst" => query::set_in_range(&mut s.burst, value, 1, 500),
                "steady" => s.steady = value == "1",
                "seed" => query::set_in_range(&mut s.seed, value, 0, u64::MAX),
                _ => {}
            }
        }
        settings
    }

    /// The settings as `(form field, value)` pairs: the query string and the page's controls.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "win",
                if self.count_window { "count" } else { "time" }.into(),
            ),
            ("size", self.window_size.to_string()),
            ("fail", self.failure_threshold.to_string()),
            ("slow", self.slow_threshold.to_string()),
            ("slowms", self.slow_call_ms.to_string()),
            ("min", self.minimum_calls.to_string()),
            ("wait", self.wait_in_open_ms.to_string()),
            ("trial", self.half_open_calls.to_string()),
            ("jitter", self.jitter_percent.to_string()),
            ("down", self.downstream.code().into()),
            ("pct", self.failure_percent.to_string()),
            ("lat", self.slow_latency_ms.to_string()),
            ("rate", self.rate.to_string()),
            ("burst", self.burst.to_string()),
            ("steady", if self.steady { "1" } else { "0" }.into()),
            ("seed", self.seed.to_string()),
        ]
    }

    /// The core's configuration these settings describe.
    pub fn config(&self) -> Config {
        Config {
            failure_rate_threshold: self.failure_threshold as f32,
            slow_call_rate_threshold: self.slow_threshold as f32,
            slow_call_duration: Millis(self.slow_call_ms),
            permitted_calls_in_half_open: self.half_open_calls,
            window: if self.count_window {
                WindowKind::CountBased {
                    size: self.window_size,
                }
            } else {
                WindowKind::TimeBased {
                    seconds: self.window_size,
                }
            },
            minimum_calls: self.minimum_calls,
            wait_in_open: Millis(self.wait_in_open_ms),
            jitter: f64::from(self.jitter_percent) / 100.0,
            seed: Some(self.seed),
            ..Config::default()
        }
    }
}

/// Something the reader did at a moment of the simulated clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one call.
    SendOne,
    /// Send `burst` calls at the same instant.
    Burst,
    /// Start or stop steady traffic.
    Steady(bool),
    /// Change the downstream's behaviour.
    Downstream(Downstream),
    /// Change the steady traffic's rate.
    Rate(u32),
    /// Change the failing downstream's failure percentage.
    FailurePercent(u32),
    /// Operator: hold the breaker open ([`Input::ForceOpen`]).
    ForceOpen,
    /// Operator: let every call through and record nothing ([`Input::Disable`]).
    Disable,
    /// Operator: back to normal, a fresh Closed with an empty window ([`Input::Reset`]).
    Reset,
}

impl Action {
    fn token(self) -> String {
        match self {
            Action::SendOne => "1".into(),
            Action::Burst => "b".into(),
            Action::Steady(on) => format!("s{}", u8::from(on)),
            Action::Downstream(mode) => format!("d{}", &mode.code()[..1]),
            Action::Rate(rate) => format!("r{rate}"),
            Action::FailurePercent(percent) => format!("p{percent}"),
            Action::ForceOpen => "f".into(),
            Action::Disable => "x".into(),
            Action::Reset => "n".into(),
        }
    }

    /// Whether this action changes a setting (rather than doing something to the breaker).
    fn is_setting(self) -> bool {
        matches!(
            self,
            Action::Steady(_) | Action::Downstream(_) | Action::Rate(_) | Action::FailurePercent(_)
        )
    }

    fn parse(token: &str) -> Option<Action> {
        let (head, rest) =
            token.split_at(token.char_indices().nth(1).map_or(token.len(), |(i, _)| i));
        match head {
            "1" if rest.is_empty() => Some(Action::SendOne),
            "b" if rest.is_empty() => Some(Action::Burst),
            "f" if rest.is_empty() => Some(Action::ForceOpen),
            "x" if rest.is_empty() => Some(Action::Disable),
            "n" if rest.is_empty() => Some(Action::Reset),
            "s" => Some(Action::Steady(rest == "1")),
            "d" => [Downstream::Healthy, Downstream::Failing, Downstream::Slow]
                .into_iter()
                .find(|mode| &mode.code()[..1] == rest)
                .map(Action::Downstream),
            "r" => rest
                .parse()
                .ok()
                .filter(|r| (1..=200).contains(r))
                .map(Action::Rate),
            "p" => rest
                .parse()
                .ok()
                .filter(|p| *p <= 100)
                .map(Action::FailurePercent),
            _ => None,
        }
    }
}

/// How one call ended, as the core's events said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// `Event::Success`.
    Success,
    /// `Event::Failure`.
    Failure,
    /// `Event::Success` followed by `Event::SlowCall`.
    Slow,
    /// `Event::Failure` followed by `Event::SlowCall`.
    SlowFailure,
    /// `Output::Rejected`: the call never reached the downstream.
    Rejected,
    /// The outcome came back after a state transition: the core refused the stale permit.
    Late,
}

/// One call on the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallMark {
    /// 1, 2, 3… in the order calls were sent.
    pub id: u64,
    /// When it was sent (and, if rejected, refused).
    pub sent: u64,
    /// When its outcome was reported; `None` for a rejected call.
    pub done: Option<u64>,
    /// What the core made of it.
    pub kind: MarkKind,
}

/// A state change, from `Event::StateTransition`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    /// When.
    pub at: u64,
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
}

/// The rates the core reported at a moment (`None` while below the minimum calls).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RatePoint {
    /// When.
    pub t: u64,
    /// `Metrics::failure_rate`.
    pub failure: Option<f32>,
    /// `Metrics::slow_call_rate`.
    pub slow: Option<f32>,
}

/// One line of the event log: a core event in words, and the event itself as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLine {
    /// When.
    pub t: u64,
    /// The event's serde tag (`state_transition`, `failure`…), for colouring.
    pub kind: &'static str,
    /// What happened, in words.
    pub text: String,
    /// The event exactly as the core serialises it (what the lab logs).
    pub raw: String,
}

/// Running totals the simulation keeps about its own traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Calls sent to the breaker.
    pub sent: u64,
    /// Calls the breaker admitted.
    pub admitted: u64,
    /// Calls it rejected.
    pub rejected: u64,
    /// Outcomes refused as stale.
    pub late: u64,
}

/// What changed since the page last looked, plus where things stand now.
#[derive(Clone, Debug, Serialize)]
pub struct Frame {
    /// The simulated clock, in ms.
    pub now: u64,
    /// The breaker's state.
    pub state: State,
    /// The breaker's metrics (straight from `CircuitBreaker::metrics`).
    pub metrics: Metrics,
    /// `CircuitBreaker::poll_timeout`: when the breaker next needs the clock.
    pub next_timeout: Option<u64>,
    /// Calls admitted and not yet answered by the downstream.
    pub pending: usize,
    /// The simulation's traffic totals.
    pub totals: Totals,
    /// New timeline marks.
    pub marks: Vec<CallMark>,
    /// New state transitions.
    pub transitions: Vec<Transition>,
    /// New rate samples.
    pub rates: Vec<RatePoint>,
    /// New log lines.
    pub log: Vec<LogLine>,
}

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
                text: format!(
                    "call #{} answered late and was not recorded: {error}",
                    call.id
                ),
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
        let who = call.map_or_else(|| "a call".to_string(), |call| format!("call #{}", call.id));
        let (kind, text) = match event {
            Event::StateTransition {
                at,
                from,
                to,
                reason,
            } => {
                self.transitions.push(Transition { at: at.0, from, to });
                (
                    "state_transition",
                    format!("{from} → {to}: {}", reason_text(reason, &self.breaker)),
                )
            }
            Event::Success { duration, .. } => {
                self.mark_outcome(call, MarkKind::Success);
                ("success", format!("{who} succeeded in {duration}"))
            }
            Event::Failure { duration, .. } => {
                self.mark_outcome(call, MarkKind::Failure);
                ("failure", format!("{who} failed after {duration}"))
            }
            Event::SlowCall {
                duration, failed, ..
            } => {
                self.mark_outcome(
                    call,
                    if failed {
                        MarkKind::SlowFailure
                    } else {
                        MarkKind::Slow
                    },
                );
                (
                    "slow_call",
                    format!(
                        "{who} was slow: {duration} ≥ {}",
                        self.breaker.config().slow_call_duration
                    ),
                )
            }
            Event::Ignored { .. } => ("ignored", format!("{who} was ignored")),
            Event::Released { .. } => ("released", format!("{who} was released")),
            Event::Rejected { rejected, .. } => ("rejected", format!("{who}: {rejected}")),
        };
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

fn reason_text(reason: TransitionReason, breaker: &CircuitBreaker) -> String {
    let config = breaker.config();
    match reason {
        TransitionReason::FailureRateExceeded { rate } => format!(
            "failure rate {}% reached the threshold of {}%",
            rate.round() as u32,
            config.failure_rate_threshold.round() as u32
        ),
        TransitionReason::SlowCallRateExceeded { rate } => format!(
            "slow-call rate {}% reached the threshold of {}%",
            rate.round() as u32,
            config.slow_call_rate_threshold.round() as u32
        ),
        TransitionReason::WaitElapsed => {
            format!(
                "the wait in Open elapsed; {} trial call(s) may go through",
                config.permitted_calls_in_half_open
            )
        }
        TransitionReason::TrialsSucceeded => "the trial calls succeeded".into(),
        TransitionReason::HalfOpenTimedOut => "HalfOpen did not decide in time".into(),
        TransitionReason::ForcedOpen => {
            "an operator forced it open; every call is rejected until back to normal".into()
        }
        TransitionReason::Disabled => {
            "an operator disabled it; every call goes through and nothing is recorded".into()
        }
        TransitionReason::Reset => "an operator reset it to Closed with an empty window".into(),
        TransitionReason::Manual => "set by hand".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn settings_round_trip_and_nonsense_falls_back_to_defaults() {
        let settings = BreakerSettings::from_query("win=time&size=30&fail=25&wait=9000&trial=7");
        assert!(!settings.count_window);
        assert_eq!(
            BreakerSettings::from_query(&query::to_query(settings.pairs())),
            settings
        );
        let nonsense = BreakerSettings::from_query("size=0&fail=250&down=exploding&do=zz.x");
        assert_eq!(nonsense, BreakerSettings::default());
    }

    #[test]
    fn actions_read_back_what_they_write() {
        for action in [
            Action::SendOne,
            Action::Burst,
            Action::Steady(true),
            Action::Steady(false),
            Action::Downstream(Downstream::Slow),
            Action::Rate(40),
            Action::FailurePercent(0),
            Action::ForceOpen,
            Action::Disable,
            Action::Reset,
        ] {
            assert_eq!(Action::parse(&action.token()), Some(action));
        }
        assert_eq!(Action::parse(""), None);
        assert_eq!(Action::parse("fx"), None);
        assert_eq!(Action::parse("n1"), None);
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
