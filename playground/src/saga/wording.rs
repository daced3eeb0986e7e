//! The saga playground's words: the labels on the sequence diagram's arrows, the names of
//! the participants' events, and the saga log in sentences.

use saga_core::{Command, CommandKind, Event, SagaDefinition, SagaLog, SagaOutcome};

use crate::saga::participants::Answer;
use crate::saga::settings::Mode;

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
pub(crate) fn event_name(command: &Command, answer: &Answer) -> String {
    let subject = capitalised(&command.participant);
    if answer.ok {
        format!("{subject}{}", past_tense(&command.operation))
    } else {
        format!("{subject}{}Failed", capitalised(&command.operation))
    }
}

/// A saga-log event in words, naming steps by their definition.
pub(crate) fn log_text(definition: &SagaDefinition, event: &Event) -> String {
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

/// The arrow that asks for a step's action or compensation: the command in orchestration,
/// the event that triggers it in choreography.
pub(crate) fn request_label(mode: Mode, command: &Command, last_event: &str) -> String {
    let compensation = command.kind == CommandKind::Compensation;
    match mode {
        Mode::Orchestration => format!("{} (try {})", command.operation, command.attempt),
        Mode::Choreography if command.step == 0 && !compensation => "place order".into(),
        Mode::Choreography => format!("{} → {}", last_event, command.operation),
    }
}

/// The arrow that carries a participant's answer; `name` is the event it publishes.
pub(crate) fn answer_label(mode: Mode, command: &Command, answer: &Answer, name: &str) -> String {
    let mut label = match (mode, answer.ok) {
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
    label
}

/// The note of a crash that loses the reply to `command`.
pub(crate) fn crash_label(mode: Mode, command: &Command) -> String {
    match mode {
        Mode::Orchestration => format!(
            "💥 crashes before {}'s reply arrives ({} was done)",
            command.participant, command.operation
        ),
        Mode::Choreography => format!(
            "💥 {}'s consumer crashes before acknowledging; the bus will redeliver",
            command.participant
        ),
    }
}

/// The note of the restart after a crash, when the saga was rebuilt from its log.
pub(crate) fn restart_label(mode: Mode, log: &SagaLog) -> String {
    match mode {
        Mode::Orchestration => format!(
            "🔄 restarts, reads {} log entries, decides again",
            log.len()
        ),
        Mode::Choreography => "🔄 restarts; the unacknowledged event comes again".to_string(),
    }
}

/// The note of a wait before a retry.
pub(crate) fn wait_label(wait: u64) -> String {
    format!("⏳ waits {wait} ms before retrying")
}

/// The answer the client gets when the saga ends; a compensated saga says which step failed.
pub(crate) fn outcome_label(outcome: SagaOutcome, log: &SagaLog) -> String {
    match outcome {
        SagaOutcome::Completed => "order confirmed ✅".to_string(),
        SagaOutcome::Compensated => format!(
            "order failed: {} ❌",
            log.entries()
                .iter()
                .find_map(|entry| match &entry.event {
                    Event::StepFailed { reason, .. } => Some(reason.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        ),
        SagaOutcome::NeedsAttention => "order needs attention ⚠️".to_string(),
    }
}
