//! Browser test of the tracing chapter's waterfall: headless Chromium opens the built chapter
//! and checks that the trace the lab captured (`book/src/challenges/tracing-trace.json`) is
//! drawn and can be read with a mouse and with the keyboard alone:
//!
//! - one row per span of the snapshot, in its order, indented by depth, with an axis of ticks;
//! - the critical path's rows, and only they, carry the highlight class;
//! - hovering a row, focusing it, Tab and the arrow keys show that span's attributes in the panel;
//! - the drawing is accessible (a list of labelled, focusable rows, a live panel) and takes its
//!   colours from the book's theme, light and dark;
//! - the page logs no JavaScript errors.
//!
//! As in the playground tests, one `#[test]` runs every check on one browser and reports each
//! failing check by name; screenshots go to `target/screenshots/tracing-waterfall-*.png`.
#![allow(clippy::unwrap_used)]

use book_tests::browser::{Browser, POLL_ATTEMPTS, poll_until};
use book_tests::paths::{book_dir, book_src_dir, screenshots_dir};
use fantoccini::Locator;
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::key::Key;
use serde_json::{Value, json};

const PAGE: &str = "challenges/distributed-tracing.html";

type Check = Result<(), String>;

/// The trace the book embeds, as the lab's test wrote it.
fn snapshot() -> Value {
    let path = book_src_dir().join("challenges/tracing-trace.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the trace snapshot {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the snapshot is JSON")
}

fn spans(trace: &Value) -> &[Value] {
    trace["spans"].as_array().map_or(&[], Vec::as_slice)
}

async fn js(browser: &Browser, script: &str) -> Result<Value, String> {
    browser.run(script).await.map_err(|error| error.to_string())
}

/// Opens the chapter and waits until the waterfall says it is drawn.
async fn open_drawn(browser: &Browser) -> Check {
    browser.open(PAGE).await.map_err(|e| e.to_string())?;
    if let Some(unfinished) = browser
        .wait_until_settled()
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!("{PAGE} never settled: {unfinished}"));
    }
    let status = js(
        browser,
        "const r = document.querySelector('[data-waterfall]');
         return r ? r.dataset.status : 'missing';",
    )
    .await?;
    if status != "ready" {
        return Err(format!("the waterfall's status is {status}, not ready"));
    }
    js(
        browser,
        "document.querySelector('[data-waterfall]').scrollIntoView({block: 'start'}); return 0;",
    )
    .await?;
    Ok(())
}

/// What the panel shows: the span id it is about, and its rows as `key=value`.
const PANEL: &str = "const p = document.querySelector('[data-waterfall] .wf-panel');
    return { id: p.dataset.spanId || '',
             rows: Array.from(p.querySelectorAll('tr')).map((r) =>
               r.querySelector('th').textContent + '=' + r.querySelector('td').textContent) };";

fn panel_rows(seen: &Value) -> Vec<String> {
    seen["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The panel shows `span` (by the snapshot): its id and every one of its attributes.
async fn panel_shows(browser: &Browser, span: &Value, how: &str) -> Check {
    let want = span["span_id"].clone();
    let shown = poll_until(POLL_ATTEMPTS, || async {
        let seen = browser.run(PANEL).await?;
        Ok((seen["id"] == want).then_some(seen))
    })
    .await
    .map_err(|e| e.to_string())?;
    let Some(seen) = shown else {
        let seen = js(browser, PANEL).await?;
        return Err(format!(
            "after {how}, the panel shows span {}, not {want} ({} {})",
            seen["id"], span["service"], span["name"]
        ));
    };
    let rows = panel_rows(&seen);
    let missing: Vec<String> = span["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pair| {
            format!(
                "{}={}",
                pair[0].as_str().unwrap(),
                pair[1].as_str().unwrap()
            )
        })
        .filter(|attribute| !rows.contains(attribute))
        .collect();
    if missing.is_empty() && !rows.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "after {how}, the panel lacks {missing:?} of span {want}; it shows {rows:?}"
        ))
    }
}

