//! What a trace viewer computes from a tree: each span's self time, the critical path, and
//! the clock-skew correction between services.

use serde::{Deserialize, Serialize};

use crate::ids::SpanId;
use crate::tree::TraceTree;

impl TraceTree {
    /// The indices of `index`'s children, in order.
    pub fn children(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, node)| node.parent == Some(index))
            .map(|(i, _)| i)
    }

    /// The index of the node holding `span_id`.
    pub fn find(&self, span_id: SpanId) -> Option<usize> {
        self.nodes
            .iter()
            .position(|node| node.span.span_id == span_id)
    }

    /// How many spans are orphans.
    pub fn orphans(&self) -> usize {
        self.nodes.iter().filter(|node| node.orphan).count()
    }
}

fn child_lists(tree: &TraceTree) -> Vec<Vec<usize>> {
    let mut children = vec![Vec::new(); tree.nodes.len()];
    for (i, node) in tree.nodes.iter().enumerate() {
        if let Some(parent) = node.parent {
            children[parent].push(i);
        }
    }
    children
}

/// Each span's self time, in the nodes' order: its duration minus the time covered by at
/// least one of its children (clipped to the span), so parallel children count once.
pub fn self_times(tree: &TraceTree) -> Vec<u64> {
    let children = child_lists(tree);
    tree.nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let (start, end) = (node.span.start_ns, node.span.end_ns.max(node.span.start_ns));
            let mut covered: Vec<(u64, u64)> = children[i]
                .iter()
                .map(|&c| {
                    let span = &tree.nodes[c].span;
                    (
                        span.start_ns.clamp(start, end),
                        span.end_ns.clamp(start, end),
                    )
                })
                .filter(|(s, e)| e > s)
                .collect();
            covered.sort_unstable();
            let mut busy = 0;
            let mut reach = start;
            for (s, e) in covered {
                let s = s.max(reach);
                if e > s {
                    busy += e - s;
                    reach = e;
                }
            }
            (end - start) - busy
        })
        .collect()
}

// ANCHOR: critical_path
/// The critical path: from the first root, again and again the child that ended last (the
/// one its parent waited for), down to a leaf. Indices into the tree's nodes.
pub fn critical_path(tree: &TraceTree) -> Vec<usize> {
    let children = child_lists(tree);
    let mut path = Vec::new();
    let mut here = if tree.nodes.is_empty() { None } else { Some(0) };
    while let Some(i) = here {
        path.push(i);
        here = children[i]
            .iter()
            .copied()
            .max_by_key(|&c| (tree.nodes[c].span.end_ns, std::cmp::Reverse(c)));
    }
    path
}
// ANCHOR_END: critical_path

/// One clock-skew correction: a span (and the rest of its service's subtree under it) moved by
/// `shift_ns` so that it sits inside its parent from another service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skew {
    /// The span whose start (or end) fell outside its parent.
    pub span_id: SpanId,
    /// Its service, whose clock is off.
    pub service: String,
    /// Added to its times: positive when it seemed to start before its parent.
    pub shift_ns: i64,
}

fn shifted(time: u64, shift: i64) -> u64 {
    time.saturating_add_signed(shift)
}

