//! The demo's plain output (no terminal, so no colours): the flow's waterfall with the
//! critical path, tail sampling's verdicts with their reasons, and the skew correction.

use lab_runtime::{Narrator, Palette};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tells_its_story_in_plain_text() {
    let mut out = Vec::new();
    lab_tracing::demo::run(&mut out, Narrator::new(Palette::for_stream(false)))
        .await
        .expect("the demo runs");
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes on a pipe:\n{text}"
    );
    for expected in [
        "7 spans in trace",
        "product GET /products/{id}",
        "◆",
        "collector: kept: sampled by ratio",
        "dropped: not sampled by ratio",
        "product slow (200 ms)  200",
        "kept: slow",
        "product failing        502",
        "kept: a span failed",
        "product started before its caller: shifted by +",
        "waterfall page: http://127.0.0.1:",
    ] {
        assert!(
            text.contains(expected),
            "the demo says {expected:?}:\n{text}"
        );
    }
    // Which call is on the critical path depends on the services' real timings (20 against
    // 50 ms); `end_to_end.rs` checks it with latencies a loaded machine cannot reorder.
    assert!(
        text.lines().any(|l| l.contains('|') && l.ends_with('◆')),
        "the waterfall marks a critical path:\n{text}"
    );
}
