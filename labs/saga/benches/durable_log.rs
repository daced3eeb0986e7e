//! What the durable saga log costs: completed sagas per second and p50/p99 latency, with the
//! log written to SQLite (WAL) in the same transaction as the order's state, against the
//! same flow with the log switched off, in the same run and under the same load. The log is
//! measured twice: with `synchronous = NORMAL` (the lab's default: a commit survives the
//! process crashing, not a power cut) and with `synchronous = FULL` (every commit fsynced,
//! so it survives a power cut too). Only the order database, which holds the log, changes
//! mode; the participants keep NORMAL.
//!
//! All four services run in one process with their own SQLite files, called in-process (no
//! sockets), on a 2-worker tokio runtime with `CONCURRENCY` sagas in flight. Run with
//! `cargo bench -p lab-saga` (`SAGA_BENCH_SAGAS` sets the number of sagas per mode).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lab_saga::order::LogSync;
use lab_saga::system::{Options, Place, Seed, System, fresh_dir, order_line};

const CONCURRENCY: usize = 8;

struct Figures {
    sagas_per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// What is measured: no log, or the log synced one way or the other.
#[derive(Clone, Copy, Debug)]
enum Mode {
    NonDurable,
    Durable(LogSync),
}

async fn measure(mode: Mode, sagas: usize) -> anyhow::Result<Figures> {
    let durable = matches!(mode, Mode::Durable(_));
    let dir = std::env::temp_dir().join(format!("saga-bench-{mode:?}-{}", std::process::id()));
    fresh_dir(&dir)?;
    let seed = Seed {
        balance: i64::MAX / 4,
        stock: i64::MAX / 4,
        couriers: i64::MAX / 4,
    };
    let system = System::start(
        &Place::Dir(dir.clone()),
        Some(&seed),
        Options {
            non_durable: !durable,
            ..Options::default()
        },
    )?;
    if let Mode::Durable(sync) = mode {
        system.order.set_log_sync(sync)?;
    }
    let order = Arc::clone(&system.order);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let order = Arc::clone(&order);
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= sagas {
                    break;
                }
                let begin = Instant::now();
                let outcome = order.run_order(&order_line(&format!("b-{i}"), 1)).await;
                assert!(outcome.is_ok(), "saga {i} failed: {outcome:?}");
                latencies.push(begin.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    drop(system);
    std::fs::remove_dir_all(&dir).ok();
    Ok(Figures {
        sagas_per_second: sagas as f64 / elapsed.as_secs_f64(),
        p50: latencies[latencies.len() / 2],
        p99: latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)],
    })
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: run a short smoke test.
    let benching = std::env::args().any(|arg| arg == "--bench");
    let sagas = std::env::var("SAGA_BENCH_SAGAS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(if benching { 5_000 } else { 50 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Warm-up (page cache, allocator) so the first mode measured is not penalised.
        measure(Mode::Durable(LogSync::Normal), sagas / 10 + 1).await?;
        let plain = measure(Mode::NonDurable, sagas).await?;
        let normal = measure(Mode::Durable(LogSync::Normal), sagas).await?;
        let full = measure(Mode::Durable(LogSync::Full), sagas).await?;
        println!(
            "saga log benchmark: {sagas} sagas per mode, {CONCURRENCY} in flight, 2 worker threads"
        );
        for (name, figures) in [
            ("non-durable", &plain),
            ("log, NORMAL", &normal),
            ("log, FULL", &full),
        ] {
            println!(
                "  {name:<12} {:>8.0} sagas/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
                figures.sagas_per_second,
                figures.p50.as_secs_f64() * 1e3,
                figures.p99.as_secs_f64() * 1e3
            );
        }
        println!(
            "  the log costs {:.2}x the non-durable time per saga with NORMAL, {:.2}x with FULL",
            plain.sagas_per_second / normal.sagas_per_second,
            plain.sagas_per_second / full.sagas_per_second
        );
        Ok(())
    })
}
