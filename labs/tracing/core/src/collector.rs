//! The collector's logic as a [`Machine`]: spans in, one decision per trace out.
//!
//! Spans of a trace arrive from several services in any order. The collector holds each trace
//! until it has been quiet for the decision wait (longer while a span's parent is missing,
//! up to the orphan window from the trace's first span), then assembles the tree, corrects
//! clock skew, finds the critical path and applies the tail-sampling policy. Memory is bounded:
//! at most `max_traces` in flight (a new trace past that forces a decision on the one due
//! first) and `max_spans_per_trace` per trace; a span for a trace already decided is dropped
//! and counted.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use sansio_core::{Machine, Millis};
use serde::{Deserialize, Serialize};

use crate::analysis::{Skew, correct_skew, critical_path, self_times};
use crate::ids::{SpanId, TraceId};
use crate::sampling::{SamplingPolicy, Verdict};
use crate::span::SpanRecord;
use crate::tree::{TraceTree, assemble};

/// The collector's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorConfig {
    /// A trace is decided once no span of it came for this long.
    pub decision_wait: Millis,
    /// While a span's parent is missing, the decision waits until this long after the trace's
    /// first span; then the parentless spans are orphans.
    pub orphan_window: Millis,
    /// At most this many traces held at once.
    pub max_traces: usize,
    /// At most this many spans held for one trace; later ones are dropped and counted.
    pub max_spans_per_trace: usize,
    /// How many decided trace ids are remembered to recognise late spans.
    pub remember_decided: usize,
    /// Which traces are kept.
    pub policy: SamplingPolicy,
}

impl Default for CollectorConfig {
    fn default() -> CollectorConfig {
        CollectorConfig {
            decision_wait: Millis(1_000),
            orphan_window: Millis(5_000),
            max_traces: 10_000,
            max_spans_per_trace: 10_000,
            remember_decided: 100_000,
            policy: SamplingPolicy::default(),
        }
    }
}

/// What the driver tells the collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A finished span arrived.
    Span(SpanRecord),
}

// ANCHOR: decision
/// The collector's decision on one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The trace decided on.
    pub trace_id: TraceId,
    /// Kept or not, and why.
    pub verdict: Verdict,
    /// Decided early because the collector was full, not because the trace was quiet.
    pub forced: bool,
    /// The tree, times corrected for skew.
    pub tree: TraceTree,
    /// Each node's self time, in the tree's order.
    pub self_times_ns: Vec<u64>,
    /// The critical path, as indices into the tree's nodes.
    pub critical_path: Vec<usize>,
    /// The skew corrections made.
    pub skews: Vec<Skew>,
    /// From the earliest start to the latest end, after correction.
    pub duration_ns: u64,
}
// ANCHOR_END: decision

/// Why a span was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// Its trace was decided already.
    AlreadyDecided,
    /// Its trace holds `max_spans_per_trace` spans already.
    TraceFull,
    /// Its trace already holds a span with this id.
    Duplicate,
}

/// What the collector tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A trace was decided.
    Decided(Box<Decision>),
    /// A span was dropped.
    Dropped {
        /// The trace of the dropped span.
        trace_id: TraceId,
        /// The dropped span.
        span_id: SpanId,
        /// Why it was dropped.
        reason: DropReason,
    },
}

/// A span the collector refuses outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollectorError {
    /// An all-zero trace or span id.
    ZeroId,
    /// It ends before it starts.
    EndsBeforeStart,
}

impl std::fmt::Display for CollectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CollectorError::ZeroId => "a span with an all-zero trace or span id",
            CollectorError::EndsBeforeStart => "a span that ends before it starts",
        })
    }
}

impl std::error::Error for CollectorError {}

/// Running totals, for a metrics page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorStats {
    /// Spans taken.
    pub spans_accepted: u64,
    /// Spans dropped, for any reason.
    pub spans_dropped: u64,
    /// Traces decided.
    pub traces_decided: u64,
    /// Traces kept.
    pub traces_kept: u64,
    /// Decisions forced by a full collector.
    pub traces_forced: u64,
}

#[derive(Debug)]
struct Pending {
    spans: Vec<SpanRecord>,
    ids: HashSet<SpanId>,
    missing: HashSet<SpanId>,
    first: Millis,
    last: Millis,
    deadline: Millis,
}

/// The collector: traces held until their decision, the decisions remembered for late spans.
#[derive(Debug)]
pub struct Collector {
    config: CollectorConfig,
    pending: HashMap<TraceId, Pending>,
    due: BTreeSet<(Millis, TraceId)>,
    decided: HashSet<TraceId>,
    decided_order: VecDeque<TraceId>,
    outputs: VecDeque<Output>,
    stats: CollectorStats,
}

impl Collector {
    /// An empty collector.
    pub fn new(config: CollectorConfig) -> Collector {
        Collector {
            config,
            pending: HashMap::new(),
            due: BTreeSet::new(),
            decided: HashSet::new(),
            decided_order: VecDeque::new(),
            outputs: VecDeque::new(),
            stats: CollectorStats::default(),
        }
    }

