//! The graded tests of the Tracing lab: the specification of the graded modules,
//! `traceparent.rs` (the header by the W3C Recommendation's rules) and `tree.rs` (a trace's
//! spans as a tree, orphans marked).
//!
//! `cargo xtask grade tracing` runs them against the learner's copy (`--features exercise`);
//! `cargo test -p trace-context-core --test graded` against the reference. Every assertion says
//! what it checks and why, so a failure reads as a sentence.

use lab_test_support::check_property;
use proptest::prelude::*;
use trace_context_core::{
    SpanId, SpanRecord, TraceFlags, TraceId, TraceParentError, assemble, format_traceparent,
    parse_traceparent,
};

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn refused(header: &str) -> TraceParentError {
    match parse_traceparent(header) {
        Ok(parsed) => panic!("{header:?} must be refused, got {parsed:?}"),
        Err(error) => error,
    }
}

// ANCHOR: valid_test
#[test]
fn a_valid_version_00_header_is_parsed() {
    let parsed = parse_traceparent(VALID).expect("the Recommendation's own example is valid");
    assert_eq!(parsed.version, 0, "version 00");
    assert_eq!(
        parsed.trace_id.to_string(),
        TRACE,
        "the trace id is the second field"
    );
    assert_eq!(
        parsed.parent_id.to_string(),
        PARENT,
        "the parent id is the third field"
    );
    assert_eq!(
        parsed.flags,
        TraceFlags(0x01),
        "the flags are the fourth field: sampled"
    );
}
// ANCHOR_END: valid_test

#[test]
fn whitespace_around_the_value_is_allowed() {
    for header in [
        format!(" {VALID}"),
        format!("{VALID}\t"),
        format!("\t {VALID} "),
    ] {
        assert!(
            parse_traceparent(&header).is_ok(),
            "spaces and tabs around a field value are optional whitespace: {header:?}"
        );
    }
}

// ANCHOR: invalid_tests
#[test]
fn a_header_shorter_than_55_characters_is_refused() {
    assert_eq!(
        refused(&VALID[..54]),
        TraceParentError::TooShort,
        "one character short"
    );
    assert_eq!(refused(""), TraceParentError::TooShort, "an empty header");
    assert!(
        TraceParentError::TooShort.to_string().contains("55"),
        "the error says the rule in words, for the service's log"
    );
}

#[test]
fn uppercase_hex_is_refused() {
    let header = format!("00-{}-{PARENT}-01", TRACE.to_uppercase());
    assert_eq!(
        refused(&header),
        TraceParentError::TraceIdNotLowerHex,
        "the grammar is lowercase hex: an uppercase trace id is not a trace id"
    );
    let header = format!("00-{TRACE}-{}-01", "00F067AA0BA902B7");
    assert_eq!(
        refused(&header),
        TraceParentError::ParentIdNotLowerHex,
        "nor an uppercase parent id"
    );
}

#[test]
fn a_version_that_is_not_two_lowercase_hex_digits_is_refused() {
    for version in ["0A", "g0", ".0", "0."] {
        let header = format!("{version}{}", &VALID[2..]);
        assert_eq!(
            refused(&header),
            TraceParentError::VersionNotLowerHex,
            "version {version:?}"
        );
    }
}

#[test]
fn version_ff_is_refused() {
    let header = format!("ff{}", &VALID[2..]);
    assert_eq!(
        refused(&header),
        TraceParentError::VersionFf,
        "ff is forbidden, whatever follows"
    );
}

#[test]
fn a_field_separator_other_than_a_dash_is_refused() {
    for at in [2, 35, 52] {
        let mut header = VALID.to_owned();
        header.replace_range(at..=at, "_");
        assert_eq!(
            refused(&header),
            TraceParentError::MissingDash,
            "no dash at {at}: {header}"
        );
    }
}

#[test]
fn a_field_of_the_wrong_length_is_refused() {
    let long_trace = format!("00-{TRACE}0-{PARENT}-01");
    assert_ne!(
        parse_traceparent(&long_trace).ok().map(|p| p.version),
        Some(0),
        "a 33-digit trace id"
    );
    assert!(
        parse_traceparent(&long_trace).is_err(),
        "a 33-digit trace id shifts every field"
    );
    let short_parent = format!("00-{TRACE}-{}-01", &PARENT[1..]);
    assert_eq!(
        refused(&short_parent),
        TraceParentError::TooShort,
        "a 15-digit parent id"
    );
    let long_flags = format!("00-{TRACE}-{PARENT}-011");
    assert_eq!(
        refused(&long_flags),
        TraceParentError::ExtraFieldsInVersion00,
        "three digits of flags are two and a stray one"
    );
}

#[test]
fn a_trace_id_with_a_non_hex_character_is_refused() {
    let header = format!("00-{}z-{PARENT}-01", &TRACE[..31]);
    assert_eq!(refused(&header), TraceParentError::TraceIdNotLowerHex);
}

