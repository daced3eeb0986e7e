//! A subscription to `$all` as a `Machine`: it catches up from a checkpoint by reading pages,
//! switches to live notifications when a page comes back short, and delivers every position
//! once, in order, across the switch. It checkpoints every N events, or a while after the
//! first event not yet checkpointed.
//!
//! The driver subscribes to the store's live notifications *before* the first read, feeds
//! every page it reads and every notification it gets (notifications may be lost: the driver
//! says so with `Lagged`, and a gap shows it too; either sends the subscription back to
//! reading), delivers what comes out, and saves each `Checkpoint`.

use std::collections::{BTreeMap, VecDeque};

use sansio_core::{Machine, Millis};

use crate::record::Recorded;

// ANCHOR: subscription_types
/// How a subscription pages and checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Events asked for per catch-up read.
    pub page_size: usize,
    /// Checkpoint after this many delivered events.
    pub checkpoint_every: u64,
    /// …or this long after the first event delivered since the last checkpoint.
    pub checkpoint_after: Millis,
    /// Live events kept while catching up; more are dropped (the reads fetch them anyway).
    pub live_buffer: usize,
}

/// What the driver tells the subscription.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The answer to the last `Output::Read`: events after its position, in order.
    Page(Vec<Recorded>),
    /// A live notification of an event just appended.
    Live(Recorded),
    /// Notifications were lost (the channel overflowed): read the store to find them.
    Lagged,
}

/// What the subscription asks of its driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Read up to `limit` events of `$all` after `after` and feed them back as `Input::Page`.
    Read {
        /// The last position delivered.
        after: u64,
        /// The page size.
        limit: usize,
    },
    /// Hand this event to the subscriber: the next position, never a repeat.
    Deliver(Recorded),
    /// Caught up: from now on events come from the live notifications.
    Live {
        /// The last position delivered when the switch happened.
        at: u64,
    },
    /// Save this position: on restart, subscribe from it.
    Checkpoint(u64),
}

/// An input the subscription cannot take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionError {
    /// A page arrived while no read was asked for.
    UnexpectedPage,
}
// ANCHOR_END: subscription_types

impl std::fmt::Display for SubscriptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscriptionError::UnexpectedPage => f.write_str("a page arrived with no read asked"),
        }
    }
}

impl std::error::Error for SubscriptionError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A read is outstanding; `again` when notifications were lost meanwhile, so the page
    /// may predate them.
    Reading { limit: usize, again: bool },
    /// Delivering live notifications.
    Live,
}

/// A catch-up-then-live subscription to `$all`.
#[derive(Debug)]
pub struct Subscription {
    config: SubscriptionConfig,
    last: u64,
    checkpointed: u64,
    checkpoint_due: Option<Millis>,
    phase: Phase,
    buffer: BTreeMap<u64, Recorded>,
    outputs: VecDeque<Output>,
}

impl Subscription {
    /// A subscription that has delivered everything up to `checkpoint` (0: nothing yet); its
    /// first output is the first read.
    pub fn new(checkpoint: u64, config: SubscriptionConfig) -> Subscription {
        let mut subscription = Subscription {
            config,
            last: checkpoint,
            checkpointed: checkpoint,
            checkpoint_due: None,
            phase: Phase::Live,
            buffer: BTreeMap::new(),
            outputs: VecDeque::new(),
        };
        subscription.read();
        subscription
    }

    /// The last position delivered.
    pub fn position(&self) -> u64 {
        self.last
    }

    /// Whether it is delivering live notifications (caught up).
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    fn read(&mut self) {
        let limit = self.config.page_size.max(1);
        self.phase = Phase::Reading {
            limit,
            again: false,
        };
        self.outputs.push_back(Output::Read {
            after: self.last,
            limit,
        });
    }

    /// Delivers `event` if it is the next position; says whether it was, or was old.
    fn offer(&mut self, now: Millis, event: Recorded) -> Offer {
        if event.position <= self.last {
            return Offer::Old;
        }
        if event.position > self.last + 1 {
            return Offer::Gap(event);
        }
        self.last = event.position;
        self.outputs.push_back(Output::Deliver(event));
        if self.last - self.checkpointed >= self.config.checkpoint_every.max(1) {
            self.checkpoint();
        } else if self.checkpoint_due.is_none() {
            self.checkpoint_due = Some(now + self.config.checkpoint_after);
        }
        Offer::Delivered
    }

    /// Delivers what the buffer holds from the next position on.
    fn drain_buffer(&mut self, now: Millis) {
        self.buffer = self.buffer.split_off(&(self.last + 1));
        while let Some(event) = self.buffer.remove(&(self.last + 1)) {
            self.offer(now, event);
        }
    }

    fn keep(&mut self, event: Recorded) {
        if self.buffer.len() < self.config.live_buffer {
            self.buffer.insert(event.position, event);
        }
    }

    fn checkpoint(&mut self) {
        self.checkpoint_due = None;
        if self.last > self.checkpointed {
            self.checkpointed = self.last;
            self.outputs.push_back(Output::Checkpoint(self.last));
        }
    }
}

enum Offer {
    Delivered,
    Old,
    Gap(Recorded),
}

impl Machine for Subscription {
    type Input = Input;
    type Output = Output;
    type Error = SubscriptionError;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), SubscriptionError> {
        self.handle_timeout(now);
        match (input, self.phase) {
            (Input::Page(_), Phase::Live) => Err(SubscriptionError::UnexpectedPage),
            (Input::Page(events), Phase::Reading { limit, again }) => {
                let mut short = events.len() < limit && !again;
                for event in events {
                    if let Offer::Gap(_) = self.offer(now, event) {
                        // A page has no holes; a store that answers with one is read again.
                        short = false;
                        break;
                    }
                }
                self.drain_buffer(now);
                if short && self.buffer.is_empty() {
                    self.phase = Phase::Live;
                    self.outputs.push_back(Output::Live { at: self.last });
                } else {
                    self.read();
                }
                Ok(())
            }
            (Input::Live(event), Phase::Reading { .. }) => {
                if event.position > self.last {
                    self.keep(event);
                }
                Ok(())
            }
            (Input::Lagged, Phase::Reading { limit, .. }) => {
                self.phase = Phase::Reading { limit, again: true };
                Ok(())
            }
            (Input::Lagged, Phase::Live) => {
                self.read();
                Ok(())
            }
            (Input::Live(event), Phase::Live) => {
                match self.offer(now, event) {
                    Offer::Delivered => self.drain_buffer(now),
                    Offer::Old => {}
                    Offer::Gap(event) => {
                        // A notification was lost: read what is missing from the store.
                        self.keep(event);
                        self.read();
                    }
                }
                Ok(())
            }
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        if self.checkpoint_due.is_some_and(|due| due <= now) {
            self.checkpoint();
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.checkpoint_due
    }
}
