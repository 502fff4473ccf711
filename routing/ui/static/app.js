// routing ui: draws the topology the server laid out, publishes, lights the path, follows the depths.
// Plain JavaScript, no build step, nothing from elsewhere. Names are set as text, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const W = 220, H = 42;  // a node's box
const $ = (id) => document.getElementById(id);
let state = null, lastResult = null, zoom = 1, selected = null, steps = [], stepAt = 0, playing = null;

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function short(text, n = 30) { return text.length > n ? text.slice(0, n - 1) + "\u2026" : text; }

function showError(text) {
  $("error-text").textContent = text;
  $("error").hidden = false;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  let answer, data;
  try {
    answer = await fetch(path, options);
    data = await answer.json();
  } catch (e) {
    showError(`the server did not answer (${e.message}); is routing ui still running?`);
    throw e;
  }
  if (!answer.ok) {
    showError(data.error || `HTTP ${answer.status}`);
    throw new Error(data.error);
  }
  $("error").hidden = true;
  return data;
}

// ------------------------------------------------------------------ drawing

function edgePath(a, b) {
  const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
  if (x2 > x1) {
    const dx = Math.max(40, (x2 - x1) / 2);
    // the label sits just before the target, above the line's end: labels of one source never pile up
    return { d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, mx: x2 - 8, my: y2, anchor: "end" };
  }
  // backwards (a dead letter into an earlier layer, an exchange in the same one): a loop below
  const low = Math.max(a.y, b.y) + H + 26;
  return { d: `M${x1},${y1} C${x1 + 60},${low} ${x2 - 60},${low} ${x2},${y2}`, mx: (x1 + x2) / 2, my: low - 6, anchor: "middle" };
}

function draw() {
  const svg = $("drawing"), d = state.drawing;
  svg.replaceChildren();
  $("empty").hidden = d.nodes.length > 0;
  svg.setAttribute("viewBox", `0 0 ${d.width} ${d.height}`);
  svg.setAttribute("width", d.width * zoom);
  svg.setAttribute("height", d.height * zoom);
  const at = Object.fromEntries(d.nodes.map((n) => [n.id, n]));
  const edges = el("g", { id: "edges" }), labels = el("g", { id: "labels" }), nodes = el("g", { id: "nodes" });
  const defs = el("defs");
  const arrow = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse" });
  arrow.append(el("path", { d: "M0,1 L10,5 L0,9 z", fill: "#9aa0a6" }));
  defs.append(arrow);
  svg.append(defs);
  const into = {};  // labels already placed before each target: the next one goes above them
  for (const e of d.edges) {
    const p = edgePath(at[e.source], at[e.target]);
    const k = into[e.target] = (into[e.target] ?? -1) + 1;
    if (p.anchor === "end") p.my -= 14 * k;
    const g = el("g", { class: `edge ${e.kind}`, "data-edge": e.id });
    g.append(el("path", { d: p.d, "marker-end": "url(#arrow)" }));
    g.append(el("title", {}, `${at[e.source].label} \u2192 ${at[e.target].label}: ${e.label}`));
    edges.append(g);
    const t = el("g", { class: `edge ${e.kind}`, "data-label": e.id });
    t.append(el("text", { x: p.mx, y: p.my - 5, "text-anchor": p.anchor }, short(e.label, 31)));
    labels.append(t);
  }
  for (const n of d.nodes) {
    const kind = n.kind === "exchange" ? `exchange ${n.type}` : "queue";
    const g = el("g", { class: `node ${kind}${n.builtin ? " builtin" : ""}`, "data-node": n.id,
      transform: `translate(${n.x},${n.y})` });
    g.append(el("title", {}, n.label + (n.notes.length ? ` (${n.notes.join(", ")})` : "")));
    g.append(el("rect", { class: "box", width: W, height: H, rx: n.kind === "queue" ? 16 : 4 }));
    g.append(el("text", { x: 10, y: 17 }, short(n.label)));
    const sub = n.kind === "exchange" ? [`${n.type} exchange`, ...n.notes] : ["queue", ...n.notes];
    g.append(el("text", { class: "sub", x: 10, y: 33 }, short(sub.join(", "), 34)));
    if (n.kind === "queue") {
      const badge = el("g", { class: "badge", transform: `translate(${W - 20},${H / 2})` });
      badge.append(el("circle", { r: 15 }));
      badge.append(el("text", { y: 4, "data-depth": n.name }, "\u2013"));
      g.append(badge);
      g.addEventListener("click", () => selectQueue(n.name));
    }
    nodes.append(g);
  }
  svg.append(edges, nodes, labels);
  setDepths(state.depths, false);
  if (selected) markSelected();
  if (lastResult) light(lastResult, false);  // a redraw (zoom, another tab's change) keeps the path lit
}

