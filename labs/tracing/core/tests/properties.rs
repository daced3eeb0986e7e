//! Properties of the headers: `tracestate` never grows past 32 members and keeps the latest
//! update first; baggage values survive encoding whatever they hold; `extract` never panics
//! and never continues a trace from a header the parser refuses.

use lab_test_support::check_property;
use proptest::prelude::*;
use trace_context_core::baggage::{Baggage, decode_value, encode_value};
use trace_context_core::{TraceState, extract, parse_traceparent};

#[test]
fn tracestate_stays_within_32_members_with_the_latest_first() {
    let updates = prop::collection::vec(("[a-z][a-z0-9_]{0,6}", "[!-+\\--<>-~]{1,8}"), 1..80);
    check_property(128, 21, &updates, |updates| {
        let mut state = TraceState::new();
        for (key, value) in &updates {
            state
                .upsert(key, value)
                .expect("keys and values from the grammar");
            prop_assert!(state.len() <= 32, "invariant: at most 32 members");
            prop_assert_eq!(
                state.members().next(),
                Some((key.as_str(), value.as_str())),
                "invariant: latest first"
            );
        }
        let reparsed = TraceState::parse([state.to_string().as_str()]);
        prop_assert_eq!(
            reparsed.as_ref(),
            Ok(&state),
            "invariant: what is sent parses back"
        );
        Ok(())
    });
}

#[test]
fn baggage_values_survive_encoding() {
    check_property(256, 22, &any::<String>(), |value| {
        prop_assert_eq!(decode_value(&encode_value(&value)), Some(value.clone()));
        let mut baggage = Baggage::new();
        prop_assume!(baggage.set("k", &value));
        let parsed = Baggage::parse([baggage.to_string().as_str()]).expect("what is sent parses");
        prop_assert_eq!(parsed.get("k"), Some(value.as_str()));
        Ok(())
    });
}

#[test]
fn extract_continues_only_what_the_parser_accepts() {
    check_property(512, 23, &any::<String>(), |header| {
        let incoming = extract([header.as_str()], ["a=1"]);
        prop_assert_eq!(
            incoming.parent.is_some(),
            parse_traceparent(&header).is_ok()
        );
        if incoming.parent.is_none() {
            prop_assert!(
                incoming.state.is_empty(),
                "a restarted trace drops its tracestate"
            );
        }
        Ok(())
    });
}
