//! Loading an order: the latest current snapshot plus the events after it, or, for time
//! travel, the state at any past version. Every stored payload is upcast on the way in.

use event_sourcing_core::{
    DecodeError, Event, Loaded, Recorded, Snapshot, decode_owned, fold, start_from,
};

use crate::{EventStore, StoreError};

/// Why a stream did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not read as an order event, even upcast.
    #[error("event {version} of {stream} does not read as an order event: {error}")]
    Decode {
        /// The stream that failed to load.
        stream: String,
        /// The event's version.
        version: u64,
        /// What was wrong.
        error: DecodeError,
    },
}

/// The order events of `recorded`, upcast.
pub fn decode_all(recorded: Vec<Recorded>) -> Result<Vec<Event>, LoadError> {
    recorded
        .into_iter()
        .map(|event| {
            decode_owned(&event.event_type, event.schema, event.data).map_err(|error| {
                LoadError::Decode {
                    stream: event.stream.clone(),
                    version: event.version,
                    error,
                }
            })
        })
        .collect()
}

// ANCHOR: load
/// The stream's state now: its snapshot if current, then the events after it.
pub async fn load(store: &dyn EventStore, stream: &str) -> Result<Loaded, LoadError> {
    let start = start_from(store.snapshot(stream).await?);
    let tail = store
        .read_stream(stream, start.version + 1, usize::MAX)
        .await?;
    Ok(start.fold_tail(&decode_all(tail)?))
}

/// The stream's state at `version` ("time travel"): a current snapshot at or before it, then
/// the events up to it. Past the stream's end it is the state now.
pub async fn load_at(
    store: &dyn EventStore,
    stream: &str,
    version: u64,
) -> Result<Loaded, LoadError> {
    let snapshot = store
        .snapshot(stream)
        .await?
        .filter(|snapshot: &Snapshot| snapshot.version <= version);
    let start = start_from(snapshot);
    let count = (version - start.version) as usize;
    let tail = store.read_stream(stream, start.version + 1, count).await?;
    Ok(start.fold_tail(&decode_all(tail)?))
}
// ANCHOR_END: load

/// Folds `events` from nothing: the full replay, without a snapshot.
pub fn replay(events: &[Event]) -> Loaded {
    Loaded {
        state: fold(None, events),
        version: events.len() as u64,
    }
}
