//! A projection as a `Machine`: events of `$all` go in, in any order and any number of
//! times; the [`HighWater`] mark puts them in position order, [`project`] applies each to the
//! view once, and the outputs tell the driver which rows to write with the new checkpoint.
//! The machine's only timer is the gap's wait (`poll_timeout`).

use std::collections::VecDeque;

use sansio_core::{Machine, Millis};

use crate::fact::Positioned;
use crate::step::{HighWater, Offered, Released, Step, project};
use crate::view::{RowKey, View};

// ANCHOR: projector_types
/// What the driver tells a projector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// An event as the transport delivered it: maybe again, maybe early.
    Deliver(Positioned),
}

/// What a projector tells its driver, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The event at `position` is applied: write `rows` and the checkpoint `position`.
    Applied {
        /// The event's position, the new checkpoint.
        position: u64,
        /// The rows it changed.
        rows: Vec<RowKey>,
    },
    /// The event at `position` was seen before: nothing to write (acknowledge it).
    Redelivered {
        /// The redelivered position.
        position: u64,
    },
    /// Positions `from..=to` never came within the wait: declared rolled back; the checkpoint
    /// is now `to`.
    GapDeclared {
        /// The first missing position.
        from: u64,
        /// The last missing position.
        to: u64,
    },
}
// ANCHOR_END: projector_types

/// A projection feeding one view.
#[derive(Clone, Debug)]
pub struct Projector<V: View> {
    view: V,
    checkpoint: u64,
    mark: HighWater,
    outputs: VecDeque<Output>,
}

impl<V: View> Projector<V> {
    /// A projector whose view holds everything up to `checkpoint`, waiting `gap_wait` for a
    /// missing position before declaring it rolled back.
    pub fn new(view: V, checkpoint: u64, gap_wait: Millis) -> Projector<V> {
        Projector {
            view,
            checkpoint,
            mark: HighWater::new(checkpoint, gap_wait),
            outputs: VecDeque::new(),
        }
    }

    /// The view as projected so far.
    pub fn view(&self) -> &V {
        &self.view
    }

    /// The last position applied or declared missing.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Swaps in a view built elsewhere at the same checkpoint (a rebuild's), keeping what the
    /// mark holds; returns the old one.
    pub fn replace_view(&mut self, view: V) -> V {
        std::mem::replace(&mut self.view, view)
    }

    /// How many events wait behind a gap.
    pub fn held(&self) -> usize {
        self.mark.held()
    }

    fn drain(&mut self, now: Millis) {
        while let Some(released) = self.mark.release(now) {
            match released {
                Released::Event(event) => {
                    let position = event.position;
                    match project(&mut self.view, &mut self.checkpoint, &event) {
                        Step::Applied(rows) => {
                            self.outputs.push_back(Output::Applied { position, rows })
                        }
                        Step::Redelivered | Step::Early => {
                            self.outputs.push_back(Output::Redelivered { position })
                        }
                    }
                }
                Released::Gap { from, to } => {
                    self.checkpoint = to;
                    self.outputs.push_back(Output::GapDeclared { from, to });
                }
            }
        }
    }
}

impl<V: View> Machine for Projector<V> {
    type Input = Input;
    type Output = Output;
    type Error = std::convert::Infallible;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), Self::Error> {
        let Input::Deliver(event) = input;
        let position = event.position;
        if self.mark.offer(now, event) == Offered::Redelivered {
            self.outputs.push_back(Output::Redelivered { position });
        }
        self.drain(now);
        Ok(())
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.drain(now);
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.mark.deadline()
    }
}

/// The view one clean replay of `events` (in position order, each once) builds.
pub fn replay<V: View>(events: &[Positioned]) -> V {
    let mut view = V::default();
    for event in events {
        view.apply(&event.fact);
    }
    view
}
