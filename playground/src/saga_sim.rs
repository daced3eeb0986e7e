//! The saga playground's world: the real [`Saga`] from `saga-core` driving four simulated
//! participants (order, payment, inventory, shipping) that keep balances.
//!
//! A run is short (a dozen messages) and fully decided by its settings, so the whole run is
//! computed up front into a list of [`Message`]s: the page's "step" and "play" only reveal
//! them one by one as an animated sequence diagram. Each message carries the saga-log entries
//! the core recorded with it and the balances after it, so the log and the balances beside the
//! diagram always match the arrow being shown.
//!
//! What the driver here does is what the lab's orchestrator does: send each [`Command`] the
//! core asks for, report the participant's answer as an [`Input`], wait out the backoff the
//! core asks for with `poll_timeout`/`handle_timeout`, and after a crash rebuild the saga from
//! its log with [`Saga::resume`]. The participants answer a repeated idempotency key with their
//! first answer and change nothing, which is why a resent command is harmless.
//!
//! In choreography there is no orchestrator: each service reacts to the previous one's event.
//! The order of those reactions is the same order the saga core decides, so the playground
//! uses the core to decide and draws the messages as events on a bus instead of commands.

use std::collections::BTreeMap;

use saga_core::{
    Command, CommandKind, Event, FailureKind, Input, LogEntry, Millis, OrderStatus, Output, Saga,
    SagaDefinition, SagaOutcome,
};
use serde::Serialize;

use crate::query;

/// Who coordinates the saga.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A coordinator sends each participant its command.
    Orchestration,
    /// Participants react to each other's events on a bus.
    Choreography,
}

/// The places where the reader can make things go wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaSettings {
    /// Orchestration or choreography.
    pub mode: Mode,
    /// The step whose action fails for a business reason (1 payment, 2 inventory, 3 shipping).
    pub fail_step: Option<usize>,
    /// Whether the first compensation fails once (a timeout) and is retried.
    pub compensation_fails_once: bool,
    /// Where the orchestrator crashes: while waiting for this step's reply (1, 2, 3), or
    /// `Some(COMPENSATION)` while waiting for the first compensation's reply.
    pub crash: Option<usize>,
}

/// The `crash` value meaning "while waiting for the first compensation's reply".
pub const COMPENSATION: usize = 99;

/// Step names in the query string, by step index of the order-fulfilment saga.
const STEP_CODES: [(&str, usize); 3] = [("payment", 1), ("inventory", 2), ("shipping", 3)];

impl Default for SagaSettings {
    fn default() -> Self {
        SagaSettings {
            mode: Mode::Orchestration,
            fail_step: None,
            compensation_fails_once: false,
            crash: None,
        }
    }
}

fn step_code(step: Option<usize>) -> &'static str {
    match step {
        Some(COMPENSATION) => "compensation",
        Some(step) => STEP_CODES
            .iter()
            .find(|(_, index)| *index == step)
            .map_or("none", |(code, _)| code),
        None => "none",
    }
}

fn parse_step(value: &str, allow_compensation: bool) -> Option<Option<usize>> {
    match value {
        "none" => Some(None),
        "compensation" if allow_compensation => Some(Some(COMPENSATION)),
        _ => STEP_CODES
            .iter()
            .find(|(code, _)| *code == value)
            .map(|(_, index)| Some(*index)),
    }
}

impl SagaSettings {
    /// Reads the settings from a query string; unknown keys and bad values keep defaults.
    pub fn from_query(text: &str) -> SagaSettings {
        let mut settings = SagaSettings::default();
        for (key, value) in query::pairs(text) {
            match key {
                "mode" => {
                    settings.mode = if value == "choreography" {
                        Mode::Choreography
                    } else {
                        Mode::Orchestration
                    }
                }
                "fail" => {
                    if let Some(step) = parse_step(value, false) {
                        settings.fail_step = step;
                    }
                }
                "cfail" => settings.compensation_fails_once = value == "1",
                "crash" => {
                    if let Some(step) = parse_step(value, true) {
                        settings.crash = step;
                    }
                }
                _ => {}
            }
        }
        settings
    }

    /// The settings as `(form field, value)` pairs: the query string and the page's controls.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "mode",
                match self.mode {
                    Mode::Orchestration => "orchestration",
                    Mode::Choreography => "choreography",
                }
                .into(),
            ),
            ("fail", step_code(self.fail_step).into()),
            (
                "cfail",
                if self.compensation_fails_once {
                    "1"
                } else {
                    "0"
                }
                .into(),
            ),
            ("crash", step_code(self.crash).into()),
        ]
    }
}

