//! Browser tests of the two playgrounds: headless Chromium clicks through the built pages the
//! way a reader would and checks what the WASM cores made of it.
//!
//! - the breaker page: a failing downstream trips the breaker to Open, later calls show up as
//!   rejections on the timeline, and moving the clock past the wait gives HalfOpen;
//! - the breaker's operator controls: Force open lights ForcedOpen on the diagram and rejects
//!   calls to a healthy downstream, Disable toggles, Back to normal (pressed from the keyboard)
//!   gives Closed again, and the diagram's nodes and labels do not overlap;
//! - the saga page: a failure at inventory compensates in reverse order (refund the payment,
//!   then cancel the order) and leaves the balances as they were;
//! - a shared-scenario URL restores every control, on both pages;
//! - the pages have no JavaScript errors, and fit a phone-width window.
//!
//! Starting Chromium is the slow part, so one `#[test]` runs every check on one browser, in
//! order, and reports each failing check by name. Screenshots go to
//! `target/screenshots/playground-*.png` for a person to look at (they are not committed).
//! Waits poll a condition a bounded number of times; time itself is never asserted, so the
//! start-up time the pages record is printed, not checked.
#![allow(clippy::unwrap_used)]

use book_tests::browser::{Browser, POLL_ATTEMPTS, poll_until};
use book_tests::paths::book_dir;
use fantoccini::Locator;
use serde_json::{Value, json};

const BREAKER_PAGE: &str = "playground/breaker.html";
const SAGA_PAGE: &str = "playground/saga.html";

type Check = Result<(), String>;

/// Runs `script` (which must `return` something) and gives back its value.
async fn js(browser: &Browser, script: &str) -> Result<Value, String> {
    browser.run(script).await.map_err(|error| error.to_string())
}

/// Clicks the first element matching `css`, after scrolling it to the middle of the window
/// (mdBook's menu bar sticks to the top and would otherwise take a click meant for it).
async fn click(browser: &Browser, css: &str) -> Check {
    browser
        .client()
        .execute(
            "document.querySelector(arguments[0])?.scrollIntoView({block: 'center'});",
            vec![json!(css)],
        )
        .await
        .map_err(|error| error.to_string())?;
    let element = browser
        .client()
        .find(Locator::Css(css))
        .await
        .map_err(|error| format!("no element {css}: {error}"))?;
    element
        .click()
        .await
        .map_err(|error| format!("clicking {css}: {error}"))
}

/// Picks `value` in the select matching `css`, as a reader would.
async fn choose(browser: &Browser, css: &str, value: &str) -> Check {
    let element = browser
        .client()
        .find(Locator::Css(css))
        .await
        .map_err(|error| format!("no element {css}: {error}"))?;
    element
        .select_by_value(value)
        .await
        .map_err(|error| format!("choosing {value} in {css}: {error}"))
}

/// Opens a page and waits until its playground says it is ready.
async fn open_ready(browser: &Browser, page: &str) -> Check {
    browser
        .open(page)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(unfinished) = browser
        .wait_until_settled()
        .await
        .map_err(|error| error.to_string())?
    {
        return Err(format!("{page} never settled: {unfinished}"));
    }
    let status = js(
        browser,
        "const r = document.querySelector('[data-playground]');
         return r ? [r.dataset.status, r.dataset.readyAt || '', r.dataset.startupMs || '']
                  : ['missing', '', ''];",
    )
    .await?;
    if status[0] != "ready" {
        return Err(format!("{page}: the playground's status is {}", status[0]));
    }
    println!(
        "{page}: playground ready {} ms after navigation started ({} ms after its script ran)",
        status[1].as_str().unwrap_or("?"),
        status[2].as_str().unwrap_or("?")
    );
    Ok(())
}

