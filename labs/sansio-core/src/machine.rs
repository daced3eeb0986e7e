//! [`Machine`]: the shape of every core, a state machine that is told the time and asked what
//! to do.

use crate::Millis;

// ANCHOR: machine
/// A sans-IO state machine: the one shape of every core in the book.
///
/// The machine owns its state and nothing else: no socket, no clock, no task. Its driver (a
/// tokio service, the browser playground, [`script::run`](crate::script::run) in a test) owns
/// all of those, and keeps three promises:
///
/// 1. it passes `now` into every call, read from one clock that never goes back;
/// 2. after every `handle_input` and `handle_timeout`, it drains `poll_output` until `None`,
///    and acts on the outputs in the order they come;
/// 3. after every call it asks `poll_timeout` again (any call may move it), and calls
///    `handle_timeout` once its clock reaches that instant, or sooner.
///
/// In return the machine never blocks, never panics on a strange time, and does nothing it
/// was not asked to do: the same calls with the same times give the same outputs, every run.
pub trait Machine {
    /// What the driver feeds in: a reply, a request, an operator's command.
    type Input;
    /// What the machine asks of the driver, or tells it happened, in the order it happened.
    type Output;
    /// Why an input was refused. A refused input changes nothing but the machine's clock.
    type Error;

    /// Applies one input at `now`, queueing any outputs it causes.
    fn handle_input(&mut self, now: Millis, input: Self::Input) -> Result<(), Self::Error>;

    /// Lets time pass up to `now`: applies every deadline at or before `now`, queueing what
    /// that causes. Calling it early, or when nothing is due, is harmless: what is not due
    /// does not happen. Afterwards `poll_timeout` is `None` or later than `now`.
    fn handle_timeout(&mut self, now: Millis);

    /// The oldest queued output, or `None` when the queue is empty. Only the two `handle_`
    /// calls queue outputs.
    fn poll_output(&mut self) -> Option<Self::Output>;

    /// The earliest instant at which the machine wants `handle_timeout`; `None` when it waits
    /// for nothing, and only an input can move it.
    fn poll_timeout(&self) -> Option<Millis>;
}
// ANCHOR_END: machine
