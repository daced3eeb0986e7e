//! Shared by the lab's tests: a collector on a free loopback port.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lab_runtime::{Millis, Running, TokioClock};
use lab_tracing::collector::{CollectorHandle, router};
use lab_tracing::store::Store;
use trace_context_core::{CollectorConfig, Decision, SamplingPolicy};

/// A collector that keeps every trace, decided after `wait_ms` of quiet.
pub fn keep_all(wait_ms: u64) -> CollectorConfig {
    CollectorConfig {
        decision_wait: Millis(wait_ms),
        orphan_window: Millis(wait_ms * 2),
        policy: SamplingPolicy {
            slow_ns: u64::MAX,
            keep_per_mille: 1000,
            seed: 7,
        },
        ..CollectorConfig::default()
    }
}

/// A running collector.
pub struct TestCollector {
    /// Its inbox, store and decisions.
    pub handle: CollectorHandle,
    /// Its base URL.
    pub url: String,
    /// Its server.
    pub server: Running,
}

/// Starts a collector with an in-memory store on a free loopback port.
pub async fn collector(config: CollectorConfig) -> TestCollector {
    let store = Store::open(None).expect("an in-memory store");
    let handle = CollectorHandle::start(config, store, TokioClock::new());
    let server = lab_runtime::spawn(router(handle.clone()), ([127, 0, 0, 1], 0).into())
        .await
        .expect("the collector listens");
    TestCollector {
        url: format!("http://{}", server.addr),
        handle,
        server,
    }
}

/// The next decision, waiting for the event (the guard only stops a hung test).
pub async fn next_decision(
    decisions: &mut tokio::sync::broadcast::Receiver<Arc<Decision>>,
) -> Arc<Decision> {
    tokio::time::timeout(Duration::from_secs(60), decisions.recv())
        .await
        .expect("a decision within a minute")
        .expect("the collector is running")
}