function setDepths(depths, flash = true) {
  for (const [queue, depth] of Object.entries(depths)) {
    const t = document.querySelector(`[data-depth="${CSS.escape(queue)}"]`);
    if (!t) continue;
    const shown = depth === null ? "?" : String(depth);
    if (flash && t.textContent !== shown && depth > Number(t.textContent)) {
      const badge = t.parentNode;
      badge.classList.add("rise");
      setTimeout(() => badge.classList.remove("rise"), 900);
    }
    t.textContent = shown;
  }
  if (selected && selected in depths) $("queue-depth").textContent = depths[selected] ?? "?";
}

function light(result, run = true) {
  lastResult = result;
  document.querySelectorAll(".lit, .tried").forEach((n) => n.classList.remove("lit", "tried"));
  document.querySelectorAll(".dot").forEach((n) => n.remove());
  const mark = (attr, ids, cls) => ids.forEach((id) =>
    document.querySelectorAll(`[${attr}="${CSS.escape(id)}"]`).forEach((n) => n.classList.add(cls)));
  mark("data-edge", result.lit.tried, "tried");
  mark("data-label", result.lit.tried, "tried");
  mark("data-edge", result.lit.edges, "lit");
  mark("data-label", result.lit.edges, "lit");
  mark("data-node", result.lit.exchanges, "lit");
  mark("data-node", result.lit.queues, "lit");
  for (const id of run ? result.lit.edges : []) {  // a message running along each edge it took
    const path = document.querySelector(`[data-edge="${CSS.escape(id)}"] path`);
    if (!path) continue;
    const dot = el("circle", { r: 5, class: "dot" });
    dot.append(el("animateMotion", { dur: "0.7s", path: path.getAttribute("d"), fill: "freeze", repeatCount: "1" }));
    $("drawing").append(dot);
  }
}

// ------------------------------------------------------------------ the page around it

function render() {
  $("broker").textContent = `broker: ${state.broker}` + (state.server_version ? ` (RabbitMQ ${state.server_version})` : "");
  const profile = $("profile");
  profile.replaceChildren(...state.profiles.map((p) => new Option(`RabbitMQ ${p}`, p)));
  profile.value = state.profile;
  profile.hidden = state.live;
  $("rules").textContent = state.live ? `of the broker: ${state.rules}` : "";
  const exchange = $("exchange"), was = exchange.value;
  exchange.replaceChildren(...state.exchanges.map((n) => new Option(n === "" ? "(default exchange)" : n, n)));
  exchange.value = exchange.options.length && state.exchanges.includes(was) ? was : (state.exchanges[1] ?? "");
  const demos = $("demos");
  demos.replaceChildren(...state.demos.map((d) => {
    const b = document.createElement("button");
    b.className = "demo" + (state.demo === d.name ? " active" : "");
    b.dataset.demo = d.name;
    b.textContent = d.name;
    b.title = d.summary;
    b.addEventListener("click", () => loadDemo(d.name));
    return b;
  }));
  $("demo-bar").hidden = !state.demo;
  $("demo-name").textContent = state.demo ? `demo ${state.demo}` : "";
  if (selected && !state.queues.includes(selected)) { selected = null; $("queue-panel").hidden = true; }
  draw();
}

async function refresh() {
  state = await api("/api/state");
  steps = state.steps;
  render();
}

function formValues() {
  return { exchange: $("exchange").value, routing_key: $("routing-key").value, headers: $("headers").value,
    cc: $("cc").value, bcc: $("bcc").value, body: $("body").value };
}

async function publish(values) {
  const result = await api("/api/publish", values);
  $("result").hidden = false;
  const verdict = $("verdict");
  verdict.textContent = result.verdict;
  verdict.className = result.unroutable ? "unroutable" : "routed";
  $("notes").replaceChildren(...result.notes.map((n) => Object.assign(document.createElement("li"), { textContent: n })));
  $("trace").replaceChildren(...result.trace.map((s) => {
    const li = document.createElement("li");
    li.className = s.matched ? "matched" : "missed";
    const where = s.exchange === "" ? "(default exchange)" : s.exchange;
    li.textContent = `${s.matched ? "\u2713" : "\u2717"} ${where}${s.destination ? " \u2192 " + s.destination : ""}: ${s.reason}`;
    return li;
  }));
  light(result);
  setDepths(result.depths);
  return result;
}

function fill(step) {
  $("exchange").value = step.exchange;
  $("routing-key").value = step.routing_key;
  $("headers").value = Object.entries(step.headers).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n");
  $("cc").value = ""; $("bcc").value = "";
  $("body").value = step.body;
}

