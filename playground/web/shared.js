// Shared by the breaker and saga playgrounds: loading the WASM module once, the stylesheet,
// the scenario in the URL, the screen-reader announcements, and tiny DOM helpers.
// The pages draw; every number and event they show comes from the Rust cores.
import init from "./playground.js";

/** When this module started running: the playground's own start-up is measured from here. */
const moduleStart = performance.now();
let ready;
/** Loads the WASM module and the stylesheet once per page, however many playgrounds it has. */
export function load() {
  if (!ready) {
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = new URL("./playground.css", import.meta.url).href;
    document.head.append(css);
    ready = init();
  }
  return ready;
}

/** Escapes text for innerHTML. */
export const esc = (text) =>
  String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/** Seconds with one decimal: 12.3 s. */
export const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** Our keys of the current URL's query (others, like mdBook's `highlight`, are dropped). */
export function scenarioQuery(keys) {
  const params = new URLSearchParams(location.search);
  return [...params].filter(([k]) => keys.includes(k)).map(([k, v]) => `${k}=${v}`).join("&");
}

/** Keeps the scenario in the address bar without adding history entries. */
export function keepInUrl(query) {
  const url = `${location.pathname}?${query}${location.hash}`;
  if (url !== location.pathname + location.search + location.hash) history.replaceState(null, "", url);
}

/** Copies the page's address (the scenario) to the clipboard and says so. */
export async function share(say) {
  try {
    await navigator.clipboard.writeText(location.href);
    say("Link to this scenario copied.");
  } catch {
    say("The address bar holds this scenario's link.");
  }
}

/** Sets each form control named in `values` (checkboxes take "1"/"0"). */
export function fillForm(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const field = form.elements.namedItem(name);
    if (!field) continue;
    if (field.type === "checkbox") field.checked = value === "1";
    else field.value = value;
  }
}

/** The form as a query string (unchecked boxes as 0), in the names Rust reads. */
export function formQuery(form, names) {
  return names
    .map((name) => {
      const field = form.elements.namedItem(name);
      const value = field.type === "checkbox" ? (field.checked ? "1" : "0") : field.value;
      return `${name}=${encodeURIComponent(value)}`;
    })
    .join("&");
}

/** A polite live region inside `root`; returns the function that speaks through it. */
export function liveRegion(root) {
  const region = document.createElement("p");
  region.className = "pg-sr";
  region.setAttribute("role", "status");
  region.setAttribute("aria-live", "polite");
  root.append(region);
  return (text) => {
    region.textContent = text;
  };
}

/** Marks the playground ready, or shows why it could not start. */
export async function start(root, body) {
  try {
    await load();
    body();
    // When the reader could first interact, in ms since navigation started (the tests print it).
    root.dataset.readyAt = String(Math.round(performance.now()));
    root.dataset.startupMs = String(Math.round(performance.now() - moduleStart));
    root.dataset.status = "ready";
  } catch (error) {
    root.dataset.status = "error";
    root.textContent = `The playground could not start: ${error}. Build the book with \`cargo xtask book\`.`;
    throw error;
  }
}
