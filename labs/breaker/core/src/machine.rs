//! The breaker as a [`Machine`]: the shape every core shares, over the breaker's own methods.
//!
//! [`CircuitBreaker`] already speaks the sans-IO vocabulary with inherent methods of the same
//! names; this impl only hands each call to them, so a generic driver (such as
//! `sansio_core::script::run`) can drive the breaker like any other core.

use crate::{BreakerError, CircuitBreaker, Input, Machine, Millis, Output};

impl Machine for CircuitBreaker {
    type Input = Input;
    type Output = Output;
    type Error = BreakerError;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), BreakerError> {
        CircuitBreaker::handle_input(self, now, input)
    }

    fn handle_timeout(&mut self, now: Millis) {
        CircuitBreaker::handle_timeout(self, now);
    }

    fn poll_output(&mut self) -> Option<Output> {
        CircuitBreaker::poll_output(self)
    }

    fn poll_timeout(&self) -> Option<Millis> {
        CircuitBreaker::poll_timeout(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Event, State, TransitionReason};
    use sansio_core::script::{Step, run};

    #[test]
    fn the_script_driver_moves_an_opened_breaker_to_half_open_when_its_wait_ends() {
        let mut breaker = CircuitBreaker::new(Config {
            wait_in_open: Millis::from_secs(5),
            ..Config::default()
        })
        .expect("the default configuration with a 5 s wait is valid");
        let timeline = run(
            &mut breaker,
            [
                Step::Input(Millis(1_000), Input::TransitionTo { state: State::Open }),
                Step::AdvanceTo(Millis(60_000)),
            ],
        );
        let transitions: Vec<_> = timeline
            .outputs
            .iter()
            .filter_map(|(at, output)| match output {
                Output::Event(Event::StateTransition {
                    from, to, reason, ..
                }) => Some((*at, *from, *to, *reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            transitions,
            [
                (
                    Millis(1_000),
                    State::Closed,
                    State::Open,
                    TransitionReason::Manual
                ),
                (
                    Millis(6_000),
                    State::Open,
                    State::HalfOpen,
                    TransitionReason::WaitElapsed
                ),
            ],
            "opened at 1 s, half-open when poll_timeout said, 5 s later"
        );
        assert!(timeline.errors.is_empty(), "{:?}", timeline.errors);
        assert_eq!(Machine::poll_timeout(&breaker), None);
    }
}