#[test]
fn a_parent_id_with_a_non_hex_character_is_refused() {
    let header = format!("00-{TRACE}-{}z-01", &PARENT[..15]);
    assert_eq!(refused(&header), TraceParentError::ParentIdNotLowerHex);
}

#[test]
fn flags_that_are_not_lowercase_hex_are_refused() {
    for flags in ["0x", "0A", "-1"] {
        let header = format!("00-{TRACE}-{PARENT}-{flags}");
        assert_eq!(
            refused(&header),
            TraceParentError::FlagsNotLowerHex,
            "flags {flags:?}"
        );
    }
}

#[test]
fn an_all_zero_trace_id_is_refused() {
    let header = format!("00-{}-{PARENT}-01", "0".repeat(32));
    assert_eq!(
        refused(&header),
        TraceParentError::TraceIdAllZero,
        "all zeros means no trace"
    );
}

#[test]
fn an_all_zero_parent_id_is_refused() {
    let header = format!("00-{TRACE}-{}-01", "0".repeat(16));
    assert_eq!(
        refused(&header),
        TraceParentError::ParentIdAllZero,
        "all zeros means no parent"
    );
}

#[test]
fn extra_fields_on_version_00_are_refused() {
    let header = format!("{VALID}-what-the-future-will-be-like");
    assert_eq!(
        refused(&header),
        TraceParentError::ExtraFieldsInVersion00,
        "version 00 has exactly four fields"
    );
}

#[test]
fn a_malformed_future_version_is_refused() {
    let header = format!("cc{}.what-the-future-will-be-like", &VALID[2..]);
    assert_eq!(
        refused(&header),
        TraceParentError::FutureVersionMalformed,
        "a later version's extra fields must start with a dash"
    );
}
// ANCHOR_END: invalid_tests

// ANCHOR: future_test
#[test]
fn a_future_version_is_parsed_forward_compatibly() {
    let header = format!("cc{}-what-the-future-will-be-like", &VALID[2..]);
    let parsed =
        parse_traceparent(&header).expect("a later version's first four fields are version 00's");
    assert_eq!(parsed.version, 0xcc);
    assert_eq!(parsed.trace_id.to_string(), TRACE);
    assert_eq!(parsed.parent_id.to_string(), PARENT);
    let bare = format!("cc{}", &VALID[2..]);
    assert_eq!(
        parse_traceparent(&bare).map(|p| p.version),
        Ok(0xcc),
        "with no extra fields too"
    );
}
// ANCHOR_END: future_test

#[test]
fn formatting_writes_version_00_in_lowercase() {
    let parsed = parse_traceparent(VALID).expect("valid");
    assert_eq!(
        format_traceparent(parsed.trace_id, parsed.parent_id, parsed.flags),
        VALID
    );
    let future = parse_traceparent(&format!("cc{}", &VALID[2..])).expect("valid");
    assert!(
        format_traceparent(future.trace_id, future.parent_id, future.flags).starts_with("00-"),
        "a service sends the version it speaks, whatever came in"
    );
}

#[test]
fn formatting_keeps_sampled_and_random_and_clears_reserved_bits() {
    let (trace, span) = (TraceId([0xab; 16]), SpanId([0xcd; 8]));
    assert!(
        format_traceparent(trace, span, TraceFlags(0x03)).ends_with("-03"),
        "sampled and random survive"
    );
    assert!(
        format_traceparent(trace, span, TraceFlags(0x02)).ends_with("-02"),
        "random alone survives"
    );
    assert!(
        format_traceparent(trace, span, TraceFlags(0xfd)).ends_with("-01"),
        "reserved bits are sent as zero"
    );
}

#[test]
fn format_then_parse_gives_back_the_ids() {
    let strategy = (any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u8>());
    check_property(128, 1, &strategy, |(trace, span, flags)| {
        prop_assume!(trace != [0; 16] && span != [0; 8]);
        let header = format_traceparent(TraceId(trace), SpanId(span), TraceFlags(flags));
        let parsed = parse_traceparent(&header);
        prop_assert!(
            parsed.is_ok(),
            "invariant: round_trip — {header} did not parse"
        );
        let parsed = parsed.expect("checked");
        prop_assert_eq!(parsed.trace_id, TraceId(trace), "invariant: round_trip");
        prop_assert_eq!(parsed.parent_id, SpanId(span), "invariant: round_trip");
        prop_assert_eq!(parsed.flags.0, flags & 0x03, "invariant: round_trip");
        Ok(())
    });
}

fn span(id: u8, parent: Option<u8>, start: u64) -> SpanRecord {
    SpanRecord {
        trace_id: TraceId([7; 16]),
        span_id: SpanId([id; 8]),
        parent: parent.map(|p| SpanId([p; 8])),
        service: format!("svc{id}"),
        name: format!("span {id}"),
        start_ns: start,
        end_ns: start + 10,
        error: false,
    }
}

fn ids(tree: &trace_context_core::TraceTree) -> Vec<u8> {
    tree.nodes.iter().map(|n| n.span.span_id.0[0]).collect()
}

