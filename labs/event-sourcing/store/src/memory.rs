//! The core's [`MemoryStore`] behind the store trait: the reference the contract suite holds
//! the other backends to, and a store for tests that need no file.

use std::collections::HashMap;

use event_sourcing_core::{ExpectedVersion, MemoryStore, NewEvent, Recorded, Snapshot};
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::{BoxFuture, EventStore, LIVE_CHANNEL, StoreError};

/// Streams in memory, gone when the process ends.
pub struct InMemory {
    store: Mutex<(MemoryStore, HashMap<String, Snapshot>)>,
    live: broadcast::Sender<Recorded>,
}

impl InMemory {
    /// An empty store.
    pub fn new() -> InMemory {
        InMemory {
            store: Mutex::new((MemoryStore::new(), HashMap::new())),
            live: broadcast::channel(LIVE_CHANNEL).0,
        }
    }
}

impl Default for InMemory {
    fn default() -> Self {
        InMemory::new()
    }
}

impl EventStore for InMemory {
    fn append<'a>(
        &'a self,
        stream: &'a str,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<event_sourcing_core::Appended, StoreError>> {
        Box::pin(async move {
            let mut guard = self.store.lock();
            let appended = guard.0.append(stream, expected, batch)?;
            if !appended.already_appended {
                let count = (appended.version - appended.first_version + 1) as usize;
                for event in guard.0.read_all(appended.position - count as u64, count) {
                    let _ = self.live.send(event);
                }
            }
            Ok(appended)
        })
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a str,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Recorded>, StoreError>> {
        Box::pin(async move { Ok(self.store.lock().0.read_stream(stream, from, limit)) })
    }

    fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Recorded>, StoreError>> {
        Box::pin(async move { Ok(self.store.lock().0.read_all(after, limit)) })
    }

    fn version<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move { Ok(self.store.lock().0.version(stream)) })
    }

    fn live(&self) -> broadcast::Receiver<Recorded> {
        self.live.subscribe()
    }

    fn snapshot<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        Box::pin(async move { Ok(self.store.lock().1.get(stream).cloned()) })
    }

    fn save_snapshot<'a>(
        &'a self,
        stream: &'a str,
        snapshot: Snapshot,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.store.lock().1.insert(stream.to_owned(), snapshot);
            Ok(())
        })
    }
}
