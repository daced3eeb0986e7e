//! Client-side balancing over a service's passing instances: round-robin, or power of two
//! choices on a latency average the balancer keeps.

use std::collections::BTreeMap;

use sansio_core::Millis;

use crate::health::{ewma, round_robin, two_choices};
use crate::rng::SplitMix;

/// How a [`Balancer`] picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Each instance in turn.
    RoundRobin,
    /// The faster of two instances drawn at random.
    TwoChoices,
}

/// Picks an instance for each call, from the list the last blocking query returned.
#[derive(Clone, Debug)]
pub struct Balancer {
    strategy: Strategy,
    instances: Vec<String>,
    latency: BTreeMap<String, f64>,
    cursor: usize,
    rng: SplitMix,
}

impl Balancer {
    /// A balancer with no instances yet; `seed` drives its random choices.
    pub fn new(strategy: Strategy, seed: u64) -> Balancer {
        Balancer {
            strategy,
            instances: Vec::new(),
            latency: BTreeMap::new(),
            cursor: 0,
            rng: SplitMix::new(seed),
        }
    }

    /// The instances to pick from now (a watch's answer); known ones keep their average.
    pub fn set_instances(&mut self, ids: impl IntoIterator<Item = String>) {
        self.instances = ids.into_iter().collect();
        let instances = &self.instances;
        self.latency.retain(|id, _| instances.contains(id));
    }

    /// The instances it picks from.
    pub fn instances(&self) -> &[String] {
        &self.instances
    }

    // ANCHOR: pick
    /// The instance for the next call, or `None` when there is none.
    pub fn pick(&mut self) -> Option<&str> {
        let index = match self.strategy {
            Strategy::RoundRobin => round_robin(self.instances.len(), &mut self.cursor),
            Strategy::TwoChoices => {
                let latencies: Vec<f64> = self
                    .instances
                    .iter()
                    .map(|id| self.latency.get(id).copied().unwrap_or(0.0))
                    .collect();
                let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
                two_choices(&latencies, a, b)
            }
        }?;
        self.instances.get(index).map(String::as_str)
    }
    // ANCHOR_END: pick

    /// Records how long a call to `id` took.
    pub fn record(&mut self, id: &str, took: Millis) {
        if self.instances.iter().any(|known| known == id) {
            let average = ewma(self.latency.get(id).copied(), took.0 as f64);
            self.latency.insert(id.to_owned(), average);
        }
    }

    /// The latency average of `id`, if it was measured.
    pub fn latency(&self, id: &str) -> Option<f64> {
        self.latency.get(id).copied()
    }
}
