//! The JavaScript-facing API, tested where it runs: compiled to WASM and called through
//! wasm-bindgen under Node (`cargo xtask test` runs these with `wasm-bindgen-test-runner`).
//!
//! The pages only ever see JSON strings and a few numbers, so these tests read the bindings
//! the same way: through the JSON, checking the fields the pages' scripts depend on.
#![allow(clippy::unwrap_used)]

use playground::{BreakerPlayground, SagaPlayground, failure_rate_percent};
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("the bindings hand out valid JSON")
}

#[wasm_bindgen_test]
fn the_pipeline_check_function_still_answers() {
    assert_eq!(failure_rate_percent(1, 4), Some(25.0));
}

#[wasm_bindgen_test]
fn a_failing_downstream_opens_the_breaker_and_the_frame_says_so() {
    let mut playground = BreakerPlayground::new("down=failing&pct=100");
    for _ in 0..5 {
        playground.send_one();
        playground.advance(100.0);
    }
    playground.send_one();
    assert_eq!(playground.state(), "open");
    let frame = json(&playground.frame());
    assert_eq!(frame["state"], "open");
    assert_eq!(frame["metrics"]["failure_rate"], 100.0);
    let kinds: Vec<&str> = frame["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mark| mark["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"failure") && kinds.contains(&"rejected"),
        "{kinds:?}"
    );
    assert!(
        frame["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line["kind"] == "state_transition"),
        "{frame}"
    );
    // A frame hands out news once: the next one is empty.
    assert_eq!(
        json(&playground.frame())["marks"].as_array().unwrap().len(),
        0
    );
}

#[wasm_bindgen_test]
fn stepping_the_clock_reaches_half_open() {
    let mut playground = BreakerPlayground::new("down=failing&pct=100&wait=2000");
    playground.send_burst();
    playground.advance(300.0);
    assert_eq!(playground.state(), "open");
    playground.step();
    assert_eq!(playground.state(), "half-open");
}

#[wasm_bindgen_test]
fn the_query_rebuilds_the_same_scenario_and_its_controls() {
    let mut playground = BreakerPlayground::new("seed=9&rate=20");
    playground.set_steady(true);
    playground.advance(1500.0);
    playground.set_downstream("failing");
    playground.advance(1500.0);
    let query = playground.query();
    let mut again = BreakerPlayground::new(&query);
    assert_eq!(again.now(), 3000.0);
    assert_eq!(json(&again.settings())["down"], "failing");
    assert_eq!(json(&again.settings())["steady"], "1");
    assert_eq!(
        json(&again.frame())["totals"],
        json(&playground.frame())["totals"]
    );
    // Garbage is ignored rather than trusted.
    playground.set_downstream("on-fire");
    playground.set_rate(0);
    assert_eq!(playground.query(), query);
}

#[wasm_bindgen_test]
fn the_operator_forces_open_disables_and_brings_the_breaker_back() {
    let mut playground = BreakerPlayground::new("");
    playground.force_open();
    assert_eq!(playground.state(), "forced-open");
    playground.send_burst();
    let frame = json(&playground.frame());
    assert_eq!(frame["state"], "forced_open");
    assert_eq!(frame["transitions"][0]["to"], "forced_open");
    assert_eq!(frame["totals"]["rejected"], 10);
    assert_eq!(frame["totals"]["admitted"], 0);

    playground.advance(1000.0);
    playground.disable();
    playground.send_one();
    let frame = json(&playground.frame());
    assert_eq!(frame["state"], "disabled");
    assert_eq!(frame["totals"]["admitted"], 1);

    playground.advance(1000.0);
    playground.reset_breaker();
    assert_eq!(playground.state(), "closed");
    let frame = json(&playground.frame());
    assert_eq!(frame["transitions"][0]["from"], "disabled");
    assert_eq!(frame["transitions"][0]["to"], "closed");

    // The link replays the operator's actions at their times.
    let query = playground.query();
    assert!(query.contains("do=f.0_b.0_x.1000_1.1000_n.2000"), "{query}");
    let totals = json(&playground.frame())["totals"].clone();
    assert_eq!(totals["rejected"], 10);
    let mut again = BreakerPlayground::new(&query);
    assert_eq!(again.state(), "closed");
    assert_eq!(json(&again.frame())["totals"], totals);
}

#[wasm_bindgen_test]
fn the_saga_compensates_in_reverse_order() {
    let saga = SagaPlayground::new("fail=inventory");
    let run = json(&saga.run());
    let compensations: Vec<&str> = run["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["kind"] == "compensation")
        .map(|message| message["op"].as_str().unwrap())
        .collect();
    assert_eq!(compensations, ["refund", "cancel"]);
    let last = run["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["balances"]["order_status"], "CANCELLED");
    assert_eq!(last["balances"]["money_held"], 0);
    assert_eq!(last["balances"]["stock_reserved"], 0);
    assert_eq!(run["outcome"], "compensated");
    assert_eq!(json(&saga.settings())["fail"], "inventory");
    assert!(saga.query().contains("fail=inventory"));
}
