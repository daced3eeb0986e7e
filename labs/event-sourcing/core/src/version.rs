//! Stream versions and the expected version an append names, with the conflict it gets when
//! the stream has moved on. The check itself is graded (`expected.rs`).

use serde::{Deserialize, Serialize};

// ANCHOR: expected_version
/// What the writer believes about the stream it appends to. Versions count a stream's
/// events: the first event is version 1, so an empty (absent) stream is at version 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check: append whatever the stream holds.
    Any,
    /// The stream must be empty: the writer is creating it.
    NoStream,
    /// The stream must hold at least one event.
    StreamExists,
    /// The stream must be exactly at this version: the writer decided from that state.
    Exact(u64),
}

/// An append refused because the stream is not where the writer expected: reload, decide
/// again, retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// What the writer expected.
    pub expected: ExpectedVersion,
    /// The stream's version now.
    pub current: u64,
}
// ANCHOR_END: expected_version

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no-stream"),
            ExpectedVersion::StreamExists => f.write_str("stream-exists"),
            ExpectedVersion::Exact(version) => write!(f, "{version}"),
        }
    }
}

impl std::str::FromStr for ExpectedVersion {
    type Err = String;

    /// Reads the wire form: `any`, `no-stream`, `stream-exists` or a version number.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "any" => Ok(ExpectedVersion::Any),
            "no-stream" => Ok(ExpectedVersion::NoStream),
            "stream-exists" => Ok(ExpectedVersion::StreamExists),
            number => number.parse().map(ExpectedVersion::Exact).map_err(|_| {
                format!(
                    "expected version {number:?} is neither `any`, `no-stream`, \
                     `stream-exists` nor a version number (0 or more)"
                )
            }),
        }
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expected version {} but the stream is at version {}",
            self.expected, self.current
        )
    }
}

impl std::error::Error for Conflict {}
