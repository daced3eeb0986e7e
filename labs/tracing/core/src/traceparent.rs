//! The `traceparent` header, parsed and formatted by the W3C Trace Context Recommendation's
//! rules: the lab's graded module (the learner's copy is `labs/tracing/exercise/traceparent.rs`).
//!
//! A header that breaks any rule is refused with the rule it broke, and the caller starts a
//! new trace ([`crate::propagation`]): continuing a corrupt one would join unrelated requests.

use crate::ids::{SpanId, TraceFlags, TraceId, lower_hex};

/// A `traceparent` that passed every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The header's version: `0x00`, or a later one parsed forward-compatibly.
    pub version: u8,
    /// The trace the caller belongs to.
    pub trace_id: TraceId,
    /// The caller's span: the parent of the span the receiver starts.
    pub parent_id: SpanId,
    /// The caller's flags, as sent (reserved bits included).
    pub flags: TraceFlags,
}

/// Which rule a refused `traceparent` broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceParentError {
    /// Shorter than the 55 characters of version `00`'s four fields.
    TooShort,
    /// The version is not two lowercase hex digits.
    VersionNotLowerHex,
    /// Version `ff` is forbidden.
    VersionFf,
    /// A field separator is not a single `-` where the format puts one.
    MissingDash,
    /// The trace id is not 32 lowercase hex digits.
    TraceIdNotLowerHex,
    /// The parent id is not 16 lowercase hex digits.
    ParentIdNotLowerHex,
    /// The flags are not 2 lowercase hex digits.
    FlagsNotLowerHex,
    /// The trace id is all zeros.
    TraceIdAllZero,
    /// The parent id is all zeros.
    ParentIdAllZero,
    /// Version `00` has exactly four fields; something follows the flags.
    ExtraFieldsInVersion00,
    /// A later version's fields after the flags must start with `-`.
    FutureVersionMalformed,
}

impl std::fmt::Display for TraceParentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TraceParentError::TooShort => "shorter than version 00's 55 characters",
            TraceParentError::VersionNotLowerHex => "the version is not two lowercase hex digits",
            TraceParentError::VersionFf => "version ff is forbidden",
            TraceParentError::MissingDash => "a field separator is not '-'",
            TraceParentError::TraceIdNotLowerHex => "the trace id is not 32 lowercase hex digits",
            TraceParentError::ParentIdNotLowerHex => "the parent id is not 16 lowercase hex digits",
            TraceParentError::FlagsNotLowerHex => "the flags are not two lowercase hex digits",
            TraceParentError::TraceIdAllZero => "the trace id is all zeros",
            TraceParentError::ParentIdAllZero => "the parent id is all zeros",
            TraceParentError::ExtraFieldsInVersion00 => "version 00 has data after the flags",
            TraceParentError::FutureVersionMalformed => {
                "a later version's extra fields do not start with '-'"
            }
        })
    }
}

impl std::error::Error for TraceParentError {}

/// The length of a version `00` header: `2 + 1 + 32 + 1 + 16 + 1 + 2`.
pub const VERSION_00_LEN: usize = 55;

// ANCHOR: parse
/// Parses one `traceparent` value by the Recommendation's rules.
///
/// Optional whitespace (spaces, tabs) around the value is allowed, as around any HTTP field
/// value. A version above `00` (but not `ff`) is parsed forward-compatibly: its first four
/// fields are read as version `00`'s, and anything after them must start with `-`.
pub fn parse_traceparent(value: &str) -> Result<TraceParent, TraceParentError> {
    let text = value.trim_matches([' ', '\t']).as_bytes();
    if text.len() < VERSION_00_LEN {
        return Err(TraceParentError::TooShort);
    }
    let [version] = lower_hex::<1>(&text[0..2]).ok_or(TraceParentError::VersionNotLowerHex)?;
    if version == 0xff {
        return Err(TraceParentError::VersionFf);
    }
    if text[2] != b'-' || text[35] != b'-' || text[52] != b'-' {
        return Err(TraceParentError::MissingDash);
    }
    let trace_id = TraceId(lower_hex(&text[3..35]).ok_or(TraceParentError::TraceIdNotLowerHex)?);
    let parent_id = SpanId(lower_hex(&text[36..52]).ok_or(TraceParentError::ParentIdNotLowerHex)?);
    let [flags] = lower_hex::<1>(&text[53..55]).ok_or(TraceParentError::FlagsNotLowerHex)?;
    if trace_id == TraceId::INVALID {
        return Err(TraceParentError::TraceIdAllZero);
    }
    if parent_id == SpanId::INVALID {
        return Err(TraceParentError::ParentIdAllZero);
    }
    if text.len() > VERSION_00_LEN {
        if version == 0 {
            return Err(TraceParentError::ExtraFieldsInVersion00);
        }
        if text[VERSION_00_LEN] != b'-' {
            return Err(TraceParentError::FutureVersionMalformed);
        }
    }
    Ok(TraceParent {
        version,
        trace_id,
        parent_id,
        flags: TraceFlags(flags),
    })
}
// ANCHOR_END: parse

// ANCHOR: format
/// Formats the `traceparent` a service sends for its own span `span_id` in `trace_id`.
///
/// Always version `00`, the version this implementation speaks (whatever version came in),
/// and the reserved flag bits as zero: only sampled and random survive.
pub fn format_traceparent(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> String {
    format!(
        "00-{trace_id}-{span_id}-{}",
        TraceFlags(flags.0 & TraceFlags::KNOWN.0)
    )
}
// ANCHOR_END: format
