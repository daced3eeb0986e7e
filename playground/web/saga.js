// The saga playground: pick what goes wrong, then step or play the run as an animated
// sequence diagram with the saga log and the balances beside it. The run itself (the saga
// core deciding, the participants keeping balances) is computed in Rust by SagaPlayground;
// this script reveals its messages one by one.
import { SagaPlayground } from "./playground.js";
import { esc, fillForm, formQuery, keepInUrl, liveRegion, scenarioQuery, share, start } from "./shared.js";

const SETTINGS = ["mode", "fail", "cfail", "crash"];
const LANES = {
  client: "👤 Client", orchestrator: "🧭 Orchestrator", order: "🛒 Order", bus: "📨 Event bus",
  payment: "💳 Payment", inventory: "📦 Inventory", shipping: "🚚 Shipping",
};
const W = 660, TOP = 54, ROW = 34, PLAY_MS = 700;
const BALANCES = [
  ["order_status", "Order status"], ["wallet", "Customer's money"], ["money_held", "Money held"],
  ["money_captured", "Money captured"], ["stock", "Stock on the shelf"], ["stock_reserved", "Stock reserved"],
  ["courier_booked", "Courier booked"],
];

function markup(id) {
  return `
<form class="pg-controls" aria-label="Saga playground controls">
 <fieldset><legend>Scenario</legend>
  <label>Coordination <select name="mode"><option value="orchestration">orchestration</option><option value="choreography">choreography</option></select></label>
  <label>Step that fails <select name="fail"><option value="none">none</option><option value="payment">payment</option><option value="inventory">inventory</option><option value="shipping">shipping</option></select></label>
  <label><input type="checkbox" name="cfail"> A compensation fails once (retried)</label>
  <label>Crash and restart <select name="crash"><option value="none">none</option><option value="payment">waiting for payment</option><option value="inventory">waiting for inventory</option><option value="shipping">waiting for shipping</option><option value="compensation">waiting for a compensation</option></select></label>
 </fieldset>
 <fieldset><legend>Run</legend>
  <button type="button" data-act="step">Step</button>
  <button type="button" data-act="play" aria-pressed="false">▶ Play</button>
  <button type="button" data-act="all">Show all</button>
  <button type="button" data-act="rewind">Rewind</button>
  <button type="button" data-act="share">Copy link</button>
  <output class="pg-progress">0 / 0</output>
 </fieldset>
</form>
<div class="pg-saga">
 <figure class="pg-seq-fig"><figcaption>Sequence diagram</figcaption>
  <div class="pg-seq-scroll"><svg class="pg-seq" text-anchor="middle" role="img" aria-label="Sequence diagram of the saga"><defs>
   <marker id="${id}-head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10z" class="pg-arrowhead"/></marker>
  </defs><g class="lanes"></g><g class="msgs"></g></svg></div>
 </figure>
 <div class="pg-side">
  <section aria-label="Balances"><h4>Balances</h4><dl class="pg-balances"></dl></section>
  <section aria-label="Saga log"><h4>Saga log <label class="pg-raw"><input type="checkbox" name="raw"> as JSON</label></h4><ol class="pg-sagalog" start="0"></ol></section>
 </div>
</div>`;
}

