//! The deterministic test driver: runs any [`Machine`] over a script of inputs and clock
//! jumps, and returns what it said, and when, as a [`Timeline`].
//!
//! ```
//! use sansio_core::script::{Step, run};
//! # use sansio_core::{Machine, Millis};
//! # /// Rings once, `delay` after it is set.
//! # #[derive(Default)]
//! # struct Alarm { rings_at: Option<Millis>, rang: bool }
//! # impl Machine for Alarm {
//! #     type Input = Millis;
//! #     type Output = &'static str;
//! #     type Error = core::convert::Infallible;
//! #     fn handle_input(&mut self, now: Millis, delay: Millis) -> Result<(), Self::Error> {
//! #         self.rings_at = Some(now + delay);
//! #         Ok(())
//! #     }
//! #     fn handle_timeout(&mut self, now: Millis) {
//! #         if self.rings_at.is_some_and(|at| at <= now) {
//! #             self.rings_at = None;
//! #             self.rang = true;
//! #         }
//! #     }
//! #     fn poll_output(&mut self) -> Option<&'static str> {
//! #         core::mem::take(&mut self.rang).then_some("ring")
//! #     }
//! #     fn poll_timeout(&self) -> Option<Millis> {
//! #         self.rings_at
//! #     }
//! # }
//! // An alarm set at 10 ms for 5 ms rings at 15 ms, on the way to 100 ms.
//! let timeline = run(
//!     &mut Alarm::default(),
//!     [Step::Input(Millis(10), Millis(5)), Step::AdvanceTo(Millis(100))],
//! );
//! assert_eq!(timeline.outputs, [(Millis(15), "ring")]);
//! assert!(timeline.errors.is_empty());
//! ```

use alloc::vec::Vec;

use crate::{Machine, Millis};

// ANCHOR: step
/// One line of a script: what happens next, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<I> {
    /// At this instant, feed the machine this input (after the timeouts due by then).
    Input(Millis, I),
    /// Let time pass up to this instant, calling `handle_timeout` at every deadline on the way.
    AdvanceTo(Millis),
}
// ANCHOR_END: step

/// What a machine said over a script, each item stamped with the driver's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline<O, E> {
    /// Every output, in the order the machine queued them.
    pub outputs: Vec<(Millis, O)>,
    /// Every input the machine refused, with the error it gave.
    pub errors: Vec<(Millis, E)>,
}

