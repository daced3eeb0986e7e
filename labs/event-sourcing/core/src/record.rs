//! Events as the store keeps them: an event to append ([`NewEvent`]) and an event read back
//! with its place in its stream and in `$all` ([`Recorded`]). The store is generic over the
//! payload: it never looks inside `data`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ANCHOR: recorded
/// An event to append: the writer picks its id, so a retried append can be recognised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Unique within the stream; an append whose ids are already there is not written twice.
    pub event_id: String,
    /// The event's type name (`ItemAdded`).
    pub event_type: String,
    /// The schema version `data` was written with.
    pub schema: u32,
    /// The event's fields.
    pub data: Value,
}

/// An event read from the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// Its place in `$all`, the store-wide sequence: 1, 2, 3… with no gap.
    pub position: u64,
    /// The stream it belongs to.
    pub stream: String,
    /// Its place in its stream: 1, 2, 3… with no gap.
    pub version: u64,
    /// The id its writer gave it.
    pub event_id: String,
    /// The event's type name.
    pub event_type: String,
    /// The schema version it was written with (upcast on read).
    pub schema: u32,
    /// The event's fields, as written.
    pub data: Value,
}
// ANCHOR_END: recorded

/// What an append did: the stream's version and the `$all` position of its last event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    /// The version of the batch's first event.
    pub first_version: u64,
    /// The stream's version after the append (the batch's last event).
    pub version: u64,
    /// The `$all` position of the batch's last event.
    pub position: u64,
    /// True when every event id was already in the stream: nothing was written this time.
    pub already_appended: bool,
}