/// Fails with the page's recorded JS errors, if any.
async fn no_js_errors(browser: &Browser, page: &str) -> Check {
    match browser
        .js_errors()
        .await
        .map_err(|error| error.to_string())?
    {
        Some(errors) if errors.is_empty() => Ok(()),
        Some(errors) => Err(format!(
            "{page} logged JS errors:\n  {}",
            errors.join("\n  ")
        )),
        None => Err(format!("{page}: the error recorder is missing")),
    }
}

/// The breaker's state as the page shows it.
async fn breaker_state(browser: &Browser) -> Result<String, String> {
    Ok(js(
        browser,
        "return document.querySelector('.pg-state').textContent;",
    )
    .await?
    .as_str()
    .unwrap_or_default()
    .to_string())
}

/// Presses `button` until the page shows `state`, at most `presses` times.
async fn press_until_state(browser: &Browser, button: &str, state: &str, presses: u32) -> Check {
    for _ in 0..presses {
        if breaker_state(browser).await? == state {
            return Ok(());
        }
        click(browser, button).await?;
    }
    let seen = breaker_state(browser).await?;
    if seen == state {
        Ok(())
    } else {
        Err(format!(
            "after {presses} presses of {button} the state reads {seen}, not {state}"
        ))
    }
}

async fn screenshot(browser: &Browser, name: &str, scroll_to: &str) -> Check {
    browser
        .client()
        .execute(
            "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'start'});",
            vec![json!(scroll_to)],
        )
        .await
        .map_err(|error| error.to_string())?;
    let path = browser
        .save_screenshot(name)
        .await
        .map_err(|error| error.to_string())?;
    println!("screenshot: {}", path.display());
    Ok(())
}

async fn breaker_opens_then_half_opens(browser: &Browser) -> Check {
    open_ready(browser, BREAKER_PAGE).await?;
    if breaker_state(browser).await? != "Closed" {
        return Err("a fresh breaker should read Closed".into());
    }
    choose(browser, "select[name=down]", "failing").await?;
    // Send a call, let the clock reach its reply, repeat: the failure rate climbs.
    for _ in 0..40 {
        if breaker_state(browser).await? == "Open" {
            break;
        }
        click(browser, "[data-act=one]").await?;
        click(browser, "[data-act=step]").await?;
    }
    let state = breaker_state(browser).await?;
    if state != "Open" {
        return Err(format!(
            "a failing downstream should open the breaker, the page reads {state}"
        ));
    }
    let lit = js(
        browser,
        "return document.querySelector('.pg-node.lit')?.dataset.node;",
    )
    .await?;
    if lit != "open" {
        return Err(format!(
            "the state diagram should light Open, it lights {lit}"
        ));
    }
    // Calls while Open are refused and drawn as rejections.
    click(browser, "[data-act=burst]").await?;
    let rejected = js(
        browser,
        "return document.querySelectorAll('svg.pg-timeline .mark-rejected').length;",
    )
    .await?;
    if rejected.as_u64().unwrap_or(0) == 0 {
        return Err("the timeline shows no rejected calls while the breaker is Open".into());
    }
    let counted = js(
        browser,
        "return document.querySelector('[data-metric=rejected_calls]').textContent;",
    )
    .await?;
    if counted.as_str().unwrap_or("0") == "0" {
        return Err(format!("the counters report {counted} rejected calls"));
    }
    screenshot(browser, "playground-breaker-open", ".pg-views").await?;
    // The wait in Open is 5 s by default; +1 s at a time gets past it.
    press_until_state(browser, "[data-act=plus]", "HalfOpen", 10).await?;
    screenshot(browser, "playground-breaker", ".pg-views").await?;
    no_js_errors(browser, BREAKER_PAGE).await
}

/// Waits until the page shows `state` (the clicks are handled at once; this only makes the
/// check independent of when the page redraws).
async fn wait_for_state(browser: &Browser, state: &str) -> Check {
    let seen = poll_until(POLL_ATTEMPTS, || async {
        let now = breaker_state(browser)
            .await
            .map_err(book_tests::BookTestError::Chromedriver)?;
        Ok((now == state).then_some(()))
    })
    .await
    .map_err(|error| error.to_string())?;
    match seen {
        Some(()) => Ok(()),
        None => Err(format!(
            "the page never read {state}; it reads {}",
            breaker_state(browser).await?
        )),
    }
}

