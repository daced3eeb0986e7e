//! The collector machine through its inputs and timeouts: assembly, orphans, skew, tail
//! sampling, bounded memory, late spans; and its properties over random arrival orders.

use lab_test_support::check_property;
use proptest::prelude::*;
use trace_context_core::{
    Collector, CollectorConfig, Decision, DropReason, Input, Machine, Millis, Output,
    SamplingPolicy, SpanId, SpanRecord, TraceId, Verdict,
};

const MS: u64 = 1_000_000;

fn span(trace: u8, id: u8, parent: Option<u8>, service: &str, start: u64, end: u64) -> SpanRecord {
    SpanRecord {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        parent: parent.map(|p| SpanId([p; 8])),
        service: service.into(),
        name: service.into(),
        start_ns: start * MS,
        end_ns: end * MS,
        error: false,
    }
}

fn guide(trace: u8) -> Vec<SpanRecord> {
    vec![
        span(trace, 1, None, "gateway", 0, 75),
        span(trace, 2, Some(1), "order", 2, 72),
        span(trace, 3, Some(2), "user", 5, 25),
        span(trace, 4, Some(2), "product", 5, 55),
        span(trace, 5, Some(2), "order-db", 56, 70),
    ]
}

fn config() -> CollectorConfig {
    CollectorConfig {
        decision_wait: Millis(100),
        orphan_window: Millis(1_000),
        max_traces: 4,
        max_spans_per_trace: 50,
        remember_decided: 100,
        policy: SamplingPolicy {
            slow_ns: 200 * MS,
            keep_per_mille: 0,
            seed: 1,
        },
    }
}

fn drain(collector: &mut Collector) -> (Vec<Decision>, Vec<DropReason>) {
    let (mut decided, mut dropped) = (Vec::new(), Vec::new());
    while let Some(out) = collector.poll_output() {
        match out {
            Output::Decided(d) => decided.push(*d),
            Output::Dropped { reason, .. } => dropped.push(reason),
        }
    }
    (decided, dropped)
}

#[test]
fn spans_out_of_order_from_several_services_become_one_tree_after_the_quiet_wait() {
    let mut c = Collector::new(config());
    let mut spans = guide(1);
    spans.reverse();
    for (i, s) in spans.into_iter().enumerate() {
        c.handle_input(Millis(i as u64 * 10), Input::Span(s))
            .expect("valid span");
    }
    assert_eq!(
        c.poll_timeout(),
        Some(Millis(140)),
        "quiet for 100 ms after the last span at 40 ms"
    );
    c.handle_timeout(Millis(139));
    assert!(drain(&mut c).0.is_empty(), "not quiet long enough yet");
    c.handle_timeout(Millis(140));
    let (decided, _) = drain(&mut c);
    let d = &decided[0];
    let order: Vec<_> = d
        .tree
        .nodes
        .iter()
        .map(|n| n.span.service.as_str())
        .collect();
    assert_eq!(order, ["gateway", "order", "user", "product", "order-db"]);
    assert_eq!(d.tree.orphans(), 0);
    let path: Vec<_> = d
        .critical_path
        .iter()
        .map(|&i| d.tree.nodes[i].span.service.as_str())
        .collect();
    assert_eq!(
        path,
        ["gateway", "order", "order-db"],
        "the last child to end is on the path"
    );
    assert_eq!(d.self_times_ns[1], 70 * MS - 50 * MS - 14 * MS);
    assert_eq!(d.verdict, Verdict::DroppedByRatio);
    assert_eq!(c.in_flight(), 0);
}