/// What an arrow of the sequence diagram stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The client places the order.
    Start,
    /// A step's action is requested (a command, or the event that triggers it).
    Action,
    /// The action succeeded.
    Reply,
    /// The action failed.
    Failure,
    /// A step's compensation is requested.
    Compensation,
    /// The compensation succeeded.
    CompensationReply,
    /// The compensation failed (it will be retried).
    CompensationFailure,
    /// The orchestrator (or a consumer) crashed; the reply in flight is lost.
    Crash,
    /// It restarted and rebuilt the saga from its log.
    Restart,
    /// The saga waits out a retry's backoff.
    Wait,
    /// The saga ended; the client gets the answer.
    Done,
}

/// One saga-log entry as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogView {
    /// The entry's position in the log.
    pub seq: u64,
    /// When it was recorded.
    pub at: u64,
    /// The event in words.
    pub text: String,
    /// The entry exactly as the core serialises it (what the orchestrator stores).
    pub raw: String,
}

/// What the participants hold after a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// The customer's available money.
    pub wallet: u32,
    /// Money the payment service holds for the order.
    pub money_held: u32,
    /// Units on the shelf.
    pub stock: u32,
    /// Units reserved for the order.
    pub stock_reserved: u32,
    /// Whether a courier is booked.
    pub courier_booked: bool,
    /// The order's status, from the core's semantic lock ([`Saga::order_status`]).
    pub order_status: &'static str,
}

/// One arrow of the sequence diagram, with what it changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    /// Lane the arrow starts from.
    pub from: &'static str,
    /// Lane it points to (equal to `from` for a note on one lane).
    pub to: &'static str,
    /// The words on the arrow.
    pub label: String,
    /// What it stands for.
    pub kind: MessageKind,
    /// The operation (`reserve`, `refund`…) for commands and their replies.
    pub op: Option<String>,
    /// The step it concerns.
    pub step: Option<usize>,
    /// The simulated time, in ms.
    pub at: u64,
    /// Log entries the core recorded with this message.
    pub log: Vec<LogView>,
    /// The balances after it.
    pub balances: Balances,
}

/// A whole run: the lanes of the diagram and its messages in order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SagaRun {
    /// Lane ids, left to right.
    pub lanes: Vec<&'static str>,
    /// The arrows, first to last.
    pub messages: Vec<Message>,
    /// How the saga ended (`None` only if the run was cut short).
    pub outcome: Option<SagaOutcome>,
}

/// The participants' state: money, stock, courier, and each one's idempotency table.
#[derive(Clone, Debug)]
struct Participants {
    wallet: u32,
    money_held: u32,
    stock: u32,
    stock_reserved: u32,
    courier_booked: bool,
    /// Answers already given, by idempotency key: a repeated key gets the same answer.
    answered: BTreeMap<String, Answer>,
}

/// A participant's answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answer {
    ok: bool,
    reason: String,
    /// Whether it came from the idempotency table.
    duplicate: bool,
}

/// The order's price, and the customer's money before it.
const PRICE: u32 = 30;
const WALLET: u32 = 100;
const STOCK: u32 = 5;

impl Participants {
    fn new() -> Participants {
        Participants {
            wallet: WALLET,
            money_held: 0,
            stock: STOCK,
            stock_reserved: 0,
            courier_booked: false,
            answered: BTreeMap::new(),
        }
    }

    fn balances(&self, status: OrderStatus) -> Balances {
        Balances {
            wallet: self.wallet,
            money_held: self.money_held,
            stock: self.stock,
            stock_reserved: self.stock_reserved,
            courier_booked: self.courier_booked,
            order_status: status.as_str(),
        }
    }

