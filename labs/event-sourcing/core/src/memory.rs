//! An event store in memory: the contract every backend keeps, as plain data. The lab's
//! SQLite and JetStream backends are checked against the same suite, and the graded tests
//! and the subscription's property tests use this one.

use std::collections::{BTreeMap, HashMap};

use crate::append::{AppendError, Plan, plan_append};
use crate::record::{Appended, NewEvent, Recorded};
use crate::version::ExpectedVersion;

/// Streams in memory, with `$all` in append order.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    all: Vec<Recorded>,
    streams: BTreeMap<String, Vec<usize>>,
    ids: HashMap<(String, String), u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The stream's version: its number of events (0 when it has none).
    pub fn version(&self, stream: &str) -> u64 {
        self.streams
            .get(stream)
            .map_or(0, |events| events.len() as u64)
    }

    /// The last position in `$all` (0 when the store is empty).
    pub fn head(&self) -> u64 {
        self.all.len() as u64
    }

    /// Appends `batch` to `stream` if `expected` holds: all of it, or nothing.
    pub fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
    ) -> Result<Appended, AppendError> {
        let current = self.version(stream);
        let ids: Vec<&str> = batch.iter().map(|event| event.event_id.as_str()).collect();
        let plan = plan_append(expected, current, &ids, |id| {
            self.ids.get(&(stream.to_owned(), id.to_owned())).copied()
        })?;
        match plan {
            Plan::AlreadyThere { version } => Ok(Appended {
                first_version: (version + 1).saturating_sub(batch.len() as u64),
                version,
                position: self.all[self.streams[stream][version as usize - 1]].position,
                already_appended: true,
            }),
            Plan::Write { first_version } => {
                let count = batch.len() as u64;
                for (offset, event) in batch.into_iter().enumerate() {
                    let version = first_version + offset as u64;
                    let position = self.head() + 1;
                    self.ids
                        .insert((stream.to_owned(), event.event_id.clone()), version);
                    self.streams
                        .entry(stream.to_owned())
                        .or_default()
                        .push(self.all.len());
                    self.all.push(Recorded {
                        position,
                        stream: stream.to_owned(),
                        version,
                        event_id: event.event_id,
                        event_type: event.event_type,
                        schema: event.schema,
                        data: event.data,
                    });
                }
                Ok(Appended {
                    first_version,
                    version: first_version + count - 1,
                    position: self.head(),
                    already_appended: false,
                })
            }
        }
    }

    /// Up to `limit` events of `stream` from version `from` on (the first event is version 1).
    pub fn read_stream(&self, stream: &str, from: u64, limit: usize) -> Vec<Recorded> {
        let Some(indexes) = self.streams.get(stream) else {
            return Vec::new();
        };
        let skip = from.saturating_sub(1) as usize;
        indexes
            .iter()
            .skip(skip)
            .take(limit)
            .map(|&index| self.all[index].clone())
            .collect()
    }

    /// Up to `limit` events of `$all` after position `after` (0 reads from the start).
    pub fn read_all(&self, after: u64, limit: usize) -> Vec<Recorded> {
        self.all
            .iter()
            .skip(after as usize)
            .take(limit)
            .cloned()
            .collect()
    }
}
