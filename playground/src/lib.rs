//! The playground: pattern cores exposed to the book's pages through wasm-bindgen.
//!
//! Everything a page shows is computed here by the same core crates the labs run,
//! so what the reader plays with is exactly what the tests check. The page's scripts
//! (`playground/web/*.js`) only draw: they press buttons, move the clock and render
//! the frames these types hand back as JSON.
//!
//! - [`breaker`] and [`saga`]: the simulated worlds around each core (a clock, a downstream,
//!   participants), plain Rust, tested on the host; each is split the same way into its
//!   settings, its simulation, the view the page draws, and its wording;
//! - [`settings`]: the settings of both, declared as tables of named, bounded fields with
//!   their keys in the URL;
//! - [`query`]: the `key=value` reader and writer under the settings and scenarios;
//! - [`bindings`]: the thin `#[wasm_bindgen]` layer the pages call.

pub mod bindings;
pub mod breaker;
pub mod query;
pub mod saga;
pub mod settings;

pub use bindings::{BreakerPlayground, SagaPlayground};

use wasm_bindgen::prelude::*;

/// The failure rate, in percent, that a breaker with `failures` failed calls out of
/// `calls` recorded calls would compare against its threshold.
///
/// The pipeline check on the playground page calls this to prove the WASM module
/// loaded and runs; `None` (returned to JS as `undefined`) when no call was recorded.
#[wasm_bindgen]
pub fn failure_rate_percent(failures: u32, calls: u32) -> Option<f64> {
    (calls > 0).then(|| f64::from(failures.min(calls)) * 100.0 / f64::from(calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_rate_is_share_of_failed_calls() {
        assert_eq!(failure_rate_percent(1, 4), Some(25.0));
        assert_eq!(failure_rate_percent(0, 0), None);
        assert_eq!(failure_rate_percent(9, 3), Some(100.0));
    }
}