async function nextStep() {
  if (stepAt >= steps.length) { stopPlaying(`done: ${steps.length} messages published`); return false; }
  const step = steps[stepAt++];
  $("demo-status").textContent = `step ${stepAt}/${steps.length}: ${step.title}`;
  fill(step);
  try { await publish(formValues()); } catch (e) { stopPlaying("stopped by an error"); return false; }
  if (stepAt >= steps.length) stopPlaying(`done: ${steps.length} messages published (step ${stepAt}/${steps.length}: ${step.title})`);
  return true;
}

function stopPlaying(text) {
  if (playing) { clearTimeout(playing); playing = null; }
  if (text) $("demo-status").textContent = text;
}

function play() {
  stopPlaying();
  if (stepAt >= steps.length) stepAt = 0;
  const tick = async () => { playing = null; if (await nextStep() && stepAt < steps.length) playing = setTimeout(tick, 1300); };
  playing = setTimeout(tick, 50);
}

async function loadDemo(name) {
  stopPlaying();
  state = await api("/api/load", { name });
  steps = state.steps;
  stepAt = 0;
  lastResult = null;
  $("result").hidden = true;
  render();
  if (name) { $("demo-status").textContent = `${steps.length} messages to publish, one by one`; play(); }
}

async function selectQueue(name) {
  selected = name;
  $("queue-panel").hidden = false;
  $("queue-name").textContent = name;
  $("queue-depth").textContent = state.depths[name] ?? "?";
  $("messages").replaceChildren();
  markSelected();
}

function markSelected() {
  document.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
  const node = document.querySelector(`[data-node="${CSS.escape("queue:" + selected)}"]`);
  if (node) node.classList.add("selected");
}

async function peek() {
  const answer = await api("/api/peek", { queue: selected });
  setDepths(answer.depths, false);
  const items = answer.messages.map((m) => {
    const li = document.createElement("li");
    const head = document.createElement("div");
    head.textContent = `from ${m.exchange || "(default exchange)"}, key ${JSON.stringify(m.routing_key)}` +
      (m.redelivered ? ", redelivered" : "") + ` (${m.size} bytes)`;
    const pre = document.createElement("pre");
    const headers = Object.keys(m.headers).length ? JSON.stringify(m.headers) + "\n" : "";
    pre.textContent = headers + (m.body || "(empty body)");
    li.append(head, pre);
    return li;
  });
  $("messages").replaceChildren(...(items.length ? items : [Object.assign(document.createElement("li"), { textContent: "(the queue is empty)" })]));
}

async function purge() {
  const answer = await api("/api/purge", { queue: selected });
  setDepths(answer.depths, false);
  $("messages").replaceChildren(Object.assign(document.createElement("li"), { textContent: `purged ${answer.purged} message(s)` }));
}

function follow() {  // queue depths as server-sent events; the browser reconnects by itself
  const events = new EventSource("/api/events");
  events.addEventListener("depths", (e) => {
    const data = JSON.parse(e.data);
    if (state && data.version !== state.version) { refresh(); return; }  // another tab loaded a demo
    if (state) { state.depths = data.depths; setDepths(data.depths); }
  });
}

function setZoom(z) { zoom = Math.min(2, Math.max(0.3, z)); draw(); }

document.addEventListener("DOMContentLoaded", async () => {
  $("publish-form").addEventListener("submit", (e) => { e.preventDefault(); stopPlaying(); publish(formValues()).catch(() => {}); });
  $("profile").addEventListener("change", async (e) => {
    state = await api("/api/profile", { profile: e.target.value }).catch(() => state);
    render();
  });
  $("error-close").addEventListener("click", () => { $("error").hidden = true; });
  $("demo-next").addEventListener("click", () => { stopPlaying(); if (stepAt >= steps.length) stepAt = 0; nextStep(); });
  $("demo-play").addEventListener("click", play);
  $("demo-stop").addEventListener("click", () => stopPlaying("stopped"));
  $("demo-leave").addEventListener("click", () => loadDemo(""));
  $("peek").addEventListener("click", () => peek().catch(() => {}));
  $("purge").addEventListener("click", () => purge().catch(() => {}));
  $("zoom-in").addEventListener("click", () => setZoom(zoom * 1.25));
  $("zoom-out").addEventListener("click", () => setZoom(zoom / 1.25));
  $("zoom-fit").addEventListener("click", () => {
    const box = $("canvas").getBoundingClientRect();
    // fit the width; a tall drawing scrolls rather than shrink below legible
    setZoom(Math.max(0.6, Math.min((box.width - 20) / state.drawing.width, (box.height - 60) / state.drawing.height, 1.5)));
  });
  await refresh().catch(() => {});
  if (state && state.demo) $("demo-status").textContent = `${steps.length} messages to publish: next step, or play all`;
  follow();
});
