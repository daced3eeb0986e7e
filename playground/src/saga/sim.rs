//! The saga playground's simulation: the real [`Saga`] from `saga-core` driving four
//! simulated participants (order, payment, inventory, shipping) that keep balances.
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

use saga_core::{
    Command, CommandKind, Event, FailureKind, Input, LogEntry, Millis, OrderStatus, Output, Saga,
    SagaDefinition, SagaOutcome,
};

use crate::saga::participants::Participants;
use crate::saga::settings::{COMPENSATION, Mode, SagaSettings};
use crate::saga::view::{LogView, Message, MessageKind, SagaRun};
use crate::saga::wording;

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
                text: wording::log_text(&self.definition, &entry.event),
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
        let request_label = wording::request_label(self.settings.mode, &command, &self.last_event);
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
        let name = wording::event_name(&command, &answer);
        let label = wording::answer_label(self.settings.mode, &command, &answer, &name);
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
        let who = match self.settings.mode {
            Mode::Orchestration => "orchestrator",
            Mode::Choreography => lane,
        };
        let label = wording::crash_label(self.settings.mode, command);
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
        let label = wording::restart_label(self.settings.mode, self.saga.log());
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
                runner.push(driver, driver, wording::wait_label(wait), MessageKind::Wait);
                runner.now = runner.now.max(wake.0);
                runner.saga.handle_timeout(Millis(runner.now));
                runner.pending = runner.drain();
            } else {
                break;
            }
        }
        if let Some(outcome) = runner.outcome.or(runner.saga.outcome()) {
            let answer = wording::outcome_label(outcome, runner.saga.log());
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
    use crate::settings::Settings;

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
        assert_eq!(
            (
                last.balances.wallet,
                last.balances.money_held,
                last.balances.money_captured
            ),
            (70, 0, 30)
        );
        assert_eq!((last.balances.stock, last.balances.stock_reserved), (4, 1));
        assert!(last.balances.courier_booked);
    }

    #[test]
    fn an_approved_order_shows_its_money_captured_not_held() {
        for query in ["", "mode=choreography", "crash=shipping"] {
            let run = run_query(query);
            assert_eq!(run.outcome, Some(SagaOutcome::Completed), "{query}");
            let balances = |m: &Message| {
                let json = serde_json::to_value(&m.balances).expect("balances serialise");
                (
                    json["wallet"].clone(),
                    json["money_held"].clone(),
                    json["money_captured"].clone(),
                )
            };
            let last = run.messages.last().expect("a run has messages");
            assert_eq!(last.balances.order_status, "APPROVED", "{query}");
            assert_eq!(
                balances(last),
                (70.into(), 0.into(), 30.into()),
                "{query}: after the capture the money is taken, not held"
            );
            // Held from the reserve until the capture's reply, captured from then on.
            let captured_at = run
                .messages
                .iter()
                .position(|m| m.kind == MessageKind::Reply && m.op.as_deref() == Some("capture"))
                .expect("the capture is answered");
            assert_eq!(
                balances(&run.messages[captured_at - 1]),
                (70.into(), 30.into(), 0.into()),
                "{query}: before the capture the money is held"
            );
        }
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
        assert_eq!(
            (
                last.balances.wallet,
                last.balances.money_held,
                last.balances.money_captured
            ),
            (100, 0, 0)
        );
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
        assert_eq!(
            (last.balances.wallet, last.balances.money_captured),
            (70, 30),
            "charged once"
        );
        assert_eq!(run.outcome, Some(SagaOutcome::Completed));
    }
}