impl<O, E> Default for Timeline<O, E> {
    fn default() -> Self {
        Self {
            outputs: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// Runs `machine` over `steps` on a clock that starts at zero, and returns its timeline.
///
/// Before each step the driver calls `handle_timeout` at every instant `poll_timeout` names
/// up to the step's time, and it drains the outputs after every call (outputs the machine
/// queued before the script started come out first, at zero). The clock never goes back: a
/// step earlier than the clock happens at the clock's time. After the last step nothing more
/// happens; end a script with [`Step::AdvanceTo`] to see the timeouts after its last input.
///
/// A machine that, once given `handle_timeout(t)`, still asks for `t` or earlier breaks its
/// contract; the driver does not call it again for the same instant (it would never stop),
/// and carries on to the next step.
pub fn run<M, S>(machine: &mut M, steps: S) -> Timeline<M::Output, M::Error>
where
    M: Machine,
    S: IntoIterator<Item = Step<M::Input>>,
{
    let mut driver = Driver {
        machine,
        now: Millis::ZERO,
        fired_at: None,
        timeline: Timeline::default(),
    };
    driver.drain();
    for step in steps {
        match step {
            Step::Input(at, input) => {
                driver.advance_to(at);
                let now = driver.now;
                if let Err(error) = driver.machine.handle_input(now, input) {
                    driver.timeline.errors.push((now, error));
                }
                // An input may set a deadline at `now` itself: it is a new one, so it fires.
                driver.fired_at = None;
                driver.drain();
            }
            Step::AdvanceTo(at) => driver.advance_to(at),
        }
    }
    driver.timeline
}

/// The driver's state while a script runs.
struct Driver<'m, M: Machine> {
    machine: &'m mut M,
    now: Millis,
    /// The instant of the last `handle_timeout` since the last input, so a machine that asks
    /// for the same instant again is not called forever.
    fired_at: Option<Millis>,
    timeline: Timeline<M::Output, M::Error>,
}

impl<M: Machine> Driver<'_, M> {
    /// Moves the clock to `to` (never back), firing every deadline due on the way.
    fn advance_to(&mut self, to: Millis) {
        while let Some(due) = self.machine.poll_timeout() {
            let at = due.max(self.now);
            if at > to || self.fired_at == Some(at) {
                break;
            }
            self.now = at;
            self.machine.handle_timeout(at);
            self.fired_at = Some(at);
            self.drain();
        }
        self.now = self.now.max(to);
    }

    /// Takes every queued output, stamped with the clock.
    fn drain(&mut self) {
        while let Some(output) = self.machine.poll_output() {
            self.timeline.outputs.push((self.now, output));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec;

    /// A kitchen timer: set it for a span, it rings when the span is over; cancel it, and a
    /// timer that is not running refuses.
    #[derive(Debug, Default)]
    struct Timer {
        rings_at: Option<Millis>,
        outputs: VecDeque<Said>,
        /// How often `handle_timeout` was called, due or not.
        timeouts: u32,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Ask {
        Set(Millis),
        Cancel,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Said {
        Set { rings_at: Millis },
        Rang,
        Cancelled,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct NotRunning;

    impl Machine for Timer {
        type Input = Ask;
        type Output = Said;
        type Error = NotRunning;

        fn handle_input(&mut self, now: Millis, input: Ask) -> Result<(), NotRunning> {
            match input {
                Ask::Set(span) => {
                    let rings_at = now + span;
                    self.rings_at = Some(rings_at);
                    self.outputs.push_back(Said::Set { rings_at });
                }
                Ask::Cancel => {
                    self.rings_at.take().ok_or(NotRunning)?;
                    self.outputs.push_back(Said::Cancelled);
                }
            }
            Ok(())
        }

        fn handle_timeout(&mut self, now: Millis) {
            self.timeouts += 1;
            if self.rings_at.is_some_and(|at| at <= now) {
                self.rings_at = None;
                self.outputs.push_back(Said::Rang);
            }
        }

        fn poll_output(&mut self) -> Option<Said> {
            self.outputs.pop_front()
        }

        fn poll_timeout(&self) -> Option<Millis> {
            self.rings_at
        }
    }

    #[test]
    fn a_deadline_fires_at_its_own_instant_on_the_way_to_a_later_step() {
        let mut timer = Timer::default();
        let timeline = run(
            &mut timer,
            [
                Step::Input(Millis(10), Ask::Set(Millis(5))),
                Step::Input(Millis(100), Ask::Set(Millis(50))),
            ],
        );
        assert_eq!(
            timeline.outputs,
            [
                (
                    Millis(10),
                    Said::Set {
                        rings_at: Millis(15)
                    }
                ),
                (Millis(15), Said::Rang),
                (
                    Millis(100),
                    Said::Set {
                        rings_at: Millis(150)
                    }
                ),
            ],
            "the ring at 15 ms is stamped 15 ms, not the 100 ms of the next step; nothing after the last step"
        );
        assert_eq!(timer.timeouts, 1, "handle_timeout is called only when due");
    }

    #[test]
    fn advancing_fires_what_is_due_by_then_and_nothing_later() {
        let mut timer = Timer::default();
        let timeline = run(
            &mut timer,
            [
                Step::Input(Millis(0), Ask::Set(Millis(30))),
                Step::AdvanceTo(Millis(29)),
            ],
        );
        assert_eq!(timeline.outputs.len(), 1, "{timeline:?}");
        assert_eq!(timer.poll_timeout(), Some(Millis(30)));
        let timeline = run(&mut timer, [Step::AdvanceTo(Millis(30))]);
        assert_eq!(timeline.outputs, [(Millis(30), Said::Rang)]);
    }

    #[test]
    fn a_refused_input_is_on_the_timeline_with_its_time() {
        let timeline = run(
            &mut Timer::default(),
            [
                Step::Input(Millis(5), Ask::Cancel),
                Step::Input(Millis(6), Ask::Set(Millis(1))),
                Step::Input(Millis(6), Ask::Cancel),
            ],
        );
        assert_eq!(timeline.errors, [(Millis(5), NotRunning)]);
        assert_eq!(
            timeline.outputs,
            [
                (
                    Millis(6),
                    Said::Set {
                        rings_at: Millis(7)
                    }
                ),
                (Millis(6), Said::Cancelled),
            ]
        );
    }

    #[test]
    fn a_step_in_the_past_happens_at_the_clocks_time() {
        let timeline = run(
            &mut Timer::default(),
            [
                Step::AdvanceTo(Millis(100)),
                Step::Input(Millis(40), Ask::Set(Millis(10))),
                Step::AdvanceTo(Millis(200)),
            ],
        );
        assert_eq!(
            timeline.outputs,
            [
                (
                    Millis(100),
                    Said::Set {
                        rings_at: Millis(110)
                    }
                ),
                (Millis(110), Said::Rang),
            ]
        );
    }

    #[test]
    fn a_deadline_an_input_sets_for_now_still_fires() {
        let timeline = run(
            &mut Timer::default(),
            [
                Step::Input(Millis(20), Ask::Set(Millis(0))),
                Step::AdvanceTo(Millis(20)),
            ],
        );
        assert_eq!(timeline.outputs.last(), Some(&(Millis(20), Said::Rang)));
    }

    #[test]
    fn outputs_queued_before_the_script_come_out_at_zero() {
        let mut timer = Timer::default();
        timer.outputs.push_back(Said::Cancelled);
        let timeline = run(&mut timer, []);
        assert_eq!(timeline.outputs, [(Millis::ZERO, Said::Cancelled)]);
    }

    /// Breaks the contract: asks for the same past instant however often it is called.
    struct Stuck {
        timeouts: u32,
    }

    impl Machine for Stuck {
        type Input = ();
        type Output = ();
        type Error = ();

        fn handle_input(&mut self, _: Millis, (): ()) -> Result<(), ()> {
            Ok(())
        }

        fn handle_timeout(&mut self, _: Millis) {
            self.timeouts += 1;
        }

        fn poll_output(&mut self) -> Option<()> {
            None
        }

        fn poll_timeout(&self) -> Option<Millis> {
            Some(Millis(1))
        }
    }

    #[test]
    fn a_machine_that_keeps_asking_for_the_same_instant_does_not_hang_the_driver() {
        let mut stuck = Stuck { timeouts: 0 };
        let timeline = run(
            &mut stuck,
            vec![
                Step::AdvanceTo(Millis(10)),
                Step::AdvanceTo(Millis(20)),
                Step::Input(Millis(30), ()),
                Step::AdvanceTo(Millis(40)),
            ],
        );
        assert_eq!(timeline, Timeline::default());
        assert_eq!(
            stuck.timeouts, 4,
            "one call per step, at the clock's time when it starts: 1, 10, 20 and 30 ms"
        );
    }
}