function mount(root) {
  const id = root.id || "saga";
  root.classList.add("mim-pg");
  root.innerHTML = markup(id);
  const say = liveRegion(root);
  const form = root.querySelector("form");
  const $ = (selector) => root.querySelector(selector);
  const svg = $(".pg-seq");
  let run, shown = 0, timer = null, xs = {};

  function load(query) {
    const pg = new SagaPlayground(query);
    run = JSON.parse(pg.run());
    fillForm(form, JSON.parse(pg.settings()));
    keepInUrlAt = pg.query();
    pg.free();
    const gap = (W - 40) / run.lanes.length;
    xs = Object.fromEntries(run.lanes.map((lane, i) => [lane, 20 + gap / 2 + i * gap]));
    const height = TOP + ROW * (run.messages.length + 1);
    svg.setAttribute("viewBox", `0 0 ${W} ${height}`);
    svg.style.aspectRatio = `${W} / ${height}`;
    $(".lanes").innerHTML = run.lanes
      .map((lane) => `<g class="lane"><line x1="${xs[lane]}" x2="${xs[lane]}" y1="34" y2="${height - 6}"/><rect x="${xs[lane] - gap / 2 + 4}" y="6" width="${gap - 8}" height="26" rx="5"/><text x="${xs[lane]}" y="24">${LANES[lane]}</text></g>`)
      .join("");
    $(".msgs").textContent = "";
    $(".pg-sagalog").textContent = "";
    shown = 0;
    render(false);
  }
  let keepInUrlAt = "";

  function arrow(m, i) {
    const y = TOP + ROW * i + 20;
    const label = esc(m.label);
    const data = `class="msg msg-${m.kind}" data-kind="${m.kind}"${m.op ? ` data-op="${esc(m.op)}"` : ""}${m.step != null ? ` data-step="${m.step}"` : ""}`;
    if (m.from === m.to) {
      const x = xs[m.from];
      const right = x < W * 0.6;
      return `<g ${data}><rect class="note" x="${x - 5}" y="${y - 14}" width="10" height="18" rx="2"/><text x="${right ? x + 10 : x - 10}" y="${y}" text-anchor="${right ? "start" : "end"}">${label}</text></g>`;
    }
    const [x1, x2] = [xs[m.from], xs[m.to]];
    const dashed = /reply|failure|done/.test(m.kind) ? " dashed" : "";
    return `<g ${data}><line class="shaft${dashed}" x1="${x1}" x2="${x2 + (x2 > x1 ? -2 : 2)}" y1="${y}" y2="${y}" marker-end="url(#${id}-head)"/><text x="${(x1 + x2) / 2}" y="${y - 6}">${label}</text></g>`;
  }

  function logLine(entry) {
    const raw = root.querySelector("[name=raw]").checked;
    return `<li title="${esc(entry.raw)}"><time>${entry.at} ms</time> ${esc(raw ? entry.raw : entry.text)}</li>`;
  }

  function render(animate) {
    const msgs = $(".msgs");
    while (msgs.children.length > shown) msgs.lastElementChild.remove();
    const list = $(".pg-sagalog");
    const entries = run.messages.slice(0, shown).flatMap((m) => m.log);
    if (!animate || list.children.length > entries.length) list.innerHTML = entries.map(logLine).join("");
    for (let i = msgs.children.length; i < shown; i++) {
      msgs.insertAdjacentHTML("beforeend", arrow(run.messages[i], i));
      if (animate) msgs.lastElementChild.classList.add("enter");
      if (animate) list.insertAdjacentHTML("beforeend", run.messages[i].log.map(logLine).join(""));
    }
    const current = run.messages[Math.max(shown - 1, 0)];
    const b = current.balances;
    $(".pg-balances").innerHTML = BALANCES.map(([key, name]) => {
      let value = b[key];
      if (key === "courier_booked") value = value ? "yes" : "no";
      if (key === "order_status" && shown === 0) value = "—";
      return `<div><dt>${name}</dt><dd data-balance="${key}">${esc(value)}</dd></div>`;
    }).join("");
    $(".pg-progress").textContent = `${shown} / ${run.messages.length}`;
    root.dataset.shown = shown;
    root.dataset.done = String(shown === run.messages.length);
    root.dataset.outcome = shown === run.messages.length ? run.outcome ?? "" : "";
    if (animate && shown) {
      const m = run.messages[shown - 1];
      msgs.lastElementChild.scrollIntoView?.({ block: "nearest" });
      say(`${LANES[m.from].slice(3)}${m.from === m.to ? "" : ` to ${LANES[m.to].slice(3)}`}: ${m.label}`);
    }
    keepInUrl(`${keepInUrlAt}${shown ? `&at=${shown}` : ""}`);
  }

  function setPlaying(on) {
    clearInterval(timer);
    timer = null;
    const button = $('[data-act="play"]');
    button.textContent = on ? "⏸ Pause" : "▶ Play";
    button.setAttribute("aria-pressed", String(on));
    if (!on) return;
    if (shown === run.messages.length) { shown = 0; render(false); }
    timer = setInterval(() => {
      if (shown >= run.messages.length) return setPlaying(false);
      shown++;
      render(true);
    }, PLAY_MS);
  }

  const actions = {
    step: () => { setPlaying(false); if (shown < run.messages.length) { shown++; render(true); } },
    play: () => setPlaying(timer === null),
    all: () => { setPlaying(false); shown = run.messages.length; render(false); say(`Run shown to the end: ${run.outcome}.`); },
    rewind: () => { setPlaying(false); shown = 0; render(false); say("Rewound to the start."); },
    share: () => share(say),
  };
  form.addEventListener("click", (event) => {
    const act = event.target.closest("[data-act]")?.dataset.act;
    if (act) actions[act]();
  });
  form.addEventListener("change", (event) => {
    setPlaying(false);
    load(formQuery(form, SETTINGS));
    say("Scenario changed: the run starts again.");
  });
  root.querySelector("[name=raw]").addEventListener("change", () => render(false));
  form.addEventListener("submit", (event) => event.preventDefault());

  const query = scenarioQuery([...SETTINGS, "at"]);
  load(query);
  const at = Number(new URLSearchParams(query).get("at"));
  if (at > 0) { shown = Math.min(at, run.messages.length); render(false); }
}

for (const root of document.querySelectorAll("[data-playground=saga]")) {
  start(root, () => mount(root));
}