// ANCHOR: tree_tests
#[test]
fn children_hang_under_their_parents_depth_first() {
    let tree = assemble([
        span(4, Some(2), 4),
        span(3, Some(1), 6),
        span(2, Some(1), 2),
        span(1, None, 0),
    ]);
    assert_eq!(
        ids(&tree),
        [1, 2, 4, 3],
        "each span right before its subtree"
    );
    let parents: Vec<_> = tree.nodes.iter().map(|n| n.parent).collect();
    assert_eq!(
        parents,
        [None, Some(0), Some(1), Some(0)],
        "parents as indices into nodes"
    );
    let depths: Vec<_> = tree.nodes.iter().map(|n| n.depth).collect();
    assert_eq!(depths, [0, 1, 2, 1], "one deeper than the parent");
    assert!(tree.nodes.iter().all(|n| !n.orphan), "every parent arrived");
}

#[test]
fn siblings_are_ordered_by_start_time_then_span_id() {
    let tree = assemble([
        span(1, None, 0),
        span(5, Some(1), 3),
        span(4, Some(1), 3),
        span(2, Some(1), 9),
    ]);
    assert_eq!(
        ids(&tree),
        [1, 4, 5, 2],
        "earlier first; a tie goes to the lower span id"
    );
}

#[test]
fn a_span_whose_parent_never_arrived_is_an_orphan_after_the_roots() {
    let tree = assemble([span(3, Some(9), 0), span(1, None, 5)]);
    assert_eq!(
        ids(&tree),
        [1, 3],
        "roots first, orphans after them, even if they started earlier"
    );
    assert!(
        tree.nodes[1].orphan,
        "span 3's parent 9 is not in the trace"
    );
    assert_eq!(tree.nodes[1].parent, None, "an orphan has no parent node");
    assert_eq!(tree.nodes[1].depth, 0, "an orphan starts its own subtree");
    assert!(!tree.nodes[0].orphan, "a root is not an orphan");
}

#[test]
fn an_orphan_keeps_its_own_children() {
    let tree = assemble([span(4, Some(3), 2), span(3, Some(9), 1)]);
    assert_eq!(ids(&tree), [3, 4]);
    assert_eq!(
        tree.nodes[1].parent,
        Some(0),
        "span 4's parent arrived: it hangs under it"
    );
    assert!(
        !tree.nodes[1].orphan,
        "only the span whose parent is missing is an orphan"
    );
    assert_eq!(tree.nodes[1].depth, 1);
}

#[test]
fn a_repeated_span_id_keeps_the_first_and_counts_the_rest() {
    let mut late = span(2, Some(1), 50);
    late.name = "the copy".into();
    let tree = assemble([span(1, None, 0), span(2, Some(1), 1), late.clone(), late]);
    assert_eq!(ids(&tree), [1, 2], "one node per span id");
    assert_eq!(
        tree.nodes[1].span.name, "span 2",
        "the first to arrive is kept"
    );
    assert_eq!(tree.duplicates, 2, "the two copies are counted");
}

#[test]
fn a_span_that_names_itself_as_parent_is_an_orphan() {
    let tree = assemble([span(1, Some(1), 0)]);
    assert_eq!(ids(&tree), [1]);
    assert!(tree.nodes[0].orphan, "a span cannot be its own parent");
}

#[test]
fn a_cycle_of_parents_ends_and_places_every_span_once() {
    let tree = assemble([span(1, Some(2), 0), span(2, Some(1), 1), span(3, None, 2)]);
    let mut placed = ids(&tree);
    assert_eq!(placed[0], 3, "the real root comes first");
    placed.sort_unstable();
    assert_eq!(
        placed,
        [1, 2, 3],
        "every span exactly once, no endless loop"
    );
    assert_eq!(
        tree.orphans(),
        1,
        "the cycle is broken at its earliest span"
    );
}

#[test]
fn a_long_chain_does_not_overflow_the_stack() {
    let chain: Vec<_> = (0..20_000u64)
        .map(|i| {
            let mut s = span(1, None, i);
            s.span_id = SpanId((i + 1).to_be_bytes());
            s.parent = (i > 0).then(|| SpanId(i.to_be_bytes()));
            s
        })
        .collect();
    let tree = assemble(chain);
    assert_eq!(tree.nodes.len(), 20_000);
    assert_eq!(tree.nodes[19_999].depth, 19_999, "one level per link");
}

#[test]
fn the_arrival_order_does_not_change_the_tree() {
    let spans = vec![
        span(1, None, 0),
        span(2, Some(1), 1),
        span(3, Some(1), 1),
        span(4, Some(3), 2),
        span(5, Some(8), 0),
        span(6, Some(5), 3),
    ];
    let expected = assemble(spans.clone());
    check_property(64, 2, &Just(spans).prop_shuffle(), |shuffled| {
        prop_assert_eq!(
            &assemble(shuffled),
            &expected,
            "invariant: order_independent"
        );
        Ok(())
    });
}
// ANCHOR_END: tree_tests