    /// Performs `command` unless its key was seen; `refuse` makes the action fail for a
    /// business reason, `time_out` makes a compensation fail without doing anything.
    fn handle(&mut self, command: &Command, refuse: bool, time_out: bool) -> Answer {
        if let Some(first) = self.answered.get(&command.idempotency_key) {
            return Answer {
                duplicate: true,
                ..first.clone()
            };
        }
        if time_out {
            // A timeout is not an answer: nothing done, nothing remembered, try again.
            return Answer {
                ok: false,
                reason: "timed out".into(),
                duplicate: false,
            };
        }
        let compensation = command.kind == CommandKind::Compensation;
        let answer = if refuse && !compensation {
            let reason = match command.step {
                1 => "insufficient funds",
                2 => "out of stock",
                _ => "no courier available",
            };
            Answer {
                ok: false,
                reason: reason.into(),
                duplicate: false,
            }
        } else {
            match (command.step, compensation) {
                (1, false) => {
                    self.wallet -= PRICE;
                    self.money_held += PRICE;
                }
                (1, true) => {
                    self.wallet += PRICE;
                    self.money_held -= PRICE;
                }
                (2, false) => {
                    self.stock -= 1;
                    self.stock_reserved += 1;
                }
                (2, true) => {
                    self.stock += 1;
                    self.stock_reserved -= 1;
                }
                (3, compensation) => self.courier_booked = !compensation,
                // The order service's own steps change only the order's status, which is
                // the core's semantic lock.
                _ => {}
            }
            Answer {
                ok: true,
                reason: String::new(),
                duplicate: false,
            }
        };
        self.answered
            .insert(command.idempotency_key.clone(), answer.clone());
        answer
    }
}

/// Capitalises an ASCII word: `payment` → `Payment`.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The past tense the participants' events use: `reserve` → `Reserved`.
fn past_tense(operation: &str) -> String {
    let word = capitalised(operation);
    match operation {
        "cancel" => "Cancelled".into(),
        "refund" => "Refunded".into(),
        _ if word.ends_with('e') => word + "d",
        _ => word + "ed",
    }
}

/// The name of the event a participant publishes in choreography (`PaymentReserved`).
fn event_name(command: &Command, answer: &Answer) -> String {
    let subject = capitalised(&command.participant);
    if answer.ok {
        format!("{subject}{}", past_tense(&command.operation))
    } else {
        format!("{subject}{}Failed", capitalised(&command.operation))
    }
}

/// A saga-log event in words, naming steps by their definition.
fn log_text(definition: &SagaDefinition, event: &Event) -> String {
    let name = |step: usize| {
        definition
            .steps
            .get(step)
            .map_or("?".to_string(), |s| s.name.clone())
    };
    match event {
        Event::SagaStarted => "saga started".into(),
        Event::StepStarted { step, attempt } => format!("{} started (try {attempt})", name(*step)),
        Event::StepSucceeded { step } => format!("{} succeeded", name(*step)),
        Event::StepFailed { step, reason, .. } => format!("{} failed: {reason}", name(*step)),
        Event::CompensationStarted { step, attempt } => {
            format!("compensating {} (try {attempt})", name(*step))
        }
        Event::CompensationSucceeded { step } => format!("{} compensated", name(*step)),
        Event::CompensationFailed { step, reason } => {
            format!("compensating {} failed: {reason}", name(*step))
        }
        Event::SagaCompleted => "saga completed".into(),
        Event::SagaCompensated => "saga compensated".into(),
        Event::NeedsAttention { step } => format!("{} needs an operator", name(*step)),
        Event::Resumed => "saga resumed".into(),
    }
}

/// Builds a run message by message.
struct Runner {
    settings: SagaSettings,
    definition: SagaDefinition,
    saga: Saga,
    participants: Participants,
    now: u64,
    messages: Vec<Message>,
    /// Log entries not yet attached to a message.
    unshown: Vec<LogEntry>,
    /// The event that triggers the next reaction in choreography.
    last_event: String,
    crashed: bool,
    compensation_failed: bool,
    outcome: Option<SagaOutcome>,
    /// The command the core asked for and the driver has not sent yet.
    pending: Option<Command>,
}

/// Milliseconds one hop between services takes on the simulated clock.
const HOP_MS: u64 = 10;
/// The saga's id in every idempotency key.
const SAGA_ID: &str = "order-1";

