//! The saga as a sans-IO state machine: outcomes in, log entries and commands out.
//!
//! [`Saga`] wraps the decision function ([`next_action`]) with what a driver needs: it keeps
//! the log, remembers which command is in flight (so a duplicate or late reply changes
//! nothing), holds back retries until their backoff has passed, and queues its effects as
//! [`Output`]s. The vocabulary is the book's: `handle_input(now, input)`,
//! `handle_timeout(now)`, `poll_output()`, `poll_timeout()`; drain the outputs after every
//! input.
//!
//! The driver's one duty besides sending commands: persist every [`Output::Record`] before
//! acting on the [`Output::Send`] that follows it (write-ahead). Then a crash at any moment
//! leaves a log from which [`Saga::resume`] carries on, re-sending at most the one command
//! that was in flight, with the same idempotency key.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::decide::next_action;
use crate::definition::SagaDefinition;
use crate::error::SagaError;
use crate::lock::OrderStatus;
use crate::log::{CommandKind, Event, FailureKind, LogEntry, SagaLog, SagaOutcome};
use crate::time::Millis;

// ANCHOR: command
/// A request the driver must send to a participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The saga it belongs to.
    pub saga_id: String,
    /// The step's index in the definition.
    pub step: usize,
    /// The step's name (`reserve_payment`).
    pub step_name: String,
    /// The service to call (`payment`).
    pub participant: String,
    /// The operation to ask for (`reserve`, `refund`).
    pub operation: String,
    /// Action or compensation.
    pub kind: CommandKind,
    /// 1 for the first try.
    pub attempt: u32,
    /// The same for every try of this action (or compensation) in this saga.
    pub idempotency_key: String,
}
// ANCHOR_END: command

/// What a driver reports to a saga.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// The step's action succeeded.
    StepSucceeded {
        /// The step's index in the definition, as in its [`Command`].
        step: usize,
        /// The try this answers.
        attempt: u32,
    },
    /// The step's action failed.
    StepFailed {
        /// The step's index in the definition, as in its [`Command`].
        step: usize,
        /// The try this answers.
        attempt: u32,
        /// Business or retryable.
        kind: FailureKind,
        /// What was said.
        reason: String,
    },
    /// The step's compensation succeeded.
    CompensationSucceeded {
        /// The step's index in the definition, as in its [`Command`].
        step: usize,
        /// The try this answers.
        attempt: u32,
    },
    /// The step's compensation failed.
    CompensationFailed {
        /// The step's index in the definition, as in its [`Command`].
        step: usize,
        /// The try this answers.
        attempt: u32,
        /// What was said.
        reason: String,
    },
}

impl Input {
    fn addressee(&self) -> (usize, CommandKind, u32) {
        match *self {
            Input::StepSucceeded { step, attempt } | Input::StepFailed { step, attempt, .. } => {
                (step, CommandKind::Action, attempt)
            }
            Input::CompensationSucceeded { step, attempt }
            | Input::CompensationFailed { step, attempt, .. } => {
                (step, CommandKind::Compensation, attempt)
            }
        }
    }

    fn into_event(self) -> Event {
        match self {
            Input::StepSucceeded { step, .. } => Event::StepSucceeded { step },
            Input::StepFailed {
                step, kind, reason, ..
            } => Event::StepFailed { step, kind, reason },
            Input::CompensationSucceeded { step, .. } => Event::CompensationSucceeded { step },
            Input::CompensationFailed { step, reason, .. } => {
                Event::CompensationFailed { step, reason }
            }
        }
    }
}

/// What the saga wants its driver to do, drained with [`Saga::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Persist this log entry (before acting on anything queued after it).
    Record(LogEntry),
    /// Send this command to its participant and report the outcome.
    Send(Command),
    /// The saga is over.
    Finished(SagaOutcome),
}

// ANCHOR: saga
/// One running saga.
#[derive(Clone, Debug)]
pub struct Saga {
    id: String,
    definition: SagaDefinition,
    log: SagaLog,
    /// The latest time the saga was given.
    now: Millis,
    /// The command sent and not yet answered.
    in_flight: Option<Command>,
    /// When a held-back retry may go out.
    wake_at: Option<Millis>,
    outputs: VecDeque<Output>,
}
// ANCHOR_END: saga

impl Saga {
    /// Starts a saga: records `SagaStarted` and queues the first command.
    pub fn start(id: &str, definition: SagaDefinition, now: Millis) -> Result<Saga, SagaError> {
        definition.validate()?;
        let mut saga = Saga {
            id: id.to_owned(),
            definition,
            log: SagaLog::new(),
            now,
            in_flight: None,
            wake_at: None,
            outputs: VecDeque::new(),
        };
        saga.record(Event::SagaStarted);
        saga.advance();
        Ok(saga)
    }

    // ANCHOR: resume
    /// Rebuilds a saga from its stored log, after a crash or a restart.
    ///
    /// Nothing is in flight in a fresh process, so the decision is taken again: if the log
    /// ends with a command sent but not answered, the same command goes out again (same
    /// idempotency key; the participant answers with its first result if it had done it).
    pub fn resume(
        id: &str,
        definition: SagaDefinition,
        log: SagaLog,
        now: Millis,
    ) -> Result<Saga, SagaError> {
        definition.validate()?;
        match log.entries().first() {
            Some(LogEntry {
                event: Event::SagaStarted,
                ..
            }) => {}
            _ => {
                return Err(SagaError::CorruptLog {
                    detail: "the first entry must be saga_started".to_owned(),
                });
            }
        }
        if let Some(entry) = log
            .entries()
            .iter()
            .enumerate()
            .find(|(index, entry)| entry.seq != *index as u64)
        {
            return Err(SagaError::CorruptLog {
                detail: format!("entry {} has seq {}", entry.0, entry.1.seq),
            });
        }
        let latest = log.entries().iter().map(|entry| entry.at).max();
        let mut saga = Saga {
            id: id.to_owned(),
            definition,
            log,
            now: latest.map_or(now, |latest| latest.max(now)),
            in_flight: None,
            wake_at: None,
            outputs: VecDeque::new(),
        };
        saga.advance();
        Ok(saga)
    }
    // ANCHOR_END: resume