async fn the_spans_are_drawn(browser: &Browser, trace: &Value) -> Check {
    open_drawn(browser).await?;
    let rows = js(
        browser,
        "const r = document.querySelector('[data-waterfall]');
         return { rows: Array.from(r.querySelectorAll('.wf-row')).map((g) => ({
                    id: g.dataset.spanId,
                    label: g.querySelector('.wf-label').textContent,
                    x: +g.querySelector('.wf-label').getAttribute('x'),
                    bar: +g.querySelector('.wf-bar').getAttribute('width') })),
                  ticks: r.querySelectorAll('.wf-axis .wf-tick').length };",
    )
    .await?;
    let drawn = rows["rows"].as_array().cloned().unwrap_or_default();
    let expected = spans(trace);
    if drawn.len() != expected.len() {
        return Err(format!(
            "{} rows drawn for the snapshot's {} spans: {drawn:?}",
            drawn.len(),
            expected.len()
        ));
    }
    let mut problems = Vec::new();
    for (row, span) in drawn.iter().zip(expected) {
        let label = row["label"].as_str().unwrap_or_default();
        let (service, name) = (
            span["service"].as_str().unwrap(),
            span["name"].as_str().unwrap(),
        );
        if row["id"] != span["span_id"] || !label.starts_with(&format!("{service} {name}")) {
            problems.push(format!(
                "row {row} drawn where span {service} {name} belongs"
            ));
        }
        if row["bar"].as_f64().unwrap_or(0.0) <= 0.0 {
            problems.push(format!("row {row} has no bar"));
        }
    }
    let indents: Vec<f64> = drawn.iter().map(|r| r["x"].as_f64().unwrap()).collect();
    for (i, span) in expected.iter().enumerate() {
        for (j, other) in expected.iter().enumerate() {
            if span["depth"].as_u64() < other["depth"].as_u64() && indents[i] >= indents[j] {
                problems.push(format!(
                    "row {i} (depth {}) is not left of row {j} (depth {})",
                    span["depth"], other["depth"]
                ));
            }
        }
    }
    if rows["ticks"].as_u64().unwrap_or(0) < 2 {
        problems.push(format!("the time axis has {} ticks", rows["ticks"]));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

async fn the_critical_path_is_highlighted(browser: &Browser, trace: &Value) -> Check {
    let highlighted = js(
        browser,
        "return Array.from(document.querySelectorAll('[data-waterfall] .wf-row'))
             .map((g) => g.classList.contains('wf-critical'));",
    )
    .await?;
    let expected: Vec<Value> = spans(trace).iter().map(|s| s["critical"].clone()).collect();
    if highlighted != json!(expected) {
        return Err(format!(
            "rows with the critical-path class {highlighted}, the snapshot's critical path {expected:?}"
        ));
    }
    let colours = js(
        browser,
        "const bars = Array.from(document.querySelectorAll('[data-waterfall] .wf-row .wf-bar'));
         return [...new Set(bars.map((b) => getComputedStyle(b).fill))].length;",
    )
    .await?;
    if colours.as_u64() < Some(2) {
        return Err(format!(
            "critical and other bars are drawn in {colours} colour(s): the highlight is not visible"
        ));
    }
    Ok(())
}

async fn a_row_shows_its_attributes_on_hover_and_focus(browser: &Browser, trace: &Value) -> Check {
    let spans = spans(trace);
    // Hover over the fourth row (a call the order service makes).
    let rows = browser
        .client()
        .find_all(Locator::Css("[data-waterfall] .wf-row"))
        .await
        .map_err(|e| e.to_string())?;
    let hovered = rows.get(3).ok_or("fewer than four rows")?.clone();
    browser
        .client()
        .perform_actions(
            MouseActions::new("mouse".to_owned()).then(PointerAction::MoveToElement {
                element: hovered,
                duration: None,
                x: 0.0,
                y: 0.0,
            }),
        )
        .await
        .map_err(|e| format!("moving the mouse over row 4: {e}"))?;
    panel_shows(browser, &spans[3], "hovering over row 4").await?;
    // The keyboard: focus the first row, Tab to the second, arrow down to the third.
    js(
        browser,
        "document.querySelector('[data-waterfall] .wf-row').focus(); return 0;",
    )
    .await?;
    panel_shows(browser, &spans[0], "focusing row 1").await?;
    let key = |key: Key| async move {
        let focused = browser
            .client()
            .active_element()
            .await
            .map_err(|e| e.to_string())?;
        focused
            .send_keys(&key.to_string())
            .await
            .map_err(|e| format!("pressing {key:?}: {e}"))
    };
    key(Key::Tab).await?;
    panel_shows(browser, &spans[1], "Tab from row 1").await?;
    key(Key::Down).await?;
    panel_shows(browser, &spans[2], "ArrowDown from row 2").await?;
    key(Key::End).await?;
    panel_shows(browser, &spans[spans.len() - 1], "End").await?;
    let focused = js(
        browser,
        "const a = document.activeElement;
         return a && a.classList.contains('wf-row') ? a.dataset.spanId : null;",
    )
    .await?;
    if focused != spans[spans.len() - 1]["span_id"] {
        return Err(format!(
            "after End the focus is on {focused}, not the last row"
        ));
    }
    Ok(())
}

async fn the_waterfall_is_accessible(browser: &Browser) -> Check {
    let seen = js(
        browser,
        "const r = document.querySelector('[data-waterfall]');
         const svg = r.querySelector('svg');
         const rows = Array.from(r.querySelectorAll('.wf-row'));
         const panel = r.querySelector('.wf-panel');
         return { svg: svg.getAttribute('role'), svgLabel: !!svg.getAttribute('aria-label'),
                  rows: rows.every((g) => g.getAttribute('role') === 'listitem'
                                     && g.getAttribute('tabindex') === '0'
                                     && (g.getAttribute('aria-label') || '').length > 10),
                  live: panel.getAttribute('aria-live'), panelLabel: !!panel.getAttribute('aria-label') };",
    )
    .await?;
    let expected = json!({ "svg": "list", "svgLabel": true, "rows": true, "live": "polite", "panelLabel": true });
    if seen == expected {
        Ok(())
    } else {
        Err(format!("roles and labels {seen}, expected {expected}"))
    }
}

/// Saves the window, scrolled to the waterfall with its first row focused, as
/// `target/screenshots/<name>.png` for a person to look at.
async fn screenshot(browser: &Browser, name: &str) -> Check {
    js(
        browser,
        "const r = document.querySelector('[data-waterfall]');
         r.scrollIntoView({block: 'start'}); window.scrollBy(0, -60);
         r.querySelectorAll('.wf-row')[5].focus({preventScroll: true}); return 0;",
    )
    .await?;
    let png = browser
        .client()
        .screenshot()
        .await
        .map_err(|e| e.to_string())?;
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).map_err(|e| e.to_string())?;
    println!("screenshot: {}", path.display());
    Ok(())
}

/// The labels' colour and the theme's `--fg`, resolved the same way.
async fn colours(browser: &Browser) -> Result<Value, String> {
    js(
        browser,
        "const probe = document.createElement('span'); probe.style.color = 'var(--fg)';
         document.body.append(probe); const fg = getComputedStyle(probe).color; probe.remove();
         const label = document.querySelector('[data-waterfall] .wf-label');
         return { fg, label: getComputedStyle(label).fill };",
    )
    .await
}

async fn the_waterfall_follows_the_theme(browser: &Browser) -> Check {
    let mut seen = Vec::new();
    for theme in ["light", "coal"] {
        browser.use_theme(theme).await.map_err(|e| e.to_string())?;
        open_drawn(browser).await?;
        let colours = colours(browser).await?;
        if colours["fg"] != colours["label"] {
            return Err(format!(
                "in {theme}, the labels are {} but the theme's text is {}",
                colours["label"], colours["fg"]
            ));
        }
        screenshot(browser, &format!("tracing-waterfall-{theme}")).await?;
        seen.push(colours["label"].clone());
    }
    browser
        .use_theme("light")
        .await
        .map_err(|e| e.to_string())?;
    if seen[0] == seen[1] {
        return Err(format!("the labels are {} in light and in coal", seen[0]));
    }
    Ok(())
}

async fn no_js_errors(browser: &Browser) -> Check {
    match browser.js_errors().await.map_err(|e| e.to_string())? {
        Some(errors) if errors.is_empty() => Ok(()),
        Some(errors) => Err(format!(
            "{PAGE} logged JS errors:\n  {}",
            errors.join("\n  ")
        )),
        None => Err(format!("{PAGE}: the error recorder is missing")),
    }
}

#[test]
fn the_tracing_chapter_draws_the_labs_trace_as_an_interactive_waterfall() {
    let trace = snapshot();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let book = book_dir().expect("the built book (run `cargo xtask book`)");
        let browser = Browser::launch(&book).await.expect("a browser session");
        let mut failures = Vec::new();
        for (name, outcome) in [
            (
                "the_spans_are_drawn",
                the_spans_are_drawn(&browser, &trace).await,
            ),
            (
                "the_critical_path_is_highlighted",
                the_critical_path_is_highlighted(&browser, &trace).await,
            ),
            (
                "a_row_shows_its_attributes_on_hover_and_focus",
                a_row_shows_its_attributes_on_hover_and_focus(&browser, &trace).await,
            ),
            (
                "the_waterfall_is_accessible",
                the_waterfall_is_accessible(&browser).await,
            ),
            ("no_js_errors", no_js_errors(&browser).await),
            (
                "the_waterfall_follows_the_theme",
                the_waterfall_follows_the_theme(&browser).await,
            ),
        ] {
            match outcome {
                Ok(()) => println!("ok: {name}"),
                Err(error) => failures.push(format!("{name}: {error}")),
            }
        }
        if let Err(error) = browser.shutdown().await {
            eprintln!("closing the browser session failed: {error}");
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    });
}