/// Which nodes of the state diagram are lit, and whether each operator button is pressed.
async fn diagram_and_buttons(browser: &Browser) -> Result<Value, String> {
    js(
        browser,
        "const r = document.querySelector('[data-playground=breaker]');
         const pressed = (act) => r.querySelector(`[data-act=${act}]`).getAttribute('aria-pressed');
         return { lit: Array.from(r.querySelectorAll('.pg-node.lit'), n => n.dataset.node),
                  force: pressed('force'), disable: pressed('disable') };",
    )
    .await
}

async fn breaker_operator_forces_open_and_back(browser: &Browser) -> Check {
    open_ready(browser, BREAKER_PAGE).await?;
    // Real buttons a keyboard reaches, and a diagram whose nodes and labels do not overlap.
    let layout = js(
        browser,
        "const r = document.querySelector('[data-playground=breaker]');
         const buttons = ['force', 'disable', 'normal'].map(act => {
           const b = r.querySelector(`[data-act=${act}]`);
           if (!b) return `${act}: missing`;
           b.focus();
           return b.tagName === 'BUTTON' && !b.disabled && document.activeElement === b
             ? 'ok' : `${act}: not a focusable button`;
         });
         const nodes = Array.from(r.querySelectorAll('.pg-node'), n => n.dataset.node);
         const boxes = Array.from(
           r.querySelectorAll('.pg-diagram .pg-node rect, .pg-diagram .pg-edge-labels text'),
           e => [e.tagName === 'rect' ? e.parentElement.dataset.node : e.textContent,
                 e.getBoundingClientRect()]);
         const overlaps = [];
         boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
           if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom)
             overlaps.push(`${a} / ${b}`);
         }));
         return { buttons, nodes, overlaps };",
    )
    .await?;
    let expected = json!({
        "buttons": ["ok", "ok", "ok"],
        "nodes": ["closed", "open", "half_open", "forced_open", "disabled"],
        "overlaps": []
    });
    if layout != expected {
        return Err(format!(
            "operator buttons and diagram should be {expected}, the page has {layout}"
        ));
    }

    // The downstream is healthy: only the operator can make the breaker reject calls.
    click(browser, "[data-act=force]").await?;
    wait_for_state(browser, "ForcedOpen").await?;
    let shown = diagram_and_buttons(browser).await?;
    let expected = json!({ "lit": ["forced_open"], "force": "true", "disable": "false" });
    if shown != expected {
        return Err(format!(
            "after Force open the page should show {expected}, it shows {shown}"
        ));
    }
    click(browser, "[data-act=burst]").await?;
    let after_burst = js(
        browser,
        "const r = document.querySelector('[data-playground=breaker]');
         return { rejected_marks: r.querySelectorAll('svg.pg-timeline .mark-rejected').length,
                  totals: r.querySelector('[data-metric=totals]').textContent,
                  bands: r.querySelectorAll('svg.pg-timeline .band-forced_open').length,
                  said: r.querySelector('.pg-sr').textContent.includes('ForcedOpen'),
                  url: location.search.includes('do=f.0') };",
    )
    .await?;
    let expected = json!({
        "rejected_marks": 10, "totals": "10 / 0 / 0", "bands": 1, "said": true, "url": true
    });
    if after_burst != expected {
        return Err(format!(
            "a burst while ForcedOpen should be all rejected ({expected}), the page shows {after_burst}"
        ));
    }
    screenshot(browser, "playground-breaker-forced-open", ".pg-views").await?;

    // Disable is a toggle too: pressed twice, the breaker is back to Closed.
    click(browser, "[data-act=disable]").await?;
    wait_for_state(browser, "Disabled").await?;
    let shown = diagram_and_buttons(browser).await?;
    let expected = json!({ "lit": ["disabled"], "force": "false", "disable": "true" });
    if shown != expected {
        return Err(format!(
            "after Disable the page should show {expected}, it shows {shown}"
        ));
    }
    click(browser, "[data-act=disable]").await?;
    wait_for_state(browser, "Closed").await?;

    // Back to normal, pressed from the keyboard, after forcing open once more.
    click(browser, "[data-act=force]").await?;
    wait_for_state(browser, "ForcedOpen").await?;
    browser
        .client()
        .find(Locator::Css("[data-act=normal]"))
        .await
        .map_err(|error| format!("no Back to normal button: {error}"))?
        .send_keys("\u{e007}")
        .await
        .map_err(|error| format!("pressing Enter on Back to normal: {error}"))?;
    wait_for_state(browser, "Closed").await?;
    let shown = diagram_and_buttons(browser).await?;
    let expected = json!({ "lit": ["closed"], "force": "false", "disable": "false" });
    if shown != expected {
        return Err(format!(
            "after Back to normal the page should show {expected}, it shows {shown}"
        ));
    }
    // Closed admits calls again: one more call is sent and admitted.
    click(browser, "[data-act=one]").await?;
    let totals = js(
        browser,
        "return document.querySelector('[data-metric=totals]').textContent;",
    )
    .await?;
    if totals != "11 / 1 / 0" {
        return Err(format!(
            "back to normal should admit the next call (sent / admitted / late 11 / 1 / 0), the counters read {totals}"
        ));
    }
    no_js_errors(browser, BREAKER_PAGE).await
}

