//! Read-your-writes as a `Machine`: a query carrying a position token (the `$all` position
//! of the writer's last event) waits until the projection's checkpoint reaches it, up to a
//! bound; then it is answered with what the view has, marked stale.

use std::collections::{BTreeMap, VecDeque};

use sansio_core::{Machine, Millis};
use serde::Serialize;

// ANCHOR: freshness
/// How current an answer is for the token it was asked with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "freshness", rename_all = "snake_case")]
pub enum Freshness {
    /// The view has applied everything up to the token.
    Fresh {
        /// The view's checkpoint when answered.
        checkpoint: u64,
    },
    /// The bound passed first: the answer may not show the token's write.
    Stale {
        /// The view's checkpoint when answered.
        checkpoint: u64,
        /// The position asked for.
        token: u64,
    },
}

/// Whether a view at `checkpoint` answers a query with `token` fresh.
pub fn freshness(token: u64, checkpoint: u64) -> Freshness {
    if checkpoint >= token {
        Freshness::Fresh { checkpoint }
    } else {
        Freshness::Stale { checkpoint, token }
    }
}
// ANCHOR_END: freshness

/// What the driver tells the waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// A query `id` wants the view at `token` or later.
    Wait {
        /// The query's id, echoed in its answer.
        id: u64,
        /// The position it needs.
        token: u64,
    },
    /// The view's checkpoint moved to this position.
    Reached(u64),
}

/// A query may be answered now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The query's id.
    pub id: u64,
    /// Fresh, or stale because the bound passed.
    pub freshness: Freshness,
}

/// The queries waiting for a view, each until its token or its deadline.
#[derive(Debug)]
pub struct Waits {
    bound: Millis,
    checkpoint: u64,
    waiting: BTreeMap<u64, (u64, Millis)>,
    outputs: VecDeque<Answer>,
}

impl Waits {
    /// Waits for a view at `checkpoint`, each at most `bound`.
    pub fn new(checkpoint: u64, bound: Millis) -> Waits {
        Waits {
            bound,
            checkpoint,
            waiting: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// How many queries wait.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

impl Machine for Waits {
    type Input = Input;
    type Output = Answer;
    type Error = std::convert::Infallible;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), Self::Error> {
        self.handle_timeout(now);
        match input {
            Input::Wait { id, token } if token <= self.checkpoint => {
                self.outputs.push_back(Answer {
                    id,
                    freshness: freshness(token, self.checkpoint),
                });
            }
            Input::Wait { id, token } => {
                self.waiting.insert(id, (token, now + self.bound));
            }
            Input::Reached(checkpoint) => {
                self.checkpoint = self.checkpoint.max(checkpoint);
                let reached = self.checkpoint;
                let ready: Vec<u64> = self
                    .waiting
                    .iter()
                    .filter(|(_, (token, _))| *token <= reached)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ready {
                    if let Some((token, _)) = self.waiting.remove(&id) {
                        self.outputs.push_back(Answer {
                            id,
                            freshness: freshness(token, reached),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn handle_timeout(&mut self, now: Millis) {
        let due: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some((token, _)) = self.waiting.remove(&id) {
                self.outputs.push_back(Answer {
                    id,
                    freshness: freshness(token, self.checkpoint),
                });
            }
        }
    }

    fn poll_output(&mut self) -> Option<Answer> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.waiting.values().map(|(_, deadline)| *deadline).min()
    }
}
