//! The narrated demo: the guide's flow run for real, its trace drawn as a waterfall with the
//! critical path marked; then the product service slow and failing, and which traces tail
//! sampling kept and why; then a service with a skewed clock and the collector's correction.
//! It writes to any `Write` through a [`Narrator`], so a test reads its plain output.

use std::io::Write;
use std::sync::Arc;

use lab_runtime::{Millis, Narrator, TokioClock};
use tokio::sync::broadcast;
use trace_context_core::{CollectorConfig, Decision, SamplingPolicy, Verdict};

use crate::collector::{CollectorHandle, router};
use crate::flow::{Flow, FlowConfig};
use crate::store::Store;
use crate::waterfall::TraceView;

/// Seeds the services' ids, so every run tells the same story.
pub const SEED: u64 = 17;

/// The demo's collector: decided after 500 ms of quiet; slow from 150 ms; a quarter of the rest.
pub fn demo_config() -> CollectorConfig {
    CollectorConfig {
        decision_wait: Millis(500),
        orphan_window: Millis(1_000),
        policy: SamplingPolicy {
            slow_ns: 150_000_000,
            keep_per_mille: 250,
            seed: 25,
        },
        ..CollectorConfig::default()
    }
}

async fn request(
    flow: &Flow,
    decisions: &mut broadcast::Receiver<Arc<Decision>>,
) -> anyhow::Result<(u16, Arc<Decision>)> {
    let response = reqwest::get(format!("{}/order-details/123", flow.gateway_url)).await?;
    let status = response.status().as_u16();
    flow.flush().await?;
    let decision = decisions.recv().await?;
    Ok((status, decision))
}

fn waterfall(out: &mut impl Write, narrator: Narrator, decision: &Decision) -> anyhow::Result<()> {
    let view = TraceView::of(decision, &[]);
    writeln!(
        out,
        "{}",
        narrator.detail(&format!("collector: {}", decision.verdict.reason()))
    )?;
    for line in view.text(narrator.palette(), 40).lines() {
        writeln!(out, "    {line}")?;
    }
    Ok(())
}

/// Runs the demo against a collector it starts on a free port, printing to `out`.
pub async fn run(out: &mut impl Write, narrator: Narrator) -> anyhow::Result<()> {
    let store = Store::open(None)?;
    let handle = CollectorHandle::start(demo_config(), store, TokioClock::new());
    let server = lab_runtime::spawn(router(handle.clone()), ([127, 0, 0, 1], 0).into()).await?;
    let collector = format!("http://{}", server.addr);
    let mut decisions = handle.decisions();
    writeln!(
        out,
        "{}",
        narrator.step("The guide's flow, traced: client → gateway → order → user ∥ product")
    )?;
    writeln!(
        out,
        "{}",
        narrator.detail(&format!("collector (OTLP/HTTP) on {collector}/v1/traces"))
    )?;
    let flow = Flow::start(
        &collector,
        FlowConfig {
            seed: Some(SEED),
            ..FlowConfig::default()
        },
    )
    .await?;
    writeln!(
        out,
        "{}",
        narrator.request("GET", "/order-details/123", "user 20 ms ∥ product 50 ms")
    )?;
    let (status, decision) = request(&flow, &mut decisions).await?;
    writeln!(
        out,
        "{}",
        narrator.response(
            status,
            "OK",
            &format!(
                "{} spans in trace {}",
                decision.tree.nodes.len(),
                decision.trace_id
            )
        )
    )?;
    waterfall(out, narrator, &decision)?;
    writeln!(
        out,
        "{}",
        narrator
            .detail("◆ the critical path: the product call is what the order service waited for")
    )?;
    writeln!(
        out,
        "{}",
        narrator.detail(&format!(
            "waterfall page: {collector}/traces/{}",
            decision.trace_id
        ))
    )?;

    writeln!(
        out,
        "{}",
        narrator.step("Tail sampling: errors and slow traces kept, a quarter of the rest")
    )?;
    let mut kept = Vec::new();
    for (what, latency, failing) in [
        ("healthy", 50, false),
        ("healthy", 50, false),
        ("healthy", 50, false),
        ("healthy", 50, false),
        ("product slow (200 ms)", 200, false),
        ("product failing", 50, true),
    ] {
        flow.product.set_latency(latency);
        flow.product.set_failing(failing);
        let (status, decision) = request(&flow, &mut decisions).await?;
        let verdict = decision.verdict;
        let line = format!(
            "{what:<22} {status}  {:>6.1} ms  {}",
            decision.duration_ns as f64 / 1e6,
            verdict.reason()
        );
        let line = match verdict {
            Verdict::KeptError => narrator.palette().bad(&line),
            Verdict::KeptSlow => narrator.palette().warn(&line),
            Verdict::KeptByRatio => narrator.palette().good(&line),
            Verdict::DroppedByRatio => narrator.palette().dim(&line),
        };
        writeln!(out, "{}", narrator.detail(&line))?;
        if verdict.kept() {
            kept.push(decision.trace_id);
        }
    }
    let stored = handle.store.traces(&crate::store::TraceQuery::default())?;
    writeln!(
        out,
        "{}",
        narrator.detail(&format!(
            "{} traces stored; the errors: {collector}/api/traces?error=true",
            stored.len()
        ))
    )?;
    flow.stop().await;

    writeln!(
        out,
        "{}",
        narrator.step("A skewed clock: the product service's clock runs 80 ms behind")
    )?;
    let skewed = Flow::start(
        &collector,
        FlowConfig {
            skew: Some(("product", -80)),
            seed: Some(SEED + 1),
            ..FlowConfig::default()
        },
    )
    .await?;
    let (_, decision) = request(&skewed, &mut decisions).await?;
    for skew in &decision.skews {
        writeln!(
            out,
            "{}",
            narrator.detail(&format!(
                "{} started before its caller: shifted by {:+.1} ms",
                skew.service,
                skew.shift_ns as f64 / 1e6
            ))
        )?;
    }
    waterfall(out, narrator, &decision)?;
    writeln!(
        out,
        "{}",
        narrator.detail(&format!(
            "waterfall page: {collector}/traces/{}",
            decision.trace_id
        ))
    )?;
    skewed.stop().await;
    server.stop().await;
    Ok(())
}
