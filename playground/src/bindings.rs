//! The `#[wasm_bindgen]` layer: what the pages' scripts can call.
//!
//! Kept thin on purpose. Each method forwards to the plain-Rust simulations in
//! [`breaker`](crate::breaker) and [`saga`](mod@crate::saga) and hands results
//! to JavaScript as JSON strings: one `JSON.parse` per frame is cheaper in code size than
//! a generated binding per field, and the JSON is exactly the serde form the labs log.

use wasm_bindgen::prelude::*;

use crate::breaker::settings::{FAILURE_PERCENT, RATE};
use crate::breaker::{Action, BreakerSettings, BreakerSim, Downstream};
use crate::saga::{self, SagaSettings};
use crate::settings::Settings;

/// The circuit-breaker playground: a breaker, a simulated downstream and a virtual clock.
#[wasm_bindgen]
pub struct BreakerPlayground {
    sim: BreakerSim,
}

#[wasm_bindgen]
impl BreakerPlayground {
    /// Builds the scenario a query string describes (settings, actions, clock); an empty
    /// string gives the defaults at time 0.
    #[wasm_bindgen(constructor)]
    pub fn new(query: &str) -> BreakerPlayground {
        BreakerPlayground {
            sim: BreakerSim::from_query(query),
        }
    }

    /// Sends one call now.
    pub fn send_one(&mut self) {
        self.sim.apply(Action::SendOne);
    }

    /// Sends a burst of calls (the `burst` setting) at this instant.
    pub fn send_burst(&mut self) {
        self.sim.apply(Action::Burst);
    }

    /// Starts or stops steady traffic.
    pub fn set_steady(&mut self, on: bool) {
        self.sim.apply(Action::Steady(on));
    }

    /// Sets steady traffic's calls per second (1–200; others are ignored).
    pub fn set_rate(&mut self, rate: u32) {
        if RATE.admits(rate.into()) {
            self.sim.apply(Action::Rate(rate));
        }
    }

    /// Sets the downstream's behaviour: `healthy`, `failing` or `slow` (others are ignored).
    pub fn set_downstream(&mut self, mode: &str) {
        if let Some(mode) = Downstream::parse(mode) {
            self.sim.apply(Action::Downstream(mode));
        }
    }

    /// Sets the failing downstream's share of failures, in percent (0–100).
    pub fn set_failure_percent(&mut self, percent: u32) {
        if FAILURE_PERCENT.admits(percent.into()) {
            self.sim.apply(Action::FailurePercent(percent));
        }
    }

    /// Operator: holds the breaker open (ForcedOpen) until back to normal.
    pub fn force_open(&mut self) {
        self.sim.apply(Action::ForceOpen);
    }

    /// Operator: switches the breaker off (Disabled): every call goes through, nothing is
    /// recorded, until back to normal.
    pub fn disable(&mut self) {
        self.sim.apply(Action::Disable);
    }

    /// Operator: back to normal, the core's reset: a fresh Closed with an empty window.
    pub fn reset_breaker(&mut self) {
        self.sim.apply(Action::Reset);
    }

    /// Moves the virtual clock forward by `ms` (negative or NaN moves nothing).
    pub fn advance(&mut self, ms: f64) {
        if ms.is_finite() && ms >= 1.0 {
            self.sim.advance(ms as u64);
        }
    }

    /// Jumps to the next thing that happens (a reply, a deadline, a steady call).
    pub fn step(&mut self) {
        self.sim.step();
    }

    /// The virtual clock, in ms.
    pub fn now(&self) -> f64 {
        self.sim.now() as f64
    }

    /// The breaker's state: `closed`, `open`, `half-open`, `forced-open`, `disabled`.
    pub fn state(&self) -> String {
        self.sim.breaker().state().name().to_string()
    }

    /// What changed since the last call (marks, transitions, rates, log) and the current
    /// state and metrics, as JSON.
    pub fn frame(&mut self) -> String {
        serde_json::to_string(&self.sim.take_frame()).unwrap_or_default()
    }

    /// The scenario as a query string, for the page's URL.
    pub fn query(&self) -> String {
        self.sim.query()
    }

    /// The current settings as a JSON object keyed by form field name.
    pub fn settings(&self) -> String {
        settings_json(self.sim.settings().pairs())
    }

    /// The default settings, keyed by form field name (for the page's reset).
    pub fn defaults() -> String {
        settings_json(BreakerSettings::default().pairs())
    }
}

/// The saga playground: one run of the order-fulfilment saga, computed up front.
#[wasm_bindgen]
pub struct SagaPlayground {
    settings: SagaSettings,
    run: String,
}

#[wasm_bindgen]
impl SagaPlayground {
    /// Runs the saga the query string describes (`mode`, `fail`, `cfail`, `crash`).
    #[wasm_bindgen(constructor)]
    pub fn new(query: &str) -> SagaPlayground {
        let settings = SagaSettings::from_query(query);
        let run = serde_json::to_string(&saga::run(settings.clone())).unwrap_or_default();
        SagaPlayground { settings, run }
    }

    /// The run as JSON: lanes, and messages with their log entries and balances.
    pub fn run(&self) -> String {
        self.run.clone()
    }

    /// The settings as a query string, for the page's URL.
    pub fn query(&self) -> String {
        crate::query::to_query(self.settings.pairs())
    }

    /// The settings as a JSON object keyed by form field name.
    pub fn settings(&self) -> String {
        settings_json(self.settings.pairs())
    }
}

fn settings_json(pairs: Vec<(&'static str, String)>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), serde_json::Value::String(value)))
        .collect();
    serde_json::Value::Object(map).to_string()
}
