//! The event store behind one trait: SQLite by default ([`sqlite`]), the core's
//! `MemoryStore` for tests ([`memory`]). Every backend keeps the same contract, which
//! `tests/contract.rs` checks: an append is all of its batch or nothing; versions and `$all`
//! positions have no gap; a refused append writes nothing; a retried batch is not written
//! twice; live notifications follow every commit.
//!
//! On top of the trait: [`load`] folds an order from its snapshot and tail (or at any past
//! version), and [`subscribe`] drives the core's `Subscription` machine against a store, the
//! feed a projection reads `$all` from.

pub mod load;
pub mod memory;
pub mod nats;
pub mod sqlite;
pub mod subscribe;

pub use load::{LoadError, load, load_at};
pub use memory::InMemory;
pub use nats::JetStream;
pub use sqlite::{Durability, Sqlite};
pub use subscribe::{Delivery, subscribe};

use std::future::Future;
use std::pin::Pin;

use event_sourcing_core::{AppendError, Appended, ExpectedVersion, NewEvent, Recorded, Snapshot};
use tokio::sync::broadcast;

/// A boxed future: the trait's methods are async and the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How many live notifications a slow subscriber may fall behind before it is told it lagged.
pub const LIVE_CHANNEL: usize = 4_096;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The append's own fault: a conflict, a half-retried batch, an empty batch.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The backend failed (disk, database, network); nothing is known to be written.
    #[error("the store failed: {0}")]
    Backend(String),
}

// ANCHOR: store_trait
/// An event store: streams with per-stream versions, and `$all`, every event in commit order.
pub trait EventStore: Send + Sync + 'static {
    /// Appends `batch` to `stream` if `expected` holds, in one transaction: all of it or none.
    /// A batch whose event ids are all in the stream already is not written again; the
    /// answer says so (`already_appended`).
    fn append<'a>(
        &'a self,
        stream: &'a str,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<Appended, StoreError>>;

    /// Up to `limit` events of `stream` from version `from` on (versions start at 1).
    fn read_stream<'a>(
        &'a self,
        stream: &'a str,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Recorded>, StoreError>>;

    /// Up to `limit` events of `$all` after `position` (0: from the start).
    fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Recorded>, StoreError>>;

    /// The stream's version (0 when it has no events).
    fn version<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Every event committed from now on, in `$all` order. Subscribe before reading to catch
    /// up, so nothing falls between the read and the first notification.
    fn live(&self) -> broadcast::Receiver<Recorded>;

    /// The stream's latest snapshot, if any (stale ones too: the loader decides).
    fn snapshot<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>>;

    /// Saves a snapshot of `stream`, replacing an older one.
    fn save_snapshot<'a>(
        &'a self,
        stream: &'a str,
        snapshot: Snapshot,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}
// ANCHOR_END: store_trait
