// Delight's live graph page: Eliza's chat turn and a goal's decomposition, streamed from the
// public API (which may be another origin: set "API" at sign-in, or ?api= in the address).
import { GraphView } from "./graph.js";
import { errorOf, stream } from "./sse.js";

const $ = (id) => document.getElementById(id);
const session = {
  api: "",
  token: "",
  threadId: null,
  graphs: {},
};

// --- API -----------------------------------------------------------------------------------

function url(path) {
  return `${session.api}${path}`;
}

function headers(json = false) {
  const h = { Authorization: `Bearer ${session.token}` };
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function call(method, path, body) {
  const response = await fetch(url(path), {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

// --- sign in -------------------------------------------------------------------------------

function normaliseApi(value) {
  const v = (value || "").trim().replace(/\/+$/, "");
  return v || location.origin;
}

async function signIn({ api, user = "", token = "" }) {
  session.api = normaliseApi(api);
  session.token = token ? token.trim() : `dev:${user.trim()}`;
  // A cheap authenticated call: it proves the token and the origin (CORS) before showing the app.
  const history = await call("GET", "/api/v1/companion/history?limit=1");
  sessionStorage.setItem("delight", JSON.stringify({ api: session.api, token: session.token }));
  $("who").textContent = session.token.startsWith("dev:") ? session.token.slice(4) : "bearer token";
  $("where").textContent = session.api;
  $("whoami").hidden = false;
  $("signin").hidden = true;
  $("app").hidden = false;
  const [chat, goal] = await Promise.all([
    call("GET", "/assistants/chat/graph"),
    call("GET", "/assistants/goal_decomposition/graph"),
  ]);
  session.graphs.chat = new GraphView($("chat-graph"), { ...chat, name: "chat" });
  session.graphs.goal = new GraphView($("goal-graph"), { ...goal, name: "goal_decomposition" });
  // Continue the newest conversation, as Delight's app does.
  const latest = history.conversations[0];
  $("messages").replaceChildren();
  setThread(latest ? latest.id : null);
  for (const m of latest ? latest.messages : []) bubble(m.role, m.content).dataset.state = "complete";
  document.body.dataset.ready = "true";
}

function signOut() {
  sessionStorage.removeItem("delight");
  location.search = "";
}

// --- chat ----------------------------------------------------------------------------------

function setThread(id) {
  session.threadId = id;
  $("thread-id").textContent = id || "new";
}

function bubble(role, text = "") {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  const body = document.createElement("p");
  body.className = "text";
  body.textContent = text;
  li.appendChild(body);
  $("messages").appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function fmt(n, digits = 2) {
  return Number(n).toFixed(digits);
}

function showTurn(body) {
  const scores = Object.entries(body.emotion.scores || {}).filter(([, v]) => v >= 0.01).sort((a, b) => b[1] - a[1]).slice(0, 3);
  $("emotion").textContent = `${body.emotion.dominant}${scores.length ? ` (${scores.map(([k, v]) => `${k} ${fmt(v)}`).join(", ")})` : ""}`;
  const list = $("memories");
  list.replaceChildren();
  for (const m of body.memories) {
    const li = document.createElement("li");
    const content = document.createElement("span");
    content.className = "content";
    content.textContent = m.content;
    content.title = m.content;
    li.appendChild(content);
    const meta = document.createElement("small");
    meta.textContent = `${m.tier} · ${fmt(m.score)}`;
    li.appendChild(meta);
    list.appendChild(li);
  }
  if (!body.memories.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "none recalled";
    list.appendChild(li);
  }
  const p = body.progress || {};
  $("progress").textContent = `streak ${p.streak_days ?? 0} d · DCI ${fmt(p.dci ?? 0)} (${p.zone ?? "–"}) · ${p.completed ?? 0} done, ${p.skipped ?? 0} skipped this week`;
  const u = body.usage;
  $("usage").textContent = `${u.input_tokens} in + ${u.output_tokens} out tokens · $${fmt(u.cost_usd, 6)}${body.degraded.length ? ` · fell back: ${body.degraded.join(", ")}` : ""}`;
}

async function send(message) {
  const graph = session.graphs.chat;
  graph.reset();
  bubble("user", message).dataset.state = "complete";
  const reply = bubble("assistant");
  reply.dataset.state = "streaming";
  const text = reply.querySelector(".text");
  $("send").disabled = true;
  try {
    await stream(url("/api/v1/chat/stream"), {
      method: "POST",
      headers: headers(true),
      body: JSON.stringify({ message, thread_id: session.threadId }),
      onEvent(type, data) {
        if (type === "metadata") setThread(data.thread_id);
        else if (type === "step") graph.step(data);
        else if (type === "token") text.appendChild(document.createTextNode(data.content));
        else if (type === "complete") {
          if (!text.textContent) text.textContent = data.reply;
          showTurn(data);
          reply.dataset.state = "complete";
        } else if (type === "error") {
          reply.dataset.state = "error";
          text.textContent = data.message;
        }
      },
    });
    if (reply.dataset.state === "streaming") throw new Error("the stream ended before the turn did");
  } catch (err) {
    reply.dataset.state = "error";
    text.textContent = err.message;
  } finally {
    $("send").disabled = false;
  }
}

// --- goals ---------------------------------------------------------------------------------

function milestoneItem({ sequence, title, missions }) {
  const li = document.createElement("li");
  li.className = "milestone";
  li.dataset.sequence = sequence;
  const h = document.createElement("strong");
  h.textContent = title;
  li.appendChild(h);
  const ul = document.createElement("ul");
  for (const m of missions || []) {
    const item = document.createElement("li");
    item.textContent = `${m.title} · ${m.estimated_minutes} min · ${m.energy_level}`;
    ul.appendChild(item);
  }
  li.appendChild(ul);
  return li;
}

async function createGoal(form) {
  const status = $("goal-status");
  const list = $("milestones");
  const graph = session.graphs.goal;
  graph.reset();
  list.replaceChildren();
  $("create-goal").disabled = true;
  status.dataset.state = "creating";
  status.textContent = "Creating the goal…";
  try {
    const created = await call("POST", "/api/v1/goals", form);
    const runId = created.decomposition_run_id;
    status.dataset.state = "planning";
    status.textContent = `“${created.goal.title}” created (${created.emotion?.dominant ?? "neutral"}); planning milestones…`;
    await stream(url(`/api/v1/runs/${runId}/stream`), {
      headers: headers(),
      onEvent(type, data) {
        if (type === "step") graph.step(data);
        else if (type === "milestone") {
          const items = [...list.children];
          const next = items.find((li) => Number(li.dataset.sequence) > data.sequence);
          list.insertBefore(milestoneItem(data), next || null);
        } else if (type === "complete") {
          const r = data.result || {};
          status.dataset.state = "complete";
          status.textContent = `Planned: ${r.milestones ?? list.children.length} milestones, ${r.missions ?? "?"} missions.`;
        } else if (type === "error") {
          status.dataset.state = "error";
          status.textContent = `Planning failed: ${data.message}`;
        }
      },
    });
    if (status.dataset.state === "planning") throw new Error("the run stream ended before the run did");
  } catch (err) {
    status.dataset.state = "error";
    status.textContent = err.message;
  } finally {
    $("create-goal").disabled = false;
  }
}

// --- wiring --------------------------------------------------------------------------------

function showTab(name) {
  for (const b of document.querySelectorAll("[role=tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  $("tab-chat").hidden = name !== "chat";
  $("tab-goal").hidden = name !== "goal";
}

function start() {
  const params = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem("delight") || "null");
  $("api-base").value = params.get("api") || saved?.api || "";

  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("signin-error").textContent = "";
    const token = $("bearer").value.trim();
    const user = $("dev-user").value.trim();
    if (!token && !user) { $("signin-error").textContent = "Enter a user id (dev mode) or paste a token."; return; }
    try {
      await signIn({ api: $("api-base").value, user, token });
    } catch (err) {
      $("signin").hidden = false;
      $("app").hidden = true;
      $("signin-error").textContent = err.status === 401 ? `Not signed in: ${err.message}` : `Cannot reach the API: ${err.message}`;
    }
  });
  $("sign-out").addEventListener("click", signOut);
  $("new-conversation").addEventListener("click", () => { setThread(null); $("messages").replaceChildren(); });
  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const message = $("message").value.trim();
    if (!message) return;
    $("message").value = "";
    send(message);
  });
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("chat-form").requestSubmit(); }
  });
  $("goal-form").addEventListener("submit", (e) => {
    e.preventDefault();
    createGoal({
      title: $("goal-title").value,
      description: $("goal-description").value,
      value_category: $("goal-category").value,
      ...($("goal-date").value ? { target_date: $("goal-date").value } : {}),
    });
  });
  for (const b of document.querySelectorAll("[role=tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));
  if (saved && !params.get("api")) signIn({ api: saved.api, token: saved.token }).catch(() => signOut());
}

start();