    /// The running totals.
    pub fn stats(&self) -> CollectorStats {
        self.stats
    }

    /// How many traces are held now.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// How many spans are held now, over all traces.
    pub fn spans_held(&self) -> usize {
        self.pending.values().map(|p| p.spans.len()).sum()
    }

    /// Whether the trace was decided (and is still remembered).
    pub fn is_decided(&self, trace_id: TraceId) -> bool {
        self.decided.contains(&trace_id)
    }

    fn drop_span(&mut self, span: &SpanRecord, reason: DropReason) {
        self.stats.spans_dropped += 1;
        self.outputs.push_back(Output::Dropped {
            trace_id: span.trace_id,
            span_id: span.span_id,
            reason,
        });
    }

    fn deadline(&self, pending: &Pending) -> Millis {
        let quiet = pending.last + self.config.decision_wait;
        if pending.missing.is_empty() {
            quiet
        } else {
            quiet.max(pending.first + self.config.orphan_window)
        }
    }

    fn decide(&mut self, trace_id: TraceId, forced: bool) {
        let Some(pending) = self.pending.remove(&trace_id) else {
            return;
        };
        self.due.remove(&(pending.deadline, trace_id));
        let mut tree = assemble(pending.spans);
        let skews = correct_skew(&mut tree);
        let start = tree
            .nodes
            .iter()
            .map(|n| n.span.start_ns)
            .min()
            .unwrap_or(0);
        let end = tree.nodes.iter().map(|n| n.span.end_ns).max().unwrap_or(0);
        let duration_ns = end.saturating_sub(start);
        let error = tree.nodes.iter().any(|n| n.span.error);
        let verdict = self.config.policy.decide(trace_id, error, duration_ns);
        self.stats.traces_decided += 1;
        self.stats.traces_kept += u64::from(verdict.kept());
        self.stats.traces_forced += u64::from(forced);
        self.decided.insert(trace_id);
        self.decided_order.push_back(trace_id);
        while self.decided_order.len() > self.config.remember_decided {
            if let Some(old) = self.decided_order.pop_front() {
                self.decided.remove(&old);
            }
        }
        self.outputs.push_back(Output::Decided(Box::new(Decision {
            trace_id,
            verdict,
            forced,
            self_times_ns: self_times(&tree),
            critical_path: critical_path(&tree),
            skews,
            duration_ns,
            tree,
        })));
    }
}

impl Machine for Collector {
    type Input = Input;
    type Output = Output;
    type Error = CollectorError;

    fn handle_input(&mut self, now: Millis, input: Input) -> Result<(), CollectorError> {
        self.handle_timeout(now);
        let Input::Span(span) = input;
        if span.trace_id == TraceId::INVALID || span.span_id == SpanId::INVALID {
            return Err(CollectorError::ZeroId);
        }
        if span.end_ns < span.start_ns {
            return Err(CollectorError::EndsBeforeStart);
        }
        if self.decided.contains(&span.trace_id) {
            self.drop_span(&span, DropReason::AlreadyDecided);
            return Ok(());
        }
        if !self.pending.contains_key(&span.trace_id) {
            while self.pending.len() >= self.config.max_traces.max(1) {
                let Some(&(_, first)) = self.due.iter().next() else {
                    break;
                };
                self.decide(first, true);
            }
            self.pending.insert(
                span.trace_id,
                Pending {
                    spans: Vec::new(),
                    ids: HashSet::new(),
                    missing: HashSet::new(),
                    first: now,
                    last: now,
                    deadline: now,
                },
            );
        }
        let max_spans = self.config.max_spans_per_trace;
        let Some(pending) = self.pending.get_mut(&span.trace_id) else {
            return Ok(());
        };
        if pending.ids.contains(&span.span_id) {
            self.drop_span(&span, DropReason::Duplicate);
            return Ok(());
        }
        if pending.spans.len() >= max_spans {
            self.drop_span(&span, DropReason::TraceFull);
            return Ok(());
        }
        pending.ids.insert(span.span_id);
        pending.missing.remove(&span.span_id);
        if let Some(parent) = span.parent.filter(|p| !pending.ids.contains(p)) {
            pending.missing.insert(parent);
        }
        pending.last = now;
        let trace_id = span.trace_id;
        pending.spans.push(span);
        self.stats.spans_accepted += 1;
        let old = self
            .pending
            .get(&trace_id)
            .map(|p| p.deadline)
            .unwrap_or(now);
        let new = self
            .pending
            .get(&trace_id)
            .map(|p| self.deadline(p))
            .unwrap_or(now);
        self.due.remove(&(old, trace_id));
        self.due.insert((new, trace_id));
        if let Some(p) = self.pending.get_mut(&trace_id) {
            p.deadline = new;
        }
        Ok(())
    }

    fn handle_timeout(&mut self, now: Millis) {
        while let Some(&(at, trace_id)) = self.due.iter().next() {
            if at > now {
                break;
            }
            self.decide(trace_id, false);
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.due.iter().next().map(|&(at, _)| at)
    }
}