async fn saga_compensates_in_reverse_order(browser: &Browser) -> Check {
    open_ready(browser, SAGA_PAGE).await?;
    choose(browser, "select[name=fail]", "inventory").await?;
    click(browser, "[data-act=play]").await?;
    let finished = poll_until(POLL_ATTEMPTS, || async {
        let done = js(
            browser,
            "return document.querySelector('[data-playground=saga]').dataset.done;",
        )
        .await
        .map_err(|_| book_tests::BookTestError::Chromedriver("script failed".into()))?;
        Ok((done == "true").then_some(()))
    })
    .await
    .map_err(|error| error.to_string())?;
    if finished.is_none() {
        return Err("the saga never finished playing".into());
    }
    let compensations = js(
        browser,
        "return Array.from(document.querySelectorAll('.msg[data-kind=compensation]'), m => m.dataset.op);",
    )
    .await?;
    if compensations != json!(["refund", "cancel"]) {
        return Err(format!(
            "compensations should run refund then cancel, the diagram shows {compensations}"
        ));
    }
    let balances = js(
        browser,
        "return Object.fromEntries(Array.from(document.querySelectorAll('[data-balance]'), d => [d.dataset.balance, d.textContent]));",
    )
    .await?;
    let expected = json!({
        "order_status": "CANCELLED", "wallet": "100", "money_held": "0", "money_captured": "0",
        "stock": "5", "stock_reserved": "0", "courier_booked": "no"
    });
    if balances != expected {
        return Err(format!(
            "final balances should be {expected}, the page shows {balances}"
        ));
    }
    let log = js(
        browser,
        "return Array.from(document.querySelectorAll('.pg-sagalog li'), li => li.textContent).join('\\n');",
    )
    .await?;
    let log = log.as_str().unwrap_or_default();
    if !(log.contains("reserve_inventory failed: out of stock") && log.contains("saga compensated"))
    {
        return Err(format!(
            "the saga log misses the failure or the end:\n{log}"
        ));
    }
    screenshot(browser, "playground-saga", ".pg-saga").await?;
    no_js_errors(browser, SAGA_PAGE).await
}

