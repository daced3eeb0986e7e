//! One loop that drives any [`Machine`] in a service: inputs from a channel, time from a
//! [`TokioClock`], outputs to the caller.
//!
//! It keeps the three promises the `Machine` trait asks of a driver: every call gets `now`
//! from one clock; after every call the outputs are drained, in order; and the loop sleeps
//! until the machine's `poll_timeout`, asked again after every call. Under a paused tokio
//! runtime the sleeps take no real time, so a test runs a service's timeline exactly.

use std::ops::ControlFlow;

use sansio_core::{Machine, Millis};
use tokio::sync::mpsc;

use crate::clock::{Clock, TokioClock};

/// What the loop hands to its caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<O, E> {
    /// An output the machine queued.
    Output(O),
    /// An input the machine refused, with why.
    Refused(E),
}

/// Why [`Driver::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The caller's handler said to stop.
    Asked,
    /// Every input sender is gone and the machine waits for no deadline.
    Idle,
}

/// A machine and the clock it is driven by.
#[derive(Debug)]
pub struct Driver<M> {
    machine: M,
    clock: TokioClock,
}

impl<M: Machine> Driver<M> {
    /// Drives `machine` with `clock`'s time.
    pub fn new(machine: M, clock: TokioClock) -> Self {
        Self { machine, clock }
    }

    /// Now, on the driver's clock.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The machine, to read its state.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// Gives the machine back.
    pub fn into_machine(self) -> M {
        self.machine
    }

    /// Feeds one input at now.
    pub fn input(&mut self, input: M::Input) -> Result<(), M::Error> {
        let now = self.clock.now();
        self.machine.handle_input(now, input)
    }

    /// Drains the queued outputs, oldest first.
    pub fn outputs(&mut self) -> impl Iterator<Item = M::Output> + '_ {
        std::iter::from_fn(|| self.machine.poll_output())
    }

    /// Sleeps until the machine's next deadline and lets it pass. Returns `false` at once,
    /// without sleeping, when the machine waits for nothing.
    pub async fn wait_for_timeout(&mut self) -> bool {
        let Some(due) = self.machine.poll_timeout() else {
            return false;
        };
        self.clock.sleep_until(due).await;
        let now = self.clock.now().max(due);
        self.machine.handle_timeout(now);
        true
    }

    /// Runs until `handle` says [`ControlFlow::Break`], or until the inputs are closed and
    /// no deadline is left. `handle` sees every output and every refused input, in order.
    pub async fn run<F>(&mut self, inputs: &mut mpsc::Receiver<M::Input>, mut handle: F) -> Stopped
    where
        F: FnMut(Event<M::Output, M::Error>) -> ControlFlow<()>,
    {
        let mut open = true;
        loop {
            while let Some(output) = self.machine.poll_output() {
                if handle(Event::Output(output)).is_break() {
                    return Stopped::Asked;
                }
            }
            let due = self.machine.poll_timeout();
            if !open && due.is_none() {
                return Stopped::Idle;
            }
            let sleep = async {
                match due {
                    Some(due) => self.clock.sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = inputs.recv(), if open => match input {
                    Some(input) => {
                        let now = self.clock.now();
                        if let Err(error) = self.machine.handle_input(now, input)
                            && handle(Event::Refused(error)).is_break()
                        {
                            return Stopped::Asked;
                        }
                    }
                    None => open = false,
                },
                () = sleep => {
                    // The sleep ends at the deadline; a clock read a hair early must not
                    // leave it unfired.
                    let now = self.clock.now().max(due.unwrap_or_default());
                    self.machine.handle_timeout(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// Echoes each input back after `delay`; refuses zero.
    struct Delayed {
        delay: Millis,
        pending: VecDeque<(Millis, u32)>,
        ready: VecDeque<(Millis, u32)>,
    }

    impl Machine for Delayed {
        type Input = u32;
        type Output = (Millis, u32);
        type Error = &'static str;

        fn handle_input(&mut self, now: Millis, input: u32) -> Result<(), &'static str> {
            if input == 0 {
                return Err("zero");
            }
            self.pending.push_back((now + self.delay, input));
            Ok(())
        }

        fn handle_timeout(&mut self, now: Millis) {
            while self.pending.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, value)) = self.pending.pop_front() {
                    self.ready.push_back((now, value));
                }
            }
        }

        fn poll_output(&mut self) -> Option<(Millis, u32)> {
            self.ready.pop_front()
        }

        fn poll_timeout(&self) -> Option<Millis> {
            self.pending.front().map(|(due, _)| *due)
        }
    }

    fn delayed(ms: u64) -> Delayed {
        Delayed {
            delay: Millis(ms),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn outputs_come_at_their_deadlines_and_refusals_are_reported() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut driver = Driver::new(delayed(100), TokioClock::new());
        let feeder = tokio::spawn(async move {
            tx.send(1).await.ok();
            tx.send(0).await.ok();
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            tx.send(2).await.ok();
        });
        let mut seen = Vec::new();
        let stopped = driver
            .run(&mut rx, |event| {
                seen.push(event);
                ControlFlow::Continue(())
            })
            .await;
        feeder.await.expect("feeder");
        assert_eq!(stopped, Stopped::Idle);
        assert_eq!(
            seen,
            vec![
                Event::Refused("zero"),
                Event::Output((Millis(100), 1)),
                Event::Output((Millis(130), 2)),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_handler_can_stop_the_loop() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut driver = Driver::new(delayed(10), TokioClock::new());
        for value in 1..=3 {
            tx.send(value).await.expect("send");
        }
        let mut first = None;
        let stopped = driver
            .run(&mut rx, |event| {
                first = Some(event);
                ControlFlow::Break(())
            })
            .await;
        assert_eq!(stopped, Stopped::Asked);
        assert_eq!(first, Some(Event::Output((Millis(10), 1))));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn step_by_step_driving_sleeps_to_the_deadline() {
        let mut driver = Driver::new(delayed(250), TokioClock::new());
        assert!(!driver.wait_for_timeout().await, "nothing to wait for");
        driver.input(7).expect("accepted");
        assert!(driver.wait_for_timeout().await);
        assert_eq!(driver.outputs().collect::<Vec<_>>(), vec![(Millis(250), 7)]);
        assert_eq!(driver.now(), Millis(250));
    }
}
