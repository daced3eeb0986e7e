// The circuit-breaker playground: controls, the state diagram, an SVG timeline, the event log
// and the counters. The breaker, the downstream and the clock are Rust (BreakerPlayground);
// this script presses its buttons, moves its clock and draws the frames it returns.
import { BreakerPlayground } from "./playground.js";
import { esc, fillForm, formQuery, keepInUrl, liveRegion, scenarioQuery, secs, share, start } from "./shared.js";

const SETTINGS = ["win", "size", "fail", "slow", "slowms", "min", "wait", "trial", "jitter", "down", "pct", "lat", "rate", "burst", "steady", "seed"];
const KEYS = [...SETTINGS, "do", "t", "speed"];
/** Settings that change the breaker itself: changing one starts the scenario again. */
const REBUILD = ["win", "size", "fail", "slow", "slowms", "min", "wait", "trial", "jitter", "burst", "seed"];
const SPAN = 30000; // the timeline shows the last 30 s
const STATE_NAMES = { closed: "Closed", open: "Open", half_open: "HalfOpen", forced_open: "ForcedOpen", disabled: "Disabled" };
const ROWS = { success: 22, slow: 42, slow_failure: 42, failure: 62, rejected: 82, late: 102 };

const num = (name, label, min, max, step = 1) =>
  `<label>${label} <input name="${name}" type="number" min="${min}" max="${max}" step="${step}" inputmode="numeric"></label>`;

function markup(id) {
  return `
<form class="pg-controls" aria-label="Circuit breaker playground controls">
 <fieldset><legend>Breaker</legend>
  <label>Window <select name="win"><option value="count">last N calls</option><option value="time">last N seconds</option></select></label>
  ${num("size", "N", 1, 1000)}${num("fail", "Failure rate ≥ %", 1, 100)}${num("slow", "Slow-call rate ≥ %", 1, 100)}
  ${num("slowms", "Slow call ≥ ms", 1, 600000, 100)}${num("min", "Minimum calls", 1, 1000)}
  ${num("wait", "Wait in Open, ms", 1, 3600000, 500)}${num("trial", "Half-open trial calls", 1, 100)}
  ${num("jitter", "Jitter %", 0, 90)}${num("seed", "Seed", 0, 4294967295)}
 </fieldset>
 <fieldset><legend>Downstream</legend>
  <label>Behaviour <select name="down"><option value="healthy">healthy</option><option value="failing">failing x%</option><option value="slow">slow</option></select></label>
  ${num("pct", "x = failing %", 0, 100)}${num("lat", "Slow latency, ms", 1, 600000, 100)}
 </fieldset>
 <fieldset><legend>Traffic</legend>
  <button type="button" data-act="one">Send 1</button>
  <button type="button" data-act="burst">Send burst</button> ${num("burst", "of", 1, 500)}
  <label><input type="checkbox" name="steady"> Steady traffic</label> ${num("rate", "calls/s", 1, 200)}
 </fieldset>
 <fieldset><legend>Operator</legend>
  <button type="button" data-act="force" aria-pressed="false" title="Hold the breaker open: every call is rejected until back to normal">Force open</button>
  <button type="button" data-act="disable" aria-pressed="false" title="Switch the breaker off: every call goes through and nothing is recorded">Disable</button>
  <button type="button" data-act="normal" title="The core's reset: Closed, with an empty window">Back to normal</button>
 </fieldset>
 <fieldset><legend>Clock</legend>
  <button type="button" data-act="play" aria-pressed="false">▶ Play</button>
  <button type="button" data-act="step" title="Jump to the next reply, deadline or call">Step</button>
  <button type="button" data-act="plus">+1 s</button>
  <label>Speed <select name="speed"><option>0.25</option><option>0.5</option><option selected>1</option><option>2</option><option>5</option><option>10</option></select></label>
  <output class="pg-clock" aria-label="simulated time">0.0 s</output>
  <button type="button" data-act="reset">Reset</button>
  <button type="button" data-act="share">Copy link</button>
 </fieldset>
</form>
<div class="pg-views">
 <figure class="pg-diagram"><figcaption>State <strong class="pg-state" data-state="closed">Closed</strong></figcaption>
  <svg viewBox="0 0 320 270" text-anchor="middle" role="img" aria-label="State diagram of the circuit breaker">
   <defs><marker id="${id}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" class="pg-arrowhead"/></marker></defs>
   <rect class="pg-group" x="2" y="4" width="316" height="182" rx="12"/>
   <g class="pg-edges" marker-end="url(#${id}-arrow)">
    <path d="M92 40 L228 40"/><path d="M262 62 L196 138"/><path d="M124 138 L58 62"/><path d="M176 140 L246 64"/>
   </g>
   <g class="pg-edge-labels">
    <text x="160" y="32">failure/slow rate ≥ threshold</text>
    <text x="248" y="112" text-anchor="start">wait elapsed</text>
    <text x="72" y="112" text-anchor="end">trials succeed</text>
    <text x="200" y="96" text-anchor="end">trial fails</text>
   </g>
   <g class="pg-node" data-node="closed"><rect x="8" y="22" width="84" height="38" rx="19"/><text x="50" y="46">Closed</text></g>
   <g class="pg-node" data-node="open"><rect x="228" y="22" width="84" height="38" rx="19"/><text x="270" y="46">Open</text></g>
   <g class="pg-node" data-node="half_open"><rect x="110" y="138" width="100" height="38" rx="19"/><text x="160" y="162">HalfOpen</text></g>
   <g class="pg-edges pg-op-edges" marker-start="url(#${id}-arrow)" marker-end="url(#${id}-arrow)"><title>An operator forces open or disables from any state; back to normal enters Closed</title><path d="M60 186 L60 226"/><path d="M260 186 L260 226"/></g>
   <g class="pg-edge-labels"><text x="68" y="210" text-anchor="start">operator</text><text x="252" y="210" text-anchor="end">operator</text></g>
   <g class="pg-node pg-op" data-node="forced_open"><rect x="10" y="226" width="100" height="38" rx="19"/><text x="60" y="250">ForcedOpen</text></g>
   <g class="pg-node pg-op" data-node="disabled"><rect x="210" y="226" width="100" height="38" rx="19"/><text x="260" y="250">Disabled</text></g>
  </svg>
 </figure>
 <dl class="pg-counters" aria-label="What the breaker reports"></dl>
 <figure class="pg-timeline-fig"><figcaption>Timeline: calls by outcome, state as bands, failure rate against the threshold</figcaption>
  <svg class="pg-timeline" viewBox="0 0 640 230" text-anchor="middle" role="img" aria-label="Timeline of calls"></svg>
  <p class="pg-legend"><span class="k-success">● ok</span> <span class="k-slow">● slow</span> <span class="k-failure">● failed</span> <span class="k-rejected">✕ rejected</span> <span class="k-late">◆ late (stale permit)</span> <span class="k-rate">— failure rate</span> <span class="k-srate">— slow-call rate</span> <span class="k-rate">- - thresholds</span></p>
 </figure>
 <section class="pg-log-box" aria-label="Event log"><h4>Events from the core <label class="pg-raw"><input type="checkbox" name="raw"> as JSON</label></h4><ol class="pg-log" reversed></ol></section>
</div>`;
}