impl Runner {
    fn lane_of_driver(&self) -> &'static str {
        match self.settings.mode {
            Mode::Orchestration => "orchestrator",
            Mode::Choreography => "bus",
        }
    }

    fn status(&self) -> OrderStatus {
        self.saga.order_status()
    }

    fn push(&mut self, from: &'static str, to: &'static str, label: String, kind: MessageKind) {
        self.push_about(from, to, label, kind, None);
    }

    fn push_about(
        &mut self,
        from: &'static str,
        to: &'static str,
        label: String,
        kind: MessageKind,
        command: Option<&Command>,
    ) {
        let log = self
            .unshown
            .drain(..)
            .map(|entry| LogView {
                seq: entry.seq,
                at: entry.at.0,
                text: log_text(&self.definition, &entry.event),
                raw: serde_json::to_string(&entry).unwrap_or_default(),
            })
            .collect();
        self.messages.push(Message {
            from,
            to,
            label,
            kind,
            op: command.map(|c| c.operation.clone()),
            step: command.map(|c| c.step),
            at: self.now,
            log,
            balances: self.participants.balances(self.status()),
        });
    }

    /// Drains the core's outputs: log entries wait for the next message, a command is
    /// returned to be sent, the end of the saga is remembered.
    fn drain(&mut self) -> Option<Command> {
        let mut command = None;
        while let Some(output) = self.saga.poll_output() {
            match output {
                Output::Record(entry) => self.unshown.push(entry),
                Output::Send(sent) => command = Some(sent),
                Output::Finished(outcome) => self.outcome = Some(outcome),
            }
        }
        command
    }

    fn participant_lane(command: &Command) -> &'static str {
        match command.participant.as_str() {
            "payment" => "payment",
            "inventory" => "inventory",
            "shipping" => "shipping",
            _ => "order",
        }
    }

    /// Sends one command and reports its answer (or loses it in a crash).
    fn exchange(&mut self, command: Command) {
        let driver = self.lane_of_driver();
        let lane = Self::participant_lane(&command);
        let compensation = command.kind == CommandKind::Compensation;
        let request_label = match self.settings.mode {
            Mode::Orchestration => format!("{} (try {})", command.operation, command.attempt),
            Mode::Choreography if command.step == 0 && !compensation => "place order".into(),
            Mode::Choreography => format!("{} → {}", self.last_event, command.operation),
        };
        let (request_from, request_kind) = match (self.settings.mode, command.step) {
            // In choreography the order service creates the order when the client asks.
            (Mode::Choreography, 0) if !compensation => ("client", MessageKind::Action),
            _ if compensation => (driver, MessageKind::Compensation),
            _ => (driver, MessageKind::Action),
        };
        self.now += HOP_MS;
        self.push_about(
            request_from,
            lane,
            request_label,
            request_kind,
            Some(&command),
        );

        let refuse = self.settings.fail_step == Some(command.step);
        let time_out =
            compensation && self.settings.compensation_fails_once && !self.compensation_failed;
        if time_out {
            self.compensation_failed = true;
        }
        let answer = self.participants.handle(&command, refuse, time_out);

        let crash_here = !self.crashed
            && match self.settings.crash {
                Some(COMPENSATION) => compensation,
                Some(step) => !compensation && step == command.step,
                None => false,
            };
        if crash_here && !time_out {
            self.crashed = true;
            self.crash_and_resume(&command, lane);
            return;
        }

        self.now += HOP_MS;
        let name = event_name(&command, &answer);
        let mut label = match (self.settings.mode, answer.ok) {
            (Mode::Orchestration, true) => {
                format!("{} ✅", past_tense(&command.operation).to_ascii_lowercase())
            }
            (Mode::Orchestration, false) => format!("❌ {}", answer.reason),
            (Mode::Choreography, true) => format!("{name} ✅"),
            (Mode::Choreography, false) => format!("{name}: {} ❌", answer.reason),
        };
        if answer.duplicate {
            label.push_str(" (same key: first answer repeated)");
        }
        self.last_event = name;
        let input = match (compensation, answer.ok) {
            (false, true) => Input::StepSucceeded {
                step: command.step,
                attempt: command.attempt,
            },
            (false, false) => Input::StepFailed {
                step: command.step,
                attempt: command.attempt,
                kind: FailureKind::Business,
                reason: answer.reason.clone(),
            },
            (true, true) => Input::CompensationSucceeded {
                step: command.step,
                attempt: command.attempt,
            },
            (true, false) => Input::CompensationFailed {
                step: command.step,
                attempt: command.attempt,
                reason: answer.reason.clone(),
            },
        };
        // The driver only ever answers the command in flight, so the core accepts it.
        let _ = self.saga.handle_input(Millis(self.now), input);
        let next = self.drain();
        // Entries that start the next command belong with that command's arrow.
        let split = self.unshown.iter().position(|entry| {
            matches!(
                entry.event,
                Event::StepStarted { .. } | Event::CompensationStarted { .. }
            )
        });
        let later = split.map_or_else(Vec::new, |at| self.unshown.split_off(at));
        let kind = match (compensation, answer.ok) {
            (false, true) => MessageKind::Reply,
            (false, false) => MessageKind::Failure,
            (true, true) => MessageKind::CompensationReply,
            (true, false) => MessageKind::CompensationFailure,
        };
        self.push_about(lane, driver, label, kind, Some(&command));
        self.unshown = later;
        if let Some(next) = next {
            self.pending = Some(next);
        }
    }

    /// The reply to `command` is lost: the orchestrator dies, restarts, reads its log and
    /// carries on from it, which re-sends the command with the same idempotency key.
    fn crash_and_resume(&mut self, command: &Command, lane: &'static str) {
        let (who, label) = match self.settings.mode {
            Mode::Orchestration => (
                "orchestrator",
                format!(
                    "💥 crashes before {}'s reply arrives ({} was done)",
                    command.participant, command.operation
                ),
            ),
            Mode::Choreography => (
                lane,
                format!(
                    "💥 {}'s consumer crashes before acknowledging; the bus will redeliver",
                    command.participant
                ),
            ),
        };
        self.now += HOP_MS;
        self.push(who, who, label, MessageKind::Crash);
        self.now += 1000;
        let log = self.saga.log().clone();
        match Saga::resume(SAGA_ID, self.definition.clone(), log, Millis(self.now)) {
            Ok(saga) => self.saga = saga,
            Err(error) => {
                self.push(
                    who,
                    who,
                    format!("cannot resume: {error}"),
                    MessageKind::Restart,
                );
                return;
            }
        }
        let next = self.drain();
        let label = match self.settings.mode {
            Mode::Orchestration => format!(
                "🔄 restarts, reads {} log entries, decides again",
                self.saga.log().len()
            ),
            Mode::Choreography => "🔄 restarts; the unacknowledged event comes again".to_string(),
        };
        // The resumed saga's first entries (the re-sent command) go with the next arrow.
        let later = std::mem::take(&mut self.unshown);
        self.push(who, who, label, MessageKind::Restart);
        self.unshown = later;
        self.pending = next;
    }
}