#[test]
fn a_missing_parent_holds_the_decision_until_the_orphan_window_then_marks_the_orphan() {
    let mut c = Collector::new(config());
    c.handle_input(Millis(0), Input::Span(span(1, 3, Some(2), "user", 5, 25)))
        .expect("valid");
    assert_eq!(
        c.poll_timeout(),
        Some(Millis(1_000)),
        "the parent may still come"
    );
    c.handle_input(Millis(10), Input::Span(span(1, 1, None, "gateway", 0, 75)))
        .expect("valid");
    c.handle_timeout(Millis(999));
    assert!(drain(&mut c).0.is_empty());
    c.handle_timeout(Millis(1_000));
    let (decided, _) = drain(&mut c);
    let tree = &decided[0].tree;
    assert_eq!(tree.orphans(), 1);
    assert!(tree.nodes[1].orphan && tree.nodes[1].span.service == "user");
}

#[test]
fn a_parent_arriving_late_but_within_the_window_is_no_orphan() {
    let mut c = Collector::new(config());
    c.handle_input(Millis(0), Input::Span(span(1, 2, Some(1), "order", 5, 25)))
        .expect("valid");
    c.handle_input(Millis(500), Input::Span(span(1, 1, None, "gateway", 0, 75)))
        .expect("valid");
    assert_eq!(
        c.poll_timeout(),
        Some(Millis(600)),
        "nothing missing: only the quiet wait"
    );
    c.handle_timeout(Millis(600));
    assert_eq!(drain(&mut c).0[0].tree.orphans(), 0);
}

#[test]
fn a_skewed_child_is_shifted_and_the_shift_reported() {
    let mut c = Collector::new(config());
    c.handle_input(
        Millis(0),
        Input::Span(span(1, 1, None, "gateway", 100, 175)),
    )
    .expect("valid");
    c.handle_input(
        Millis(0),
        Input::Span(span(1, 2, Some(1), "order", 60, 130)),
    )
    .expect("valid");
    c.handle_timeout(Millis(100));
    let d = &drain(&mut c).0[0];
    assert_eq!(d.skews.len(), 1);
    assert_eq!(d.skews[0].service, "order");
    assert_eq!(d.skews[0].shift_ns, 40 * MS as i64);
    assert_eq!(d.tree.nodes[1].span.start_ns, 100 * MS);
}

#[test]
fn tail_sampling_keeps_errors_and_slow_traces_and_drops_the_rest_at_the_ratio() {
    let mut c = Collector::new(config());
    let mut failing = guide(1);
    failing[3].error = true;
    let mut slow = guide(2);
    slow[0].end_ns = 300 * MS;
    for s in failing.into_iter().chain(slow).chain(guide(3)) {
        c.handle_input(Millis(0), Input::Span(s)).expect("valid");
    }
    c.handle_timeout(Millis(100));
    let mut verdicts: Vec<_> = drain(&mut c)
        .0
        .iter()
        .map(|d| (d.trace_id.0[0], d.verdict))
        .collect();
    verdicts.sort_by_key(|v| v.0);
    assert_eq!(
        verdicts,
        [
            (1, Verdict::KeptError),
            (2, Verdict::KeptSlow),
            (3, Verdict::DroppedByRatio)
        ]
    );
    assert_eq!(c.stats().traces_kept, 2);
}

#[test]
fn a_span_for_a_decided_trace_is_dropped_and_counted() {
    let mut c = Collector::new(config());
    c.handle_input(Millis(0), Input::Span(span(1, 1, None, "gateway", 0, 75)))
        .expect("valid");
    c.handle_timeout(Millis(100));
    drain(&mut c);
    c.handle_input(
        Millis(200),
        Input::Span(span(1, 2, Some(1), "order", 2, 72)),
    )
    .expect("a counted drop, not an error");
    assert_eq!(drain(&mut c).1, [DropReason::AlreadyDecided]);
    assert_eq!(c.stats().spans_dropped, 1);
    assert_eq!(c.in_flight(), 0, "no new trace was opened for it");
}

