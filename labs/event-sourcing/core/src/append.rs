//! The rule of one append, shared by every backend: idempotency by event id first (a retry of
//! an append that succeeded is recognised, whatever the stream's version is now), then the
//! expected-version check, then the versions the batch takes.

use serde::{Deserialize, Serialize};

use crate::expected::check_expected;
use crate::version::{Conflict, ExpectedVersion};

/// What a backend does with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Write the batch, its first event at this version.
    Write {
        /// The version of the batch's first event.
        first_version: u64,
    },
    /// Every event is already in the stream; write nothing.
    AlreadyThere {
        /// The highest version among the batch's events.
        version: u64,
    },
}

/// Why an append was refused. Nothing of the batch is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendError {
    /// The stream is not at the expected version.
    Conflict(Conflict),
    /// A batch of no events.
    EmptyBatch,
    /// The same event id twice in one batch.
    DuplicateIdInBatch(String),
    /// Some of the batch's ids are in the stream and some are not: not a retry of one append.
    PartlyAppended {
        /// An id already in the stream.
        present: String,
        /// An id that is not.
        missing: String,
    },
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::Conflict(conflict) => conflict.fmt(f),
            AppendError::EmptyBatch => f.write_str("an append needs at least one event"),
            AppendError::DuplicateIdInBatch(id) => {
                write!(f, "event id {id:?} appears twice in the batch")
            }
            AppendError::PartlyAppended { present, missing } => write!(
                f,
                "event id {present:?} is already in the stream but {missing:?} is not: \
                 a retry must resend the same batch"
            ),
        }
    }
}

impl std::error::Error for AppendError {}

/// Plans an append of the events `ids` to a stream at version `current`; `seen` gives the
/// version of an id already in the stream.
pub fn plan_append(
    expected: ExpectedVersion,
    current: u64,
    ids: &[&str],
    seen: impl Fn(&str) -> Option<u64>,
) -> Result<Plan, AppendError> {
    if ids.is_empty() {
        return Err(AppendError::EmptyBatch);
    }
    for (index, id) in ids.iter().enumerate() {
        if ids[..index].contains(id) {
            return Err(AppendError::DuplicateIdInBatch((*id).to_owned()));
        }
    }
    let versions: Vec<Option<u64>> = ids.iter().map(|id| seen(id)).collect();
    let present = ids.iter().zip(&versions).find(|(_, v)| v.is_some());
    let missing = ids.iter().zip(&versions).find(|(_, v)| v.is_none());
    match (present, missing) {
        (Some(_), None) => Ok(Plan::AlreadyThere {
            version: versions.iter().flatten().copied().max().unwrap_or(current),
        }),
        (Some((present, _)), Some((missing, _))) => Err(AppendError::PartlyAppended {
            present: (*present).to_owned(),
            missing: (*missing).to_owned(),
        }),
        _ => {
            check_expected(expected, current).map_err(AppendError::Conflict)?;
            Ok(Plan::Write {
                first_version: current + 1,
            })
        }
    }
}
