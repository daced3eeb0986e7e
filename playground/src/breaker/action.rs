//! What the reader did, and how each action is written in the URL's `do` list.
//!
//! A shared scenario is its settings plus its actions with their times: `do=b.0_df.2900`
//! is a burst at 0 ms and the downstream turning failing at 2,900 ms. Each action has a short
//! token (`1`, `b`, `s1`, `df`, `r20`, `p50`, `f`, `x`, `n`); an unreadable token is skipped
//! when a link is replayed.

use crate::breaker::settings::{Downstream, FAILURE_PERCENT, RATE};
use crate::settings::narrow;

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
    /// Operator: hold the breaker open (the core's `Input::ForceOpen`).
    ForceOpen,
    /// Operator: let every call through and record nothing (the core's `Input::Disable`).
    Disable,
    /// Operator: back to normal, a fresh Closed with an empty window (the core's `Input::Reset`).
    Reset,
}

impl Action {
    /// The action's token in the URL's `do` list.
    pub(crate) fn token(self) -> String {
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
    pub(crate) fn is_setting(self) -> bool {
        matches!(
            self,
            Action::Steady(_) | Action::Downstream(_) | Action::Rate(_) | Action::FailurePercent(_)
        )
    }

    /// Reads a token of the `do` list; `None` for one this playground never writes.
    pub(crate) fn parse(token: &str) -> Option<Action> {
        let (head, rest) =
            token.split_at(token.char_indices().nth(1).map_or(token.len(), |(i, _)| i));
        match head {
            "1" if rest.is_empty() => Some(Action::SendOne),
            "b" if rest.is_empty() => Some(Action::Burst),
            "f" if rest.is_empty() => Some(Action::ForceOpen),
            "x" if rest.is_empty() => Some(Action::Disable),
            "n" if rest.is_empty() => Some(Action::Reset),
            "s" => Some(Action::Steady(rest == "1")),
            "d" => Downstream::ALL
                .into_iter()
                .find(|mode| &mode.code()[..1] == rest)
                .map(Action::Downstream),
            "r" => RATE.parse(rest).map(|rate| Action::Rate(narrow(rate))),
            "p" => FAILURE_PERCENT
                .parse(rest)
                .map(|percent| Action::FailurePercent(narrow(percent))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