#[test]
fn a_full_collector_forces_the_decision_due_first() {
    let mut c = Collector::new(config());
    for trace in 1..=5u8 {
        c.handle_input(
            Millis(u64::from(trace)),
            Input::Span(span(trace, 1, None, "gateway", 0, 75)),
        )
        .expect("valid");
        assert!(c.in_flight() <= 4);
    }
    let (decided, _) = drain(&mut c);
    assert_eq!(decided.len(), 1);
    assert!(decided[0].forced);
    assert_eq!(
        decided[0].trace_id,
        TraceId([1; 16]),
        "the oldest went first"
    );
}

#[test]
fn a_trace_past_its_span_limit_drops_the_rest_and_counts_them() {
    let mut c = Collector::new(CollectorConfig {
        max_spans_per_trace: 3,
        ..config()
    });
    for id in 1..=10u8 {
        c.handle_input(Millis(0), Input::Span(span(1, id, None, "svc", 0, 1)))
            .expect("valid");
    }
    assert_eq!(c.spans_held(), 3);
    assert_eq!(drain(&mut c).1, vec![DropReason::TraceFull; 7]);
}

#[test]
fn duplicate_spans_and_bad_spans_are_refused() {
    let mut c = Collector::new(config());
    c.handle_input(Millis(0), Input::Span(span(1, 1, None, "svc", 0, 1)))
        .expect("valid");
    c.handle_input(Millis(0), Input::Span(span(1, 1, None, "svc", 0, 1)))
        .expect("a counted drop");
    assert_eq!(drain(&mut c).1, [DropReason::Duplicate]);
    assert!(
        c.handle_input(Millis(0), Input::Span(span(0, 1, None, "svc", 0, 1)))
            .is_err()
    );
    assert!(
        c.handle_input(Millis(0), Input::Span(span(1, 9, None, "svc", 5, 1)))
            .is_err()
    );
}

#[test]
fn memory_stays_bounded_and_every_trace_is_decided_once_whatever_the_arrival_order() {
    let strategy = (
        prop::collection::vec((0u8..12, 0u64..50), 1..80),
        any::<u64>(),
    );
    check_property(64, 17, &strategy, |(arrivals, _seed)| {
        let mut c = Collector::new(config());
        let mut now = 0;
        let mut traces = std::collections::BTreeSet::new();
        let mut decided = std::collections::BTreeMap::new();
        for (i, &(trace, gap)) in arrivals.iter().enumerate() {
            now += gap;
            let trace = trace + 1;
            let _ = c.handle_input(
                Millis(now),
                Input::Span(span(trace, (i % 250) as u8 + 1, None, "svc", 0, 1)),
            );
            prop_assert!(
                c.in_flight() <= 4,
                "invariant: at most max_traces in flight"
            );
            traces.insert(trace);
            for d in drain(&mut c).0 {
                *decided.entry(d.trace_id.0[0]).or_insert(0) += 1;
            }
        }
        c.handle_timeout(Millis(now + 10_000));
        for d in drain(&mut c).0 {
            *decided.entry(d.trace_id.0[0]).or_insert(0) += 1;
        }
        prop_assert_eq!(c.in_flight(), 0);
        for trace in traces {
            // A trace whose spans came after its decision is decided once per stay in memory:
            // late spans are dropped, never reopen it.
            prop_assert_eq!(
                decided.get(&trace).copied(),
                Some(1),
                "invariant: one decision per trace"
            );
        }
        Ok(())
    });
}

#[test]
fn the_decision_does_not_depend_on_the_arrival_order() {
    let strategy = Just(guide(1)).prop_shuffle();
    check_property(64, 18, &strategy, |spans| {
        let mut c = Collector::new(config());
        for s in spans {
            c.handle_input(Millis(0), Input::Span(s)).expect("valid");
        }
        c.handle_timeout(Millis(100));
        let d = drain(&mut c).0.remove(0);
        let ids: Vec<_> = d.tree.nodes.iter().map(|n| n.span.span_id.0[0]).collect();
        prop_assert_eq!(ids, vec![1, 2, 3, 4, 5]);
        prop_assert_eq!(d.critical_path, vec![0, 1, 4]);
        Ok(())
    });
}
