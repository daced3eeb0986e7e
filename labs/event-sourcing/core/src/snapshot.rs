//! Snapshots: the state at a version, saved every N events so loading reads the snapshot and
//! the events after it instead of the whole stream. A snapshot is an optimisation, never the
//! truth: one written with another state schema is ignored and the stream folded in full.

use serde::{Deserialize, Serialize};

use crate::history::fold;
use crate::order::{Event, State};

/// The shape of [`State`] snapshots are written with; bump it when `Order` changes shape, and
/// every older snapshot is ignored.
pub const SNAPSHOT_SCHEMA: u32 = 1;

// ANCHOR: snapshot
/// The state of a stream at `version`, written with state schema `schema`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last event it covers.
    pub version: u64,
    /// The state shape it was written with ([`SNAPSHOT_SCHEMA`] when current).
    pub schema: u32,
    /// The state after event `version`.
    pub state: State,
}

/// How often to snapshot: after every `every` events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Events between snapshots (at least 1).
    pub every: u64,
}

/// A stream's state and the version it is at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The state after `version`.
    pub state: State,
    /// The last event folded.
    pub version: u64,
}
// ANCHOR_END: snapshot

impl SnapshotPolicy {
    /// Whether an append that moved the stream from `before` to `after` crossed a multiple of
    /// `every`, so a snapshot at `after` is due.
    pub fn due(&self, before: u64, after: u64) -> bool {
        let every = self.every.max(1);
        after / every > before / every
    }
}

impl Snapshot {
    /// The snapshot of `loaded`, at today's schema.
    pub fn of(loaded: &Loaded) -> Snapshot {
        Snapshot {
            version: loaded.version,
            schema: SNAPSHOT_SCHEMA,
            state: loaded.state.clone(),
        }
    }

    /// Whether it was written with today's state schema.
    pub fn is_current(&self) -> bool {
        self.schema == SNAPSHOT_SCHEMA
    }
}

// ANCHOR: load
/// Where loading starts: the snapshot if it is current, else the empty stream. Read the
/// events after the returned version and pass them to [`Loaded::fold_tail`].
pub fn start_from(snapshot: Option<Snapshot>) -> Loaded {
    match snapshot.filter(Snapshot::is_current) {
        Some(snapshot) => Loaded {
            state: snapshot.state,
            version: snapshot.version,
        },
        None => Loaded {
            state: None,
            version: 0,
        },
    }
}

impl Loaded {
    /// Folds the tail: events numbered from `self.version + 1`, in order.
    pub fn fold_tail<'a>(self, tail: impl IntoIterator<Item = &'a Event>) -> Loaded {
        let mut version = self.version;
        let state = fold(self.state, tail.into_iter().inspect(|_| version += 1));
        Loaded { state, version }
    }
}
// ANCHOR_END: load