/// Corrects clock skew in place and reports each correction.
///
/// Only a parent and child from different services can disagree (one service has one clock).
/// A child that starts before its parent is moved forward to the parent's start; one that ends
/// after its parent, though short enough to fit, is moved back to end with it. A span from
/// the same service as its parent moves with its parent.
pub fn correct_skew(tree: &mut TraceTree) -> Vec<Skew> {
    let mut shift = vec![0i64; tree.nodes.len()];
    let mut skews = Vec::new();
    for i in 0..tree.nodes.len() {
        let Some(parent) = tree.nodes[i].parent else {
            continue;
        };
        let (p_start, p_end, p_service) = {
            let p = &tree.nodes[parent].span;
            (p.start_ns, p.end_ns, p.service.clone())
        };
        let span = &tree.nodes[i].span;
        if span.service == p_service {
            shift[i] = shift[parent];
        } else {
            let duration = span.duration_ns();
            let own = if span.start_ns < p_start {
                i64::try_from(p_start - span.start_ns).unwrap_or(i64::MAX)
            } else if span.end_ns > p_end && duration <= p_end.saturating_sub(p_start) {
                -i64::try_from(span.end_ns - p_end).unwrap_or(i64::MAX)
            } else {
                0
            };
            if own != 0 {
                skews.push(Skew {
                    span_id: span.span_id,
                    service: span.service.clone(),
                    shift_ns: own,
                });
            }
            shift[i] = own;
        }
        let span = &mut tree.nodes[i].span;
        span.start_ns = shifted(span.start_ns, shift[i]);
        span.end_ns = shifted(span.end_ns, shift[i]);
    }
    skews
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SpanId, TraceId};
    use crate::span::SpanRecord;
    use crate::tree::assemble;

    const MS: u64 = 1_000_000;

    fn span(id: u8, parent: Option<u8>, service: &str, start: u64, end: u64) -> SpanRecord {
        SpanRecord {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent: parent.map(|p| SpanId([p; 8])),
            service: service.into(),
            name: service.into(),
            start_ns: start * MS,
            end_ns: end * MS,
            error: false,
        }
    }

    fn guide() -> TraceTree {
        assemble([
            span(1, None, "gateway", 0, 75),
            span(2, Some(1), "order", 2, 72),
            span(3, Some(2), "user", 5, 25),
            span(4, Some(2), "product", 5, 55),
        ])
    }

    #[test]
    fn self_time_counts_parallel_children_once() {
        let tree = guide();
        let names: Vec<_> = tree.nodes.iter().map(|n| n.span.service.as_str()).collect();
        assert_eq!(names, ["gateway", "order", "user", "product"]);
        assert_eq!(self_times(&tree), vec![5 * MS, 20 * MS, 20 * MS, 50 * MS]);
    }

    #[test]
    fn the_critical_path_follows_the_slower_parallel_call() {
        let tree = guide();
        let path: Vec<_> = critical_path(&tree)
            .iter()
            .map(|&i| tree.nodes[i].span.service.clone())
            .collect();
        assert_eq!(path, ["gateway", "order", "product"]);
        assert!(critical_path(&TraceTree::default()).is_empty());
    }

    #[test]
    fn a_child_before_its_parent_is_shifted_with_its_service_subtree() {
        let mut tree = assemble([
            span(1, None, "gateway", 100, 175),
            span(2, Some(1), "order", 40, 110),
            span(3, Some(2), "order", 45, 105),
        ]);
        let skews = correct_skew(&mut tree);
        assert_eq!(
            skews,
            vec![Skew {
                span_id: SpanId([2; 8]),
                service: "order".into(),
                shift_ns: 60 * MS as i64
            }]
        );
        assert_eq!(tree.nodes[1].span.start_ns, 100 * MS);
        assert_eq!(
            tree.nodes[2].span.start_ns,
            105 * MS,
            "its own child moved with it"
        );
    }

    #[test]
    fn a_child_ending_after_its_parent_is_pulled_back_when_it_fits() {
        let mut tree = assemble([span(1, None, "a", 0, 50), span(2, Some(1), "b", 10, 55)]);
        let skews = correct_skew(&mut tree);
        assert_eq!(skews[0].shift_ns, -(5 * MS as i64));
        assert_eq!(tree.nodes[1].span.end_ns, 50 * MS);
        let mut long = assemble([span(1, None, "a", 0, 50), span(2, Some(1), "b", 10, 80)]);
        assert!(
            correct_skew(&mut long).is_empty(),
            "a child longer than its parent is left alone"
        );
    }

    #[test]
    fn the_tree_answers_children_find_and_orphans() {
        let tree = assemble([
            span(1, None, "a", 0, 9),
            span(2, Some(1), "b", 1, 2),
            span(3, Some(7), "c", 1, 2),
        ]);
        assert_eq!(tree.children(0).collect::<Vec<_>>(), [1]);
        assert_eq!(tree.find(SpanId([3; 8])), Some(2));
        assert_eq!(tree.find(SpanId([9; 8])), None);
        assert_eq!(tree.orphans(), 1);
    }

    #[test]
    fn a_trace_without_skew_is_left_alone() {
        let mut tree = guide();
        let before = tree.clone();
        assert!(correct_skew(&mut tree).is_empty());
        assert_eq!(tree, before);
    }
}
