//! Prometheus text exposition of a breaker's numbers, for the order client's `/metrics`.
//!
//! Hand-written rather than pulled from a metrics crate: the format is a few lines of
//! text, and seeing it is part of the lesson. Names follow Prometheus conventions
//! (`_total` for counters, base units, a `name` label per breaker) and mirror
//! resilience4j's Micrometer metrics, so dashboards built for one read the other.

use std::fmt::Write as _;

use breaker_core::State;
use breaker_tower::BreakerMetrics;

/// Renders one breaker's metrics; `name` labels every sample.
pub fn render(name: &str, metrics: &BreakerMetrics) -> String {
    let mut out = String::new();
    let core = &metrics.core;
    let label = format!("name=\"{}\"", escape(name));

    header(
        &mut out,
        "breaker_state",
        "gauge",
        "1 for the current state, 0 for the others.",
    );
    for state in State::ALL {
        let value = u8::from(core.state == state);
        let _ = writeln!(
            out,
            "breaker_state{{{label},state=\"{}\"}} {value}",
            state.name()
        );
    }

    header(
        &mut out,
        "breaker_calls_total",
        "counter",
        "Recorded calls by outcome.",
    );
    for (kind, value) in [
        ("successful", metrics.successes),
        ("failed", metrics.failures),
        ("ignored", metrics.ignored),
        ("released", metrics.released),
        ("stale", metrics.stale),
    ] {
        let _ = writeln!(
            out,
            "breaker_calls_total{{{label},kind=\"{kind}\"}} {value}"
        );
    }

    header(
        &mut out,
        "breaker_slow_calls_total",
        "counter",
        "Recorded calls slower than slow_call_duration.",
    );
    let _ = writeln!(out, "breaker_slow_calls_total{{{label}}} {}", metrics.slow);

    header(
        &mut out,
        "breaker_not_permitted_calls_total",
        "counter",
        "Calls rejected without being attempted.",
    );
    let _ = writeln!(
        out,
        "breaker_not_permitted_calls_total{{{label}}} {}",
        core.rejected_calls
    );

    header(
        &mut out,
        "breaker_failure_rate",
        "gauge",
        "Failure percentage of the judged calls; -1 below minimum_calls.",
    );
    let _ = writeln!(
        out,
        "breaker_failure_rate{{{label}}} {}",
        rate(core.failure_rate)
    );

    header(
        &mut out,
        "breaker_slow_call_rate",
        "gauge",
        "Slow-call percentage of the judged calls; -1 below minimum_calls.",
    );
    let _ = writeln!(
        out,
        "breaker_slow_call_rate{{{label}}} {}",
        rate(core.slow_call_rate)
    );

    header(
        &mut out,
        "breaker_buffered_calls",
        "gauge",
        "Calls in the window the current state judges by.",
    );
    let _ = writeln!(
        out,
        "breaker_buffered_calls{{{label}}} {}",
        core.buffered_calls
    );
    out
}

fn header(out: &mut String, metric: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {metric} {help}");
    let _ = writeln!(out, "# TYPE {metric} {kind}");
}

/// resilience4j's convention: -1 while there are too few calls to judge.
fn rate(rate: Option<f32>) -> String {
    rate.map_or_else(|| "-1".to_owned(), |r| format!("{r:.1}"))
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use breaker_core::{Config, Millis, Outcome};
    use breaker_tower::Breaker;
    use breaker_tower::clock::ManualClock;

    #[test]
    fn renders_state_counts_and_rates_in_prometheus_text() {
        let breaker = Breaker::new(Config::default(), ManualClock::default()).unwrap();
        breaker
            .try_acquire()
            .unwrap()
            .record(Outcome::Success, Millis(3));
        breaker
            .try_acquire()
            .unwrap()
            .record(Outcome::Failure, Millis(3));
        let text = render("pay\"ment", &breaker.metrics());
        assert!(
            text.contains("breaker_state{name=\"pay\\\"ment\",state=\"closed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("breaker_state{name=\"pay\\\"ment\",state=\"open\"} 0"),
            "{text}"
        );
        assert!(text.contains("kind=\"successful\"} 1"), "{text}");
        assert!(text.contains("kind=\"failed\"} 1"), "{text}");
        // Two calls are below resilience4j's default minimum of 100.
        assert!(
            text.contains("breaker_failure_rate{name=\"pay\\\"ment\"} -1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE breaker_calls_total counter"),
            "{text}"
        );
    }
}
