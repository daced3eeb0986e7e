//! The playground: pattern cores exposed to the book's pages through wasm-bindgen.
//!
//! Everything a page shows is computed here by the same core crates the labs run,
//! so what the reader plays with is exactly what the tests check.

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