function mount(root) {
  const id = root.id || "breaker";
  root.classList.add("mim-pg");
  root.innerHTML = markup(id);
  const say = liveRegion(root);
  const form = root.querySelector("form");
  const $ = (selector) => root.querySelector(selector);
  const timeline = $(".pg-timeline");
  const log = $(".pg-log");
  let pg, marks, transitions, rates, frame, playing = false, last = 0, lastUrl = 0;

  function rebuild(query) {
    pg?.free();
    pg = new BreakerPlayground(query);
    marks = []; transitions = []; rates = [];
    log.textContent = "";
    fillForm(form, JSON.parse(pg.settings()));
    pull();
    saveUrl();
  }

  function saveUrl() {
    keepInUrl(`${pg.query()}&speed=${form.elements.speed.value}`);
  }

  /** Takes what changed from Rust and redraws. */
  function pull() {
    frame = JSON.parse(pg.frame());
    marks.push(...frame.marks);
    transitions.push(...frame.transitions);
    rates.push(...frame.rates);
    const from = frame.now - SPAN - 1000;
    if (marks.length > 4000 || (marks[0] && (marks[0].done ?? marks[0].sent) < from)) {
      marks = marks.filter((m) => (m.done ?? m.sent) >= from).slice(-4000);
    }
    const r = rates.findIndex((p) => p.t >= from);
    if (r > 1) rates = rates.slice(r - 1);
    for (const t of frame.transitions) {
      const reason = frame.log.find((l) => l.kind === "state_transition" && l.t === t.at);
      say(`Breaker ${STATE_NAMES[t.to]}. ${reason ? reason.text : ""}`);
    }
    appendLog(frame.log);
    draw();
  }

  function appendLog(lines) {
    if (!lines.length) return;
    const raw = root.querySelector("[name=raw]").checked;
    const html = lines
      .slice(-150)
      .reverse()
      .map((l) => `<li class="ev-${l.kind}" title="${esc(l.raw)}"><time>${secs(l.t)}</time> ${esc(raw ? l.raw : l.text)}</li>`)
      .join("");
    log.insertAdjacentHTML("afterbegin", html);
    while (log.children.length > 150) log.lastElementChild.remove();
  }

  function draw() {
    const m = frame.metrics;
    const state = frame.state;
    root.dataset.state = state;
    const label = $(".pg-state");
    label.textContent = STATE_NAMES[state];
    label.dataset.state = state;
    for (const node of root.querySelectorAll(".pg-node")) node.classList.toggle("lit", node.dataset.node === state);
    $('[data-act="force"]').setAttribute("aria-pressed", String(state === "forced_open"));
    $('[data-act="disable"]').setAttribute("aria-pressed", String(state === "disabled"));
    $(".pg-clock").textContent = secs(frame.now);
    const pct = (v) => (v == null ? "— (below minimum calls)" : `${v.toFixed(1)} %`);
    const rows = [
      ["State", STATE_NAMES[state], "state"],
      ["Failure rate", pct(m.failure_rate), "failure_rate"],
      ["Slow-call rate", pct(m.slow_call_rate), "slow_call_rate"],
      ["Calls judged", `${m.buffered_calls} (${m.failed_calls} failed, ${m.slow_calls} slow)`, "buffered_calls"],
      ["In flight", m.in_flight, "in_flight"],
      ["Rejected in this state", m.not_permitted_calls, "not_permitted_calls"],
      ["Rejected in total", m.rejected_calls, "rejected_calls"],
      ["Consecutive opens", m.consecutive_opens, "consecutive_opens"],
      ["Open until", m.open_until == null ? "—" : secs(m.open_until), "open_until"],
      ["Sent / admitted / late", `${frame.totals.sent} / ${frame.totals.admitted} / ${frame.totals.late}`, "totals"],
    ];
    $(".pg-counters").innerHTML = rows.map(([k, v, key]) => `<div><dt>${k}</dt><dd data-metric="${key}">${esc(v)}</dd></div>`).join("");
    drawTimeline();
  }

  function drawTimeline() {
    const end = Math.max(frame.now, SPAN);
    const start = end - SPAN;
    const x = (t) => (56 + ((t - start) / SPAN) * 576).toFixed(1);
    const out = [];
    // State bands from the core's transitions.
    const bands = [{ at: 0, to: "closed" }, ...transitions];
    bands.forEach((b, i) => {
      const until = i + 1 < bands.length ? bands[i + 1].at : frame.now;
      if (until < start) return;
      out.push(`<rect class="band band-${b.to}" x="${x(Math.max(b.at, start))}" y="8" width="${Math.max(0.5, x(until) - x(Math.max(b.at, start))).toFixed(1)}" height="212"><title>${STATE_NAMES[b.to]}</title></rect>`);
    });
    for (const [name, y] of [["ok", 22], ["slow", 42], ["failed", 62], ["rejected", 82], ["late", 102]]) {
      out.push(`<text class="row-label" x="50" y="${y + 4}">${name}</text><line class="row-line" x1="56" x2="632" y1="${y}" y2="${y}"/>`);
    }
    for (let s = Math.ceil(start / 5000) * 5000; s <= end; s += 5000) {
      out.push(`<line class="tick" x1="${x(s)}" x2="${x(s)}" y1="112" y2="222"/><text class="tick-label" x="${x(s)}" y="230">${s / 1000}s</text>`);
    }
    let rejected = 0;
    for (const mk of marks.slice(-1500)) {
      const y = ROWS[mk.kind];
      if (mk.kind === "rejected") {
        if (mk.sent < start) continue;
        rejected++;
        const cx = x(mk.sent);
        out.push(`<path class="mark mark-rejected" d="M${cx - 3} ${y - 3}l6 6m0 -6l-6 6"/>`);
      } else {
        if (mk.done < start) continue;
        const cx = x(mk.done);
        const shape = mk.kind === "late" ? `<path class="mark mark-late" d="M${cx} ${y - 4}l4 4l-4 4l-4 -4z"/>` : `<circle class="mark mark-${mk.kind}" cx="${cx}" cy="${y}" r="3"/>`;
        out.push(`<line class="span span-${mk.kind}" x1="${x(Math.max(mk.sent, start))}" x2="${cx}" y1="${y}" y2="${y}"/>${shape}`);
      }
    }
    // Rates: 0 % at y=220, 100 % at y=122; the threshold dashed.
    const ry = (v) => (220 - v * 0.98).toFixed(1);
    for (const [name, cls] of [["fail", "threshold"], ["slow", "threshold slow-threshold"]]) {
      const threshold = Number(form.elements[name].value) || 50;
      out.push(`<line class="${cls}" x1="56" x2="632" y1="${ry(threshold)}" y2="${ry(threshold)}"/><text class="row-label" x="50" y="${+ry(threshold) + 4}">${threshold}%</text>`);
    }
    for (const [key, cls] of [["failure", "rate"], ["slow", "srate"]]) {
      const pts = [];
      let prev = null;
      for (const p of rates) {
        const v = p[key];
        if (prev !== null) pts.push(`${x(Math.max(p.t, start))},${ry(prev)}`);
        if (v == null) { if (pts.length) out.push(`<polyline class="${cls}" points="${pts.join(" ")}"/>`); pts.length = 0; prev = null; continue; }
        pts.push(`${x(Math.max(p.t, start))},${ry(v)}`);
        prev = v;
      }
      if (prev !== null) pts.push(`${x(frame.now)},${ry(prev)}`);
      if (pts.length) out.push(`<polyline class="${cls}" points="${pts.join(" ")}"/>`);
    }
    timeline.innerHTML = out.join("");
    timeline.dataset.rejected = rejected;
    timeline.setAttribute("aria-label", `Timeline of the last 30 s: ${marks.length} calls, ${rejected} rejected, state ${STATE_NAMES[frame.state]}`);
  }

  function loop(ts) {
    if (!playing) return;
    const dt = Math.min(ts - last, 100) * Number(form.elements.speed.value);
    last = ts;
    if (dt >= 1) {
      pg.advance(dt);
      pull();
    }
    if (ts - lastUrl > 1000) { lastUrl = ts; saveUrl(); }
    requestAnimationFrame(loop);
  }

  function setPlaying(on) {
    playing = on;
    const button = $('[data-act="play"]');
    button.textContent = on ? "⏸ Pause" : "▶ Play";
    button.setAttribute("aria-pressed", String(on));
    if (on) { last = performance.now(); requestAnimationFrame(loop); } else saveUrl();
  }

  const actions = {
    one: () => pg.send_one(),
    burst: () => pg.send_burst(),
    step: () => pg.step(),
    plus: () => pg.advance(1000),
    // Force open and Disable are toggles: pressed again, they go back to normal.
    force: () => (frame.state === "forced_open" ? pg.reset_breaker() : pg.force_open()),
    disable: () => (frame.state === "disabled" ? pg.reset_breaker() : pg.disable()),
    normal: () => pg.reset_breaker(),
    play: () => setPlaying(!playing),
    reset: () => { setPlaying(false); rebuild(formQuery(form, SETTINGS).replace(/steady=1/, "steady=0")); say("Scenario reset to time 0."); },
    share: () => share(say),
  };
  form.addEventListener("click", (event) => {
    const act = event.target.closest("[data-act]")?.dataset.act;
    if (!act) return;
    actions[act]();
    if (!["play", "reset", "share"].includes(act)) { pull(); saveUrl(); }
  });
  form.addEventListener("change", (event) => {
    const { name, value, checked } = event.target;
    if (REBUILD.includes(name)) { rebuild(formQuery(form, SETTINGS)); say(`${name} changed: the scenario starts again.`); return; }
    if (name === "down") pg.set_downstream(value);
    else if (name === "pct") pg.set_failure_percent(Number(value));
    else if (name === "rate") pg.set_rate(Number(value));
    else if (name === "steady") pg.set_steady(checked);
    pull();
    saveUrl();
  });
  root.querySelector("[name=raw]").addEventListener("change", () => say("The log shows new events in the chosen form."));
  form.addEventListener("submit", (event) => event.preventDefault());

  const query = scenarioQuery(KEYS);
  const speed = new URLSearchParams(query).get("speed");
  if (speed) form.elements.speed.value = speed;
  rebuild(query);
}

for (const root of document.querySelectorAll("[data-playground=breaker]")) {
  start(root, () => mount(root));
}