impl Runner {
    fn run(settings: SagaSettings) -> SagaRun {
        let definition = SagaDefinition::order_fulfilment();
        // (No `expect`: formatting the error would pull `Debug` machinery into the WASM.)
        let saga = Saga::start(SAGA_ID, definition.clone(), Millis(0))
            .unwrap_or_else(|_| panic!("the order-fulfilment definition is valid"));
        let mut runner = Runner {
            settings: settings.clone(),
            definition,
            saga,
            participants: Participants::new(),
            now: 0,
            messages: Vec::new(),
            unshown: Vec::new(),
            last_event: "OrderPlaced".into(),
            crashed: false,
            compensation_failed: false,
            outcome: None,
            pending: None,
        };
        runner.pending = runner.drain();
        let lanes = match settings.mode {
            Mode::Orchestration => vec![
                "client",
                "orchestrator",
                "order",
                "payment",
                "inventory",
                "shipping",
            ],
            Mode::Choreography => {
                vec!["client", "order", "bus", "payment", "inventory", "shipping"]
            }
        };
        let first_stop = match settings.mode {
            Mode::Orchestration => "orchestrator",
            Mode::Choreography => "order",
        };
        if settings.mode == Mode::Orchestration {
            let started = std::mem::take(&mut runner.unshown);
            let (first, rest): (Vec<_>, Vec<_>) = started
                .into_iter()
                .partition(|entry| entry.event == Event::SagaStarted);
            runner.unshown = first;
            runner.push(
                "client",
                first_stop,
                "place order".into(),
                MessageKind::Start,
            );
            runner.unshown = rest;
        }
        // A saga of five steps needs about twenty exchanges; the bound only guards a bug.
        for _ in 0..200 {
            if let Some(command) = runner.pending.take() {
                runner.exchange(command);
            } else if let Some(wake) = runner.saga.poll_timeout() {
                let wait = wake.0.saturating_sub(runner.now);
                let driver = runner.lane_of_driver();
                runner.push(
                    driver,
                    driver,
                    format!("⏳ waits {wait} ms before retrying"),
                    MessageKind::Wait,
                );
                runner.now = runner.now.max(wake.0);
                runner.saga.handle_timeout(Millis(runner.now));
                runner.pending = runner.drain();
            } else {
                break;
            }
        }
        if let Some(outcome) = runner.outcome.or(runner.saga.outcome()) {
            let answer = match outcome {
                SagaOutcome::Completed => "order confirmed ✅".to_string(),
                SagaOutcome::Compensated => format!(
                    "order failed: {} ❌",
                    runner
                        .saga
                        .log()
                        .entries()
                        .iter()
                        .find_map(|entry| match &entry.event {
                            Event::StepFailed { reason, .. } => Some(reason.clone()),
                            _ => None,
                        })
                        .unwrap_or_default()
                ),
                SagaOutcome::NeedsAttention => "order needs attention ⚠️".to_string(),
            };
            runner.now += HOP_MS;
            runner.push(first_stop, "client", answer, MessageKind::Done);
            runner.outcome = Some(outcome);
        }
        SagaRun {
            lanes,
            messages: runner.messages,
            outcome: runner.outcome,
        }
    }
}

