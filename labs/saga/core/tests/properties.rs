//! Property test: thousands of random sagas against a model of idempotent participants.
//!
//! Each participant is modelled the way the lab's services behave: a reply is stored per
//! idempotency key with the work, a compensation leaves a tombstone, and a reply can be lost
//! after the work is done. The driver adds the disorder of real systems: business refusals,
//! timeouts, lost replies, duplicate deliveries, and crashes (the saga is rebuilt from its
//! log, with whatever was in flight forgotten). Whatever happens, every saga ends; a
//! completed saga holds every step and a compensated one holds none; no key's work is done
//! twice; compensations run last to first.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use proptest::prelude::*;
use saga_core::{
    Command, CommandKind, Event, FailureKind, Input, Millis, Saga, SagaDefinition, SagaOutcome,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    Nothing,
    Applied,
    Undone,
}

/// What the next delivery does.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Succeed,
    Refuse,
    TimeOutBefore,
    LoseReply,
    Duplicate,
    Crash,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Succeed),
        1 => Just(Fate::Refuse),
        2 => Just(Fate::TimeOutBefore),
        1 => Just(Fate::LoseReply),
        1 => Just(Fate::Duplicate),
        1 => Just(Fate::Crash),
    ]
}

#[derive(Default)]
struct Participants {
    held: HashMap<usize, Held>,
    replies: HashMap<String, bool>,
    executions: HashMap<String, u32>,
}

impl Participants {
    /// Delivers `command`; returns whether it succeeded, or `None` for "no answer".
    fn deliver(&mut self, command: &Command, fate: Fate, pivot: usize) -> Option<bool> {
        if let Some(stored) = self.replies.get(&command.idempotency_key) {
            return Some(*stored);
        }
        if matches!(fate, Fate::TimeOutBefore) {
            return None;
        }
        *self
            .executions
            .entry(command.idempotency_key.clone())
            .or_default() += 1;
        let held = self.held.entry(command.step).or_insert(Held::Nothing);
        let success = match command.kind {
            CommandKind::Action => {
                if *held == Held::Undone || (matches!(fate, Fate::Refuse) && command.step <= pivot)
                {
                    false
                } else {
                    *held = Held::Applied;
                    true
                }
            }
            CommandKind::Compensation => {
                *held = Held::Undone;
                true
            }
        };
        self.replies
            .insert(command.idempotency_key.clone(), success);
        if matches!(fate, Fate::LoseReply) {
            None
        } else {
            Some(success)
        }
    }
}

fn input(command: &Command, answer: Option<bool>) -> Input {
    let (step, attempt) = (command.step, command.attempt);
    match (command.kind, answer) {
        (CommandKind::Action, Some(true)) => Input::StepSucceeded { step, attempt },
        (CommandKind::Action, Some(false)) => Input::StepFailed {
            step,
            attempt,
            kind: FailureKind::Business,
            reason: "refused".to_owned(),
        },
        (CommandKind::Action, None) => Input::StepFailed {
            step,
            attempt,
            kind: FailureKind::Retryable,
            reason: "timeout".to_owned(),
        },
        (CommandKind::Compensation, Some(_)) => Input::CompensationSucceeded { step, attempt },
        (CommandKind::Compensation, None) => Input::CompensationFailed {
            step,
            attempt,
            reason: "timeout".to_owned(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn random_sagas_end_consistent_and_never_do_work_twice(
        fates in proptest::collection::vec(fate(), 1..80),
    ) {
        let definition = SagaDefinition::order_fulfilment();
        let pivot = definition.pivot.unwrap();
        let steps = definition.steps.len();
        let mut participants = Participants::default();
        let mut saga = Saga::start("p", definition.clone(), Millis(0)).unwrap();
        let mut now = 0u64;
        // After the random prefix the world is healthy: a saga must then end.
        let mut fates = fates.into_iter().chain(std::iter::repeat(Fate::Succeed));
        let mut rounds = 0;
        while saga.outcome().is_none() {
            rounds += 1;
            prop_assert!(rounds < 10_000, "the saga never ended: {:?}", saga.log());
            while saga.poll_output().is_some() {}
            let Some(command) = saga.in_flight().cloned() else {
                let wake = saga.poll_timeout().expect("a saga that waits for nothing has ended");
                now = now.max(wake.0);
                saga.handle_timeout(Millis(now));
                continue;
            };
            now += 1;
            match fates.next().unwrap() {
                Fate::Crash => {
                    // The process dies: only the log survives. The command may or may not
                    // have reached its participant; here it did.
                    participants.deliver(&command, Fate::Succeed, pivot);
                    saga = Saga::resume("p", definition.clone(), saga.log().clone(), Millis(now))
                        .unwrap();
                }
                Fate::Duplicate => {
                    let answer = participants.deliver(&command, Fate::Succeed, pivot);
                    let once = input(&command, answer);
                    saga.handle_input(Millis(now), once.clone()).unwrap();
                    prop_assert!(saga.handle_input(Millis(now), once).is_err());
                }
                fate => {
                    let answer = participants.deliver(&command, fate, pivot);
                    saga.handle_input(Millis(now), input(&command, answer)).unwrap();
                }
            }
        }
        for (key, count) in &participants.executions {
            prop_assert!(*count <= 1, "{key} did its work {count} times");
        }
        let applied = (0..steps)
            .filter(|step| participants.held.get(step) == Some(&Held::Applied))
            .count();
        match saga.outcome().unwrap() {
            SagaOutcome::Completed => prop_assert_eq!(applied, steps),
            SagaOutcome::Compensated => prop_assert_eq!(applied, 0),
            SagaOutcome::NeedsAttention => {}
        }
        let undone: Vec<usize> = saga
            .log()
            .entries()
            .iter()
            .filter_map(|entry| match entry.event {
                Event::CompensationSucceeded { step } => Some(step),
                _ => None,
            })
            .collect();
        prop_assert!(undone.windows(2).all(|pair| pair[0] > pair[1]), "{undone:?}");
    }
}