async fn shared_scenarios_restore_the_controls(browser: &Browser) -> Check {
    let breaker = "playground/breaker.html?win=time&size=20&fail=40&wait=7000&trial=4&seed=7\
                   &down=slow&lat=2500&rate=50&steady=1&do=df.1000_p90.1000&t=3000";
    open_ready(browser, breaker).await?;
    let controls = js(
        browser,
        "const f = document.querySelector('[data-playground=breaker] form');
         return { win: f.win.value, size: f.size.value, fail: f.fail.value, wait: f.wait.value,
                  trial: f.trial.value, seed: f.seed.value, down: f.down.value, pct: f.pct.value,
                  rate: f.rate.value, steady: f.steady.checked,
                  clock: document.querySelector('.pg-clock').textContent };",
    )
    .await?;
    let expected = json!({
        "win": "time", "size": "20", "fail": "40", "wait": "7000", "trial": "4", "seed": "7",
        "down": "failing", "pct": "90", "rate": "50", "steady": true, "clock": "3.0 s"
    });
    if controls != expected {
        return Err(format!(
            "the breaker scenario should restore {expected}, the controls show {controls}"
        ));
    }
    browser.use_theme("coal").await.map_err(|e| e.to_string())?;
    open_ready(browser, breaker).await?;
    screenshot(browser, "playground-breaker-dark", ".pg-views").await?;
    browser
        .use_theme("light")
        .await
        .map_err(|e| e.to_string())?;

    let saga = "playground/saga.html?mode=choreography&fail=shipping&cfail=1&crash=payment&at=5";
    open_ready(browser, saga).await?;
    let controls = js(
        browser,
        "const r = document.querySelector('[data-playground=saga]'); const f = r.querySelector('form');
         return { mode: f.mode.value, fail: f.fail.value, cfail: f.cfail.checked,
                  crash: f.crash.value, shown: r.dataset.shown,
                  arrows: r.querySelectorAll('.msg').length };",
    )
    .await?;
    let expected = json!({
        "mode": "choreography", "fail": "shipping", "cfail": true, "crash": "payment",
        "shown": "5", "arrows": 5
    });
    if controls != expected {
        return Err(format!(
            "the saga scenario should restore {expected}, the page shows {controls}"
        ));
    }
    no_js_errors(browser, saga).await
}

async fn pages_fit_a_phone(browser: &Browser) -> Check {
    browser
        .client()
        .set_window_size(390, 844)
        .await
        .map_err(|error| error.to_string())?;
    let mut problems = Vec::new();
    for (page, name, anchor) in [
        (BREAKER_PAGE, "playground-breaker-phone", ".pg-views"),
        (SAGA_PAGE, "playground-saga-phone", ".pg-saga"),
    ] {
        open_ready(browser, page).await?;
        // Wide parts (the sequence diagram) scroll inside their own box; the page must not.
        let overflow = js(
            browser,
            "const r = document.querySelector('[data-playground]').getBoundingClientRect();
             return r.right - document.documentElement.clientWidth;",
        )
        .await?;
        if overflow.as_f64().unwrap_or(0.0) > 1.0 {
            problems.push(format!("{page} overflows a phone screen by {overflow} px"));
        }
        screenshot(browser, name, anchor).await?;
    }
    browser
        .client()
        .set_window_size(1280, 900)
        .await
        .map_err(|error| error.to_string())?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn playgrounds_work_in_a_browser() {
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
                "breaker_opens_then_half_opens",
                breaker_opens_then_half_opens(&browser).await,
            ),
            (
                "breaker_operator_forces_open_and_back",
                breaker_operator_forces_open_and_back(&browser).await,
            ),
            (
                "saga_compensates_in_reverse_order",
                saga_compensates_in_reverse_order(&browser).await,
            ),
            (
                "shared_scenarios_restore_the_controls",
                shared_scenarios_restore_the_controls(&browser).await,
            ),
            ("pages_fit_a_phone", pages_fit_a_phone(&browser).await),
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