/// Runs the order-fulfilment saga with these settings, start to end.
pub fn run(settings: SagaSettings) -> SagaRun {
    Runner::run(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_query(text: &str) -> SagaRun {
        run(SagaSettings::from_query(text))
    }

    fn operations_of(run: &SagaRun, kind: MessageKind) -> Vec<String> {
        run.messages
            .iter()
            .filter(|m| m.kind == kind)
            .filter_map(|m| m.op.clone())
            .collect()
    }

    #[test]
    fn happy_path_books_everything_and_approves() {
        let run = run_query("");
        assert_eq!(run.outcome, Some(SagaOutcome::Completed));
        assert_eq!(
            operations_of(&run, MessageKind::Action),
            [
                "create", "reserve", "reserve", "schedule", "capture", "approve"
            ]
        );
        let last = run.messages.last().expect("a run has messages");
        assert_eq!(last.kind, MessageKind::Done);
        assert_eq!(last.balances.order_status, "APPROVED");
        assert_eq!((last.balances.wallet, last.balances.money_held), (70, 30));
        assert_eq!((last.balances.stock, last.balances.stock_reserved), (4, 1));
        assert!(last.balances.courier_booked);
    }

    #[test]
    fn inventory_failure_refunds_then_cancels_and_restores_balances() {
        let run = run_query("fail=inventory");
        assert_eq!(run.outcome, Some(SagaOutcome::Compensated));
        assert_eq!(
            operations_of(&run, MessageKind::Compensation),
            ["refund", "cancel"]
        );
        let last = run.messages.last().expect("a run has messages");
        assert_eq!(last.balances.order_status, "CANCELLED");
        assert_eq!((last.balances.wallet, last.balances.money_held), (100, 0));
        assert_eq!((last.balances.stock, last.balances.stock_reserved), (5, 0));
        // The log beside the diagram is the core's log, in order, without gaps.
        let seqs: Vec<u64> = run
            .messages
            .iter()
            .flat_map(|m| m.log.iter().map(|entry| entry.seq))
            .collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        assert!(seqs.len() > 8, "{seqs:?}");
    }

    #[test]
    fn shipping_failure_compensates_three_steps_last_to_first() {
        let run = run_query("fail=shipping&mode=choreography");
        assert_eq!(
            operations_of(&run, MessageKind::Compensation),
            ["release", "refund", "cancel"]
        );
        assert!(run.lanes.contains(&"bus"));
    }

    #[test]
    fn a_failed_compensation_is_waited_out_and_retried() {
        let run = run_query("fail=payment&cfail=1");
        assert_eq!(
            operations_of(&run, MessageKind::Compensation),
            ["cancel", "cancel"]
        );
        assert!(run.messages.iter().any(|m| m.kind == MessageKind::Wait));
        assert_eq!(run.outcome, Some(SagaOutcome::Compensated));
    }

    #[test]
    fn a_crash_resends_with_the_same_key_and_nothing_is_done_twice() {
        let run = run_query("crash=payment");
        let kinds: Vec<MessageKind> = run.messages.iter().map(|m| m.kind).collect();
        assert!(kinds.contains(&MessageKind::Crash) && kinds.contains(&MessageKind::Restart));
        let payment_requests = run
            .messages
            .iter()
            .filter(|m| m.kind == MessageKind::Action && m.step == Some(1))
            .count();
        assert_eq!(
            payment_requests, 2,
            "the command goes out again after the restart"
        );
        let last = run.messages.last().expect("a run has messages");
        assert_eq!((last.balances.wallet, last.balances.money_held), (70, 30));
        assert_eq!(run.outcome, Some(SagaOutcome::Completed));
    }

    #[test]
    fn settings_round_trip_through_the_query() {
        let settings =
            SagaSettings::from_query("mode=choreography&fail=shipping&cfail=1&crash=compensation");
        assert_eq!(settings.crash, Some(COMPENSATION));
        let again = SagaSettings::from_query(&query::to_query(settings.pairs()));
        assert_eq!(again, settings);
    }
}
