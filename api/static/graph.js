// A workflow drawn as SVG from the Agent Server's `/assistants/{id}/graph` JSON
// ({nodes: [{id}], edges: [{source, target, conditional}]}): nodes in layers by longest path
// from __start__, top to bottom, ordered to keep edges short. Nodes light up from `step` events.

const SVG = "http://www.w3.org/2000/svg";
const HANDLER = "__error_handler__";
const NODE_H = 40;
const LAYER_GAP = 44;
const NODE_GAP = 14;
const PAD = 12;

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function layers(ids, edges) {
  const succ = new Map(ids.map((id) => [id, []]));
  for (const e of edges) if (succ.has(e.source) && succ.has(e.target)) succ.get(e.source).push(e.target);
  const depth = new Map(ids.map((id) => [id, 0]));
  // Longest path by relaxation; a cycle (none in these graphs) stops after |V| rounds.
  for (let round = 0; round < ids.length; round++) {
    let changed = false;
    for (const [src, targets] of succ) {
      for (const t of targets) {
        if (t !== src && depth.get(t) < depth.get(src) + 1) { depth.set(t, depth.get(src) + 1); changed = true; }
      }
    }
    if (!changed) break;
  }
  // __end__ sits alone at the bottom.
  if (depth.has("__end__")) depth.set("__end__", Math.max(...[...depth].filter(([k]) => k !== "__end__").map(([, d]) => d)) + 1);
  const rows = [];
  for (const id of ids) (rows[depth.get(id)] ||= []).push(id);
  return rows.filter(Boolean);
}

export class GraphView {
  constructor(container, json) {
    this.container = container;
    this.nodes = new Map();
    this.runs = new Map();
    const handlers = new Set(json.nodes.filter((n) => n.id.startsWith(HANDLER)).map((n) => n.id.slice(HANDLER.length)));
    const ids = json.nodes.map((n) => n.id).filter((id) => !id.startsWith(HANDLER));
    const edges = json.edges.filter((e) => ids.includes(e.source) && ids.includes(e.target));
    const rows = layers(ids, edges);
    const width = (id) => (id.startsWith("__") ? 64 : Math.max(96, id.length * 7.4 + 22));
    // One barycentre pass: order each row by the mean position of its predecessors.
    const pos = new Map();
    rows.forEach((row, r) => {
      if (r > 0) {
        const bary = (id) => {
          const ps = edges.filter((e) => e.target === id && pos.has(e.source)).map((e) => pos.get(e.source));
          return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
        };
        row.sort((a, b) => bary(a) - bary(b));
      }
      row.forEach((id, i) => pos.set(id, i - (row.length - 1) / 2));
    });
    const rowWidth = (row) => row.reduce((w, id) => w + width(id), 0) + NODE_GAP * (row.length - 1);
    const total = Math.max(...rows.map(rowWidth)) + 2 * PAD;
    const height = rows.length * NODE_H + (rows.length - 1) * LAYER_GAP + 2 * PAD;
    const svg = el("svg", { viewBox: `0 0 ${total} ${height}`, role: "img", "aria-label": json.name || "graph" });
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: `arrow-${container.id}`, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }, marker);
    const box = new Map();
    rows.forEach((row, r) => {
      let x = (total - rowWidth(row)) / 2;
      const y = PAD + r * (NODE_H + LAYER_GAP);
      for (const id of row) {
        box.set(id, { x, y, w: width(id), h: NODE_H });
        x += width(id) + NODE_GAP;
      }
    });
    const edgeLayer = el("g", { class: "edges" }, svg);
    for (const e of edges) {
      const a = box.get(e.source);
      const b = box.get(e.target);
      const x1 = a.x + a.w / 2;
      const y1 = a.y + a.h;
      const x2 = b.x + b.w / 2;
      const y2 = b.y;
      const bend = Math.max(18, (y2 - y1) / 2);
      el("path", {
        d: `M ${x1} ${y1} C ${x1} ${y1 + bend}, ${x2} ${y2 - bend}, ${x2} ${y2 - 1}`,
        class: e.conditional ? "edge conditional" : "edge",
        "marker-end": `url(#arrow-${container.id})`,
      }, edgeLayer);
    }
    const nodeLayer = el("g", { class: "nodes" }, svg);
    for (const id of ids) {
      const { x, y, w, h } = box.get(id);
      const terminal = id.startsWith("__");
      const g = el("g", { class: `node${terminal ? " terminal" : ""}${handlers.has(id) ? " can-fall-back" : ""}`, "data-node": id, "data-status": "idle" }, nodeLayer);
      const title = el("title", {}, g);
      title.textContent = handlers.has(id) ? `${id}: falls back if it fails or times out` : id;
      el("rect", { x, y, width: w, height: h, rx: terminal ? h / 2 : 8 }, g);
      const label = el("text", { x: x + w / 2, y: terminal ? y + h / 2 + 4 : y + 16, class: "label" }, g);
      label.textContent = terminal ? id.replaceAll("_", "") : id;
      if (!terminal) {
        const ms = el("text", { x: x + w / 2, y: y + 31, class: "ms" }, g);
        ms.textContent = handlers.has(id) ? "↺ may fall back" : "";
      }
      this.nodes.set(id, g);
    }
    container.replaceChildren(svg);
  }

  reset() {
    this.runs.clear();
    for (const g of this.nodes.values()) {
      if (g.dataset.status !== "idle") g.dataset.status = "idle";
      const ms = g.querySelector(".ms");
      if (ms) ms.textContent = g.classList.contains("can-fall-back") ? "↺ may fall back" : "";
    }
  }

  // A `step` event: {node, status: running | ok | degraded | failed, ms}. A node that runs more
  // than once (fan-out, retries) shows how many times and stays "running" while any run is.
  step({ node, status, ms }) {
    const g = this.nodes.get(node);
    if (!g) return;
    const run = this.runs.get(node) || { active: 0, finished: 0, last: null };
    if (status === "running") run.active += 1;
    else { run.active = Math.max(0, run.active - 1); run.finished += 1; run.last = status; }
    this.runs.set(node, run);
    g.dataset.status = run.active > 0 ? "running" : run.last;
    const text = { running: "running…", ok: "done", degraded: "fell back", failed: "failed" }[g.dataset.status] || g.dataset.status;
    const times = run.finished > 1 ? ` ×${run.finished}` : "";
    const timing = status !== "running" && ms !== null && ms !== undefined ? ` · ${Math.round(ms)} ms` : "";
    g.querySelector(".ms").textContent = `${text}${times}${timing}`;
    if (status !== "running") g.dataset.ms = ms ?? "";
  }
}
