// The tracing chapter's waterfall: a trace the lab's collector decided (its JSON, as the
// collector's `GET /api/traces/{id}` answers, in a <script type="application/json"> on the page)
// drawn as SVG, one row per span, indented by depth, on a time axis with ticks; the critical
// path highlighted; hovering a row, or focusing it from the keyboard (Tab, arrow keys), shows
// the span's attributes in the panel beside it. No libraries, like the playgrounds.
//
// Markup: <div class="mim-waterfall" data-waterfall="ID" data-status="loading"></div>, where ID
// is the id of the JSON script. The script sets data-status to "ready" once drawn, or "error".
(function () {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 760; // the viewBox's width; the drawing scales to the column
  const LABEL = 290; // the label column
  const DURATION = 64; // the duration column, right of the bars
  const ROW = 26;
  const AXIS = 26;
  const INDENT = 14;

  function el(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function html(name, attributes, text) {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const ms = (value) => `${value.toFixed(1)} ms`;

  /** A tick step of 1, 2 or 5 times a power of ten, giving at most about eight ticks. */
  function tickStep(total) {
    const rough = total / 8;
    const power = Math.pow(10, Math.floor(Math.log10(rough)));
    return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough);
  }

  function describe(span) {
    const parts = [
      `${span.service} ${span.name}`,
      `depth ${span.depth}`,
      `starts at ${ms(span.offset_ms)}`,
      `takes ${ms(span.duration_ms)}`,
      `self time ${ms(span.self_ms)}`,
    ];
    if (span.critical) parts.push("on the critical path");
    if (span.error) parts.push("failed");
    if (span.orphan) parts.push("orphan: its parent never arrived");
    return parts.join(", ");
  }

  function showSpan(panel, span) {
    panel.replaceChildren();
    panel.dataset.spanId = span.span_id;
    const title = html("p", { class: "wf-panel-title" });
    title.append(html("strong", {}, span.service), ` ${span.name}`);
    if (span.critical) title.append(html("span", { class: "wf-badge" }, "critical path"));
    if (span.error) title.append(html("span", { class: "wf-badge wf-badge-error" }, "error"));
    panel.append(title);
    const table = html("table", { class: "wf-attributes" });
    const caption = html("caption", {}, `Span ${span.span_id}`);
    table.append(caption);
    const rows = [
      ["span id", span.span_id],
      ["parent", span.parent || "none (the root)"],
      ["start", ms(span.offset_ms)],
      ["end", ms(span.offset_ms + span.duration_ms)],
      ["duration", ms(span.duration_ms)],
      ["self time", ms(span.self_ms)],
    ].concat(span.attributes);
    for (const [key, value] of rows) {
      const row = html("tr");
      row.append(html("th", { scope: "row" }, key), html("td", {}, value));
      table.append(row);
    }
    panel.append(table);
  }

  function draw(root) {
    const source = document.getElementById(root.dataset.waterfall);
    if (!source) throw new Error(`no trace data #${root.dataset.waterfall}`);
    const trace = JSON.parse(source.textContent);
    const total = Math.max(trace.duration_ms, 1e-9);
    const track = WIDTH - LABEL - DURATION;
    const x = (at) => LABEL + (at / total) * track;
    const height = AXIS + trace.spans.length * ROW + 4;

    root.replaceChildren();
    const summary = html(
      "p",
      { class: "wf-summary" },
      `Trace ${trace.trace_id}: ${trace.spans.length} spans, ${ms(trace.duration_ms)}, ${trace.verdict}.`,
    );
    const figure = html("div", { class: "wf-figure" });
    const svg = el("svg", {
      class: "wf-svg",
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "list",
      "aria-label": `Waterfall of trace ${trace.trace_id}, ${trace.spans.length} spans over ${ms(trace.duration_ms)}; tab to a span for its attributes`,
    });

    const axis = el("g", { class: "wf-axis", "aria-hidden": "true" });
    const step = tickStep(total);
    for (let at = 0; at <= total + 1e-9; at += step) {
      axis.append(el("line", { x1: x(at), x2: x(at), y1: AXIS - 6, y2: height, class: "wf-tick" }));
      axis.append(el("text", { x: x(at), y: AXIS - 10, "text-anchor": "middle" }, `${+at.toFixed(3)} ms`));
    }
    svg.append(axis);

    const panel = html("div", {
      class: "wf-panel",
      role: "region",
      "aria-live": "polite",
      "aria-label": "The selected span's attributes",
    });
    panel.append(html("p", { class: "wf-hint" }, "Hover over a span, or tab to it, to see its attributes."));

    const rows = trace.spans.map((span, index) => {
      const y = AXIS + index * ROW;
      const classes = ["wf-row"];
      if (span.critical) classes.push("wf-critical");
      if (span.error) classes.push("wf-error");
      if (span.orphan) classes.push("wf-orphan");
      const row = el("g", {
        class: classes.join(" "),
        role: "listitem",
        tabindex: "0",
        "aria-label": describe(span),
        "data-span-id": span.span_id,
      });
      row.append(el("rect", { class: "wf-hit", x: 0, y, width: WIDTH, height: ROW, rx: 3 }));
      const label = el("text", { class: "wf-label", x: 6 + span.depth * INDENT, y: y + ROW / 2 + 4 });
      label.append(el("tspan", { class: "wf-service" }, span.service), el("tspan", {}, ` ${span.name}`));
      if (span.critical) label.append(el("tspan", { class: "wf-mark" }, " ◆"));
      row.append(label);
      const width = Math.max((span.duration_ms / total) * track, 1.5);
      row.append(el("rect", { class: "wf-bar", x: x(span.offset_ms), y: y + 6, width, height: ROW - 12, rx: 2 }));
      row.append(
        el("text", { class: "wf-ms", x: WIDTH - 4, y: y + ROW / 2 + 4, "text-anchor": "end" }, ms(span.duration_ms)),
      );
      const show = () => {
        for (const other of svg.querySelectorAll(".wf-row.wf-selected")) other.classList.remove("wf-selected");
        row.classList.add("wf-selected");
        showSpan(panel, span);
      };
      row.addEventListener("mouseenter", show);
      row.addEventListener("focus", show);
      row.addEventListener("click", () => row.focus());
      svg.append(row);
      return row;
    });
    svg.addEventListener("keydown", (event) => {
      const at = rows.indexOf(document.activeElement);
      if (at < 0) return;
      const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 }[event.key];
      if (to === undefined || to < 0 || to >= rows.length) return;
      event.preventDefault();
      rows[to].focus();
    });

    const legend = html("p", { class: "wf-legend" });
    legend.append(
      html("span", { class: "wf-key wf-key-critical", "aria-hidden": "true" }),
      " ◆ the critical path: what the end of the request waited for  ",
      html("span", { class: "wf-key", "aria-hidden": "true" }),
      " other spans",
    );
    figure.append(svg, legend);
    root.append(summary, figure, panel);
    root.dataset.spans = String(rows.length);
    root.dataset.status = "ready";
  }

  for (const root of document.querySelectorAll("[data-waterfall]")) {
    try {
      draw(root);
    } catch (error) {
      root.dataset.status = "error";
      root.textContent = `The waterfall could not be drawn: ${error.message}`;
      console.error(error);
    }
  }
})();
