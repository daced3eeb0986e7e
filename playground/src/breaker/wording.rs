//! The breaker playground's words: the log's sentences for the core's events and transitions.
//!
//! Plain English built from the core's own values (rates, thresholds, durations), so the log
//! beside the timeline says why the breaker did what it did.

use std::fmt::Display;

use breaker_core::{Config, Event, TransitionReason};

/// A log line for one of the core's events: the event's serde tag (for colouring) and the
/// event in words. `call` is the number of the call it is about, if any.
pub(crate) fn event_line(
    event: &Event,
    call: Option<u64>,
    config: &Config,
) -> (&'static str, String) {
    let who = call.map_or_else(|| "a call".to_string(), |id| format!("call #{id}"));
    match *event {
        Event::StateTransition {
            from, to, reason, ..
        } => (
            "state_transition",
            format!("{from} → {to}: {}", reason_text(reason, config)),
        ),
        Event::Success { duration, .. } => ("success", format!("{who} succeeded in {duration}")),
        Event::Failure { duration, .. } => ("failure", format!("{who} failed after {duration}")),
        Event::SlowCall { duration, .. } => (
            "slow_call",
            format!("{who} was slow: {duration} ≥ {}", config.slow_call_duration),
        ),
        Event::Ignored { .. } => ("ignored", format!("{who} was ignored")),
        Event::Released { .. } => ("released", format!("{who} was released")),
        Event::Rejected { rejected, .. } => ("rejected", format!("{who}: {rejected}")),
    }
}

/// The log's words for a call whose outcome the core refused as stale.
pub(crate) fn late_text(call: u64, error: &impl Display) -> String {
    format!("call #{call} answered late and was not recorded: {error}")
}

/// Why the breaker changed state, in words, with the thresholds it compared against.
fn reason_text(reason: TransitionReason, config: &Config) -> String {
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
