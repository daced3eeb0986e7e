//! The saga as a [`Machine`]: the shape every core shares, over the saga's own methods.
//!
//! [`Saga`] already speaks the sans-IO vocabulary with inherent methods of the same names;
//! this impl only hands each call to them, so a generic driver (such as
//! `sansio_core::script::run`) can drive a saga like any other core.

use crate::{Input, Machine, Millis, Output, Saga, SagaError};

impl Machine for Saga {
    type Input = Input;
    type Output = Output;
    type Error = SagaError;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), SagaError> {
        Saga::handle_input(self, now, input)
    }

    fn handle_timeout(&mut self, now: Millis) {
        Saga::handle_timeout(self, now);
    }

    fn poll_output(&mut self) -> Option<Output> {
        Saga::poll_output(self)
    }

    fn poll_timeout(&self) -> Option<Millis> {
        Saga::poll_timeout(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SagaDefinition, SagaOutcome};
    use sansio_core::script::{Step, run};

    #[test]
    fn the_script_driver_runs_a_saga_to_its_end_and_keeps_its_refusals() {
        let mut saga = Saga::start("order-1", SagaDefinition::order_fulfilment(), Millis(0))
            .expect("the order fulfilment saga starts");
        let steps = saga.definition().steps.len();
        let script = (0..steps)
            .map(|step| {
                Step::Input(
                    Millis(10 * (step as u64 + 1)),
                    Input::StepSucceeded { step, attempt: 1 },
                )
            })
            // A duplicate reply once the saga is over: refused, on the timeline.
            .chain([Step::Input(
                Millis(1_000),
                Input::StepSucceeded {
                    step: 0,
                    attempt: 1,
                },
            )]);
        let timeline = run(&mut saga, script);
        assert_eq!(saga.outcome(), Some(SagaOutcome::Completed));
        assert_eq!(
            timeline.errors.len(),
            1,
            "only the late duplicate is refused: {:?}",
            timeline.errors
        );
        assert_eq!(timeline.errors[0].0, Millis(1_000));
        let sent = timeline
            .outputs
            .iter()
            .filter(|(_, output)| matches!(output, Output::Send(_)))
            .count();
        assert_eq!(sent, steps, "one command per step, the first at the start");
        assert_eq!(
            timeline.outputs.first().map(|(at, _)| *at),
            Some(Millis::ZERO),
            "what start() queued comes out at the clock's start"
        );
    }
}
