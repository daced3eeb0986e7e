//! Propagation: what a service makes of the trace headers it receives, and what it sends on.
//!
//! [`extract`] turns a request's `traceparent` and `tracestate` fields into an [`Incoming`]:
//! the caller's context when the `traceparent` is valid, or a reason to start a new trace
//! (then the `tracestate` is dropped with it). [`SpanContext::outgoing`] gives the headers for
//! a call made from a span. Both take plain strings, so any HTTP stack (or a message bus's
//! headers) is one adapter away.

use crate::ids::{IdSource, SpanId, TraceFlags, TraceId};
use crate::traceparent::{TraceParent, TraceParentError, format_traceparent, parse_traceparent};
use crate::tracestate::TraceState;

// ANCHOR: restart
/// Why a service starts a new trace instead of continuing the caller's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// No `traceparent` came: this request is the start of its journey.
    Missing,
    /// Two or more `traceparent` fields: which one is the caller's cannot be known.
    Duplicated,
    /// The `traceparent` broke a rule.
    Invalid(TraceParentError),
}

/// What a service received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The caller's context, when it is to be continued.
    pub parent: Option<TraceParent>,
    /// The vendors' state, kept only with a valid parent and when itself valid.
    pub state: TraceState,
    /// Why the trace restarts, when it does.
    pub restart: Option<Restart>,
}
// ANCHOR_END: restart

// ANCHOR: extract
/// Reads a request's trace headers: every `traceparent` field and every `tracestate` field, in
/// the order they came.
pub fn extract<'a>(
    traceparent: impl IntoIterator<Item = &'a str>,
    tracestate: impl IntoIterator<Item = &'a str>,
) -> Incoming {
    let fields: Vec<&str> = traceparent.into_iter().collect();
    let parsed = match fields.as_slice() {
        [] => Err(Restart::Missing),
        [one] => parse_traceparent(one).map_err(Restart::Invalid),
        _ => Err(Restart::Duplicated),
    };
    match parsed {
        Ok(parent) => Incoming {
            parent: Some(parent),
            state: TraceState::parse(tracestate).unwrap_or_default(),
            restart: None,
        },
        Err(restart) => Incoming {
            parent: None,
            state: TraceState::new(),
            restart: Some(restart),
        },
    }
}
// ANCHOR_END: extract

/// The context of a span a service is running: what it puts on its outgoing calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace the span belongs to.
    pub trace_id: TraceId,
    /// This service's span.
    pub span_id: SpanId,
    /// The flags it sends: the caller's sampled and random bits, or its own on a new trace.
    pub flags: TraceFlags,
    /// The `tracestate` it sends.
    pub state: TraceState,
}

/// The trace headers of one outgoing call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Always sent.
    pub traceparent: String,
    /// Sent only when not empty.
    pub tracestate: Option<String>,
}

impl Incoming {
    // ANCHOR: child
    /// The context of the span this service starts for the request: a child of the caller's
    /// span in the caller's trace, keeping its flags; or the root of a new trace with a fresh
    /// random id, sampled as the service's own head-sampling decision says.
    pub fn child(&self, ids: &mut IdSource, sample_new: bool) -> SpanContext {
        match self.parent {
            Some(parent) => SpanContext {
                trace_id: parent.trace_id,
                span_id: ids.span_id(),
                flags: TraceFlags(parent.flags.0 & TraceFlags::KNOWN.0),
                state: self.state.clone(),
            },
            None => SpanContext {
                trace_id: ids.trace_id(),
                span_id: ids.span_id(),
                flags: TraceFlags::RANDOM.with_sampled(sample_new),
                state: TraceState::new(),
            },
        }
    }
    // ANCHOR_END: child
}

impl SpanContext {
    // ANCHOR: outgoing
    /// The headers for a call made from this span.
    pub fn outgoing(&self) -> Outgoing {
        Outgoing {
            traceparent: format_traceparent(self.trace_id, self.span_id, self.flags),
            tracestate: (!self.state.is_empty()).then(|| self.state.to_string()),
        }
    }
    // ANCHOR_END: outgoing
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_parent_is_continued_with_its_state() {
        let incoming = extract([VALID], ["rojo=1"]);
        assert_eq!(incoming.restart, None);
        let ctx = incoming.child(&mut IdSource::seeded(1), false);
        assert_eq!(ctx.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(ctx.flags.sampled(), "the caller's decision holds");
        let out = ctx.outgoing();
        assert!(
            out.traceparent
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
        assert!(
            !out.traceparent.contains("00f067aa0ba902b7"),
            "the parent is this span now"
        );
        assert_eq!(out.tracestate.as_deref(), Some("rojo=1"));
    }

    #[test]
    fn an_invalid_parent_restarts_and_drops_the_state() {
        let incoming = extract(
            ["00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"],
            ["rojo=1"],
        );
        assert_eq!(
            incoming.restart,
            Some(Restart::Invalid(TraceParentError::TraceIdNotLowerHex))
        );
        let ctx = incoming.child(&mut IdSource::seeded(1), true);
        assert_eq!(ctx.outgoing().tracestate, None);
        assert!(ctx.flags.random() && ctx.flags.sampled());
    }

    #[test]
    fn two_traceparent_fields_restart() {
        let incoming = extract([VALID, VALID], []);
        assert_eq!(incoming.restart, Some(Restart::Duplicated));
        assert_eq!(extract([], []).restart, Some(Restart::Missing));
    }

    #[test]
    fn the_random_flag_survives_a_hop_and_reserved_bits_do_not() {
        let incoming = extract(
            ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe"],
            [],
        );
        let out = incoming.child(&mut IdSource::seeded(1), true).outgoing();
        assert!(out.traceparent.ends_with("-02"), "{}", out.traceparent);
    }

    #[test]
    fn an_invalid_tracestate_is_dropped_but_the_parent_kept() {
        let incoming = extract([VALID], ["a=1,a=2"]);
        assert!(incoming.parent.is_some());
        assert!(incoming.state.is_empty());
    }
}