    // ANCHOR: handle_input
    /// Reports an outcome. An outcome that does not answer the command in flight (a
    /// duplicate, a late reply to an earlier try) is refused and changes nothing.
    pub fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), SagaError> {
        self.tick(now);
        if let Some(outcome) = self.log.outcome() {
            return Err(SagaError::AlreadyEnded { outcome });
        }
        let (step, kind, attempt) = input.addressee();
        let answers_in_flight = self.in_flight.as_ref().is_some_and(|command| {
            command.step == step && command.kind == kind && command.attempt == attempt
        });
        if !answers_in_flight {
            let expected = match &self.in_flight {
                Some(command) => format!(
                    "waiting for {:?} of step {} (try {})",
                    command.kind, command.step, command.attempt
                ),
                None => "no command is in flight".to_owned(),
            };
            return Err(SagaError::UnexpectedOutcome {
                step,
                kind,
                attempt,
                expected,
            });
        }
        self.in_flight = None;
        self.record(input.into_event());
        self.advance();
        Ok(())
    }
    // ANCHOR_END: handle_input

    // ANCHOR: retry
    /// Sets a saga stopped in `NeedsAttention` running again: records `Resumed` and queues
    /// the command that was stuck, with a fresh retry window. What an operator asks for once
    /// the cause is fixed, and what the orchestrator does itself when the participant
    /// answers again. A saga that is running or over is refused and unchanged.
    pub fn retry(&mut self, now: Millis) -> Result<(), SagaError> {
        self.tick(now);
        match self.log.outcome() {
            Some(SagaOutcome::NeedsAttention) => {}
            outcome => return Err(SagaError::NotStopped { outcome }),
        }
        self.record(Event::Resumed);
        self.advance();
        Ok(())
    }
    // ANCHOR_END: retry

    /// Lets time pass: a retry whose backoff has ended goes out.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.tick(now);
        self.advance();
    }

    /// The next effect for the driver, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the end of a retry's backoff.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.in_flight.is_some() {
            None
        } else {
            self.wake_at
        }
    }

    /// The saga's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The definition it runs.
    pub fn definition(&self) -> &SagaDefinition {
        &self.definition
    }

    /// Everything recorded so far.
    pub fn log(&self) -> &SagaLog {
        &self.log
    }

    /// The command waiting for an outcome.
    pub fn in_flight(&self) -> Option<&Command> {
        self.in_flight.as_ref()
    }

    /// How it ended, if it has.
    pub fn outcome(&self) -> Option<SagaOutcome> {
        self.log.outcome()
    }

    /// The semantic lock: `Pending` until the saga ends.
    pub fn order_status(&self) -> OrderStatus {
        OrderStatus::from_outcome(self.outcome())
    }

    fn tick(&mut self, now: Millis) {
        self.now = self.now.max(now);
    }

    fn record(&mut self, event: Event) {
        let entry = self.log.append(self.now, event).clone();
        self.outputs.push_back(Output::Record(entry));
    }

    fn command(&self, step: usize, kind: CommandKind, attempt: u32) -> Command {
        let definition = &self.definition.steps[step];
        let operation = match kind {
            CommandKind::Action => definition.action.clone(),
            CommandKind::Compensation => definition.compensation.clone().unwrap_or_default(),
        };
        Command {
            saga_id: self.id.clone(),
            step,
            step_name: definition.name.clone(),
            participant: definition.participant.clone(),
            operation,
            kind,
            attempt,
            idempotency_key: self.definition.idempotency_key(&self.id, step, kind),
        }
    }

    // ANCHOR: advance
    /// Acts on the decision until the saga waits for something: an outcome, a backoff, or
    /// nothing at all because it is over.
    fn advance(&mut self) {
        self.wake_at = None;
        while self.in_flight.is_none() {
            let (step, kind, attempt, not_before) = match next_action(&self.definition, &self.log) {
                Action::Run {
                    step,
                    attempt,
                    not_before,
                } => (step, CommandKind::Action, attempt, not_before),
                Action::Compensate {
                    step,
                    attempt,
                    not_before,
                } => (step, CommandKind::Compensation, attempt, not_before),
                Action::Finish => {
                    self.record(Event::SagaCompleted);
                    continue;
                }
                Action::Fail => {
                    self.record(Event::SagaCompensated);
                    continue;
                }
                Action::NeedsAttention { step } => {
                    self.record(Event::NeedsAttention { step });
                    continue;
                }
                Action::Done { outcome } => {
                    if !matches!(self.outputs.back(), Some(Output::Finished(_)))
                        && self.outputs.iter().any(|output| {
                            matches!(output, Output::Record(entry) if entry.event.outcome().is_some())
                        })
                    {
                        self.outputs.push_back(Output::Finished(outcome));
                    }
                    return;
                }
            };
            if step >= self.definition.steps.len() {
                return; // a decision the definition cannot honour: wait for the operator
            }
            if not_before > self.now {
                self.wake_at = Some(not_before);
                return;
            }
            self.record(match kind {
                CommandKind::Action => Event::StepStarted { step, attempt },
                CommandKind::Compensation => Event::CompensationStarted { step, attempt },
            });
            let command = self.command(step, kind, attempt);
            self.in_flight = Some(command.clone());
            self.outputs.push_back(Output::Send(command));
        }
    }
    // ANCHOR_END: advance
}
