//! A decided trace as the waterfall a trace viewer draws: as text for the terminal (through
//! `lab-runtime`'s palette, so plain on a pipe or with `NO_COLOR`) and as an HTML page.

use lab_runtime::Palette;
use serde::{Deserialize, Serialize};
use trace_context_core::Decision;

/// One span of a [`TraceView`], times relative to the trace's start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanView {
    /// The span's id, as hex.
    pub span_id: String,
    /// Its parent's id, as hex.
    pub parent: Option<String>,
    /// The service that recorded it.
    pub service: String,
    /// What it did.
    pub name: String,
    /// Depth in the tree.
    pub depth: usize,
    /// Start, in ms after the trace's first start (after skew correction).
    pub offset_ms: f64,
    /// Duration in ms.
    pub duration_ms: f64,
    /// Self time in ms: not covered by any child.
    pub self_ms: f64,
    /// Whether it failed.
    pub error: bool,
    /// Whether its parent never arrived.
    pub orphan: bool,
    /// Whether it is on the critical path.
    pub critical: bool,
    /// Its attributes, as received.
    pub attributes: Vec<(String, String)>,
}

/// A clock-skew correction, for people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkewView {
    /// The service whose clock was off.
    pub service: String,
    /// The span that was moved.
    pub span_id: String,
    /// How far, in ms (positive: later).
    pub shift_ms: f64,
}

/// A decided trace, ready to draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceView {
    /// The trace's id, as hex.
    pub trace_id: String,
    /// Why it was kept (or dropped).
    pub verdict: String,
    /// Decided early because the collector was full.
    pub forced: bool,
    /// From the first start to the last end, in ms.
    pub duration_ms: f64,
    /// Whether any span failed.
    pub error: bool,
    /// The corrections made.
    pub skews: Vec<SkewView>,
    /// The spans, in the waterfall's order.
    pub spans: Vec<SpanView>,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl TraceView {
    /// The view of `decision`, with the attributes stored for each span id.
    pub fn of(decision: &Decision, attributes: &[(String, Vec<(String, String)>)]) -> TraceView {
        let start = decision
            .tree
            .nodes
            .iter()
            .map(|n| n.span.start_ns)
            .min()
            .unwrap_or(0);
        let spans = decision
            .tree
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let id = node.span.span_id.to_string();
                SpanView {
                    attributes: attributes
                        .iter()
                        .find(|(span, _)| *span == id)
                        .map(|(_, a)| a.clone())
                        .unwrap_or_default(),
                    span_id: id,
                    parent: node.span.parent.map(|p| p.to_string()),
                    service: node.span.service.clone(),
                    name: node.span.name.clone(),
                    depth: node.depth,
                    offset_ms: ms(node.span.start_ns - start),
                    duration_ms: ms(node.span.duration_ns()),
                    self_ms: ms(decision.self_times_ns.get(i).copied().unwrap_or(0)),
                    error: node.span.error,
                    orphan: node.orphan,
                    critical: decision.critical_path.contains(&i),
                }
            })
            .collect();
        TraceView {
            trace_id: decision.trace_id.to_string(),
            verdict: decision.verdict.reason().to_owned(),
            forced: decision.forced,
            duration_ms: ms(decision.duration_ns),
            error: decision.tree.nodes.iter().any(|n| n.span.error),
            skews: decision
                .skews
                .iter()
                .map(|s| SkewView {
                    service: s.service.clone(),
                    span_id: s.span_id.to_string(),
                    shift_ms: s.shift_ns as f64 / 1e6,
                })
                .collect(),
            spans,
        }
    }

    // ANCHOR: text
    /// The waterfall as terminal lines: one row per span, indented by depth, a bar `width`
    /// columns wide for the whole trace; `◆` marks the critical path, `!` an error, `?` an orphan.
    pub fn text(&self, palette: Palette, width: usize) -> String {
        let total = self.duration_ms.max(f64::EPSILON);
        let label_width = self
            .spans
            .iter()
            .map(|s| 2 * s.depth + s.service.len() + s.name.len() + 1)
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for span in &self.spans {
            let from = ((span.offset_ms / total) * width as f64).round() as usize;
            let len = (((span.duration_ms / total) * width as f64).round() as usize).max(1);
            let from = from.min(width.saturating_sub(1));
            let len = len.min(width - from);
            let bar = format!(
                "{}{}{}",
                " ".repeat(from),
                "█".repeat(len),
                " ".repeat(width - from - len)
            );
            let bar = if span.error {
                palette.bad(&bar)
            } else if span.critical {
                palette.warn(&bar)
            } else {
                palette.good(&bar)
            };
            let label = format!("{}{} {}", "  ".repeat(span.depth), span.service, span.name);
            let marks = format!(
                "{}{}{}",
                if span.critical { " ◆" } else { "" },
                if span.error { " !" } else { "" },
                if span.orphan { " ?" } else { "" }
            );
            out.push_str(&format!(
                "{label:<label_width$} |{bar}| {:>7.1} ms{marks}\n",
                span.duration_ms
            ));
        }
        out
    }
    // ANCHOR_END: text

    /// The waterfall as a stand-alone HTML page: bars as positioned boxes, each span's
    /// attributes in its tooltip and its row's details, the critical path outlined.
    pub fn html(&self) -> String {
        let total = self.duration_ms.max(f64::EPSILON);
        let mut rows = String::new();
        for span in &self.spans {
            let attributes: Vec<String> = span
                .attributes
                .iter()
                .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
                .collect();
            rows.push_str(&format!(
                "<div class=\"row{critical}{error}\"><div class=\"label\" style=\"padding-left:{indent}em\">{service} <b>{name}</b></div>\
                 <div class=\"track\"><div class=\"bar\" title=\"{title}\" style=\"left:{left:.3}%;width:{bar_width:.3}%\"></div></div>\
                 <div class=\"ms\">{duration:.1} ms (self {self_ms:.1})</div></div>\n",
                critical = if span.critical { " critical" } else { "" },
                error = if span.error { " error" } else { "" },
                indent = span.depth,
                service = escape(&span.service),
                name = escape(&span.name),
                title = attributes.join("&#10;"),
                left = span.offset_ms / total * 100.0,
                bar_width = (span.duration_ms / total * 100.0).max(0.3),
                duration = span.duration_ms,
                self_ms = span.self_ms,
            ));
        }
        let skews: String = self
            .skews
            .iter()
            .map(|s| {
                format!(
                    "<li>{} shifted by {:+.1} ms (clock skew)</li>",
                    escape(&s.service),
                    s.shift_ms
                )
            })
            .collect();
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>trace {id}</title><style>\
             body{{font-family:sans-serif;margin:2em}}.row{{display:flex;align-items:center;margin:2px 0}}\
             .label{{width:22em;white-space:nowrap}}.track{{position:relative;flex:1;height:1.2em;background:#eee}}\
             .bar{{position:absolute;top:0;bottom:0;background:#4a8}}.critical .bar{{background:#d80}}\
             .error .bar{{background:#c33}}.ms{{width:11em;text-align:right}}</style></head><body>\
             <h1>Trace {id}</h1><p>{duration:.1} ms · {verdict}</p><ul>{skews}</ul>{rows}</body></html>",
            id = escape(&self.trace_id),
            duration = self.duration_ms,
            verdict = escape(&self.verdict),
        )
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
