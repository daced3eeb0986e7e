//! Span-tree assembly: one trace's spans, in any arrival order, as the tree a waterfall draws.
//! The lab's second graded module (the learner's copy is `labs/tracing/exercise/tree.rs`).

use std::collections::{HashMap, HashSet};

use crate::ids::SpanId;
use crate::span::SpanRecord;

/// One span placed in its trace's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The span placed here.
    pub span: SpanRecord,
    /// The index (in [`TraceTree::nodes`]) of its parent, `None` for a root or an orphan.
    pub parent: Option<usize>,
    /// 0 for a root or an orphan, its parent's depth plus one otherwise.
    pub depth: usize,
    /// Its parent never arrived (or it sits in a cycle of parents, which no real trace has).
    pub orphan: bool,
}

/// A trace's spans as a tree, in the waterfall's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceTree {
    /// Every span once, depth first: each span right before its subtree; roots first, then
    /// orphans; siblings by start time, then span id.
    pub nodes: Vec<Node>,
    /// Spans dropped because an earlier one had the same span id.
    pub duplicates: usize,
}

// ANCHOR: assemble
/// Assembles one trace's spans, whatever order they arrived in, into its tree.
///
/// A span whose parent is not among `spans` is an orphan: placed at depth 0 after the roots,
/// its own children under it. Of several spans with one span id the first to arrive is kept.
pub fn assemble(spans: impl IntoIterator<Item = SpanRecord>) -> TraceTree {
    let mut seen = HashSet::new();
    let mut unique = Vec::new();
    let mut duplicates = 0;
    for span in spans {
        if seen.insert(span.span_id) {
            unique.push(span);
        } else {
            duplicates += 1;
        }
    }
    unique.sort_by_key(|span| (span.start_ns, span.span_id));
    let index: HashMap<SpanId, usize> = unique
        .iter()
        .enumerate()
        .map(|(i, span)| (span.span_id, i))
        .collect();
    let mut children = vec![Vec::new(); unique.len()];
    let mut starts = Vec::new();
    let mut orphans = Vec::new();
    for (i, span) in unique.iter().enumerate() {
        match span.parent.map(|parent| index.get(&parent)) {
            None => starts.push(i),
            Some(Some(&parent)) => children[parent].push(i),
            Some(_) => orphans.push(i),
        }
    }
    let roots = starts.len();
    starts.extend(orphans);
    starts.extend(0..unique.len());
    let mut slots: Vec<Option<SpanRecord>> = unique.into_iter().map(Some).collect();
    let mut nodes = Vec::with_capacity(slots.len());
    for (n, &start) in starts.iter().enumerate() {
        let mut stack = vec![(start, None, 0)];
        while let Some((i, parent, depth)) = stack.pop() {
            let Some(span) = slots[i].take() else {
                continue;
            };
            let here = nodes.len();
            nodes.push(Node {
                span,
                parent,
                depth,
                orphan: parent.is_none() && n >= roots,
            });
            for &child in children[i].iter().rev() {
                stack.push((child, Some(here), depth + 1));
            }
        }
    }
    TraceTree { nodes, duplicates }
}
// ANCHOR_END: assemble
