// Server-Sent Events over fetch: EventSource can neither POST nor send an Authorization header,
// and the graph streams need both. Parses the text/event-stream format (event, data, id,
// comments) and, for GET streams, reconnects with Last-Event-ID until a final event arrives.

export class HttpError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

export async function errorOf(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.detail) detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (_) { /* not JSON */ }
  return new HttpError(response.status, detail);
}

async function readEvents(response, onEvent, state) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = { type: "message", data: [], id: null };
  const dispatch = () => {
    if (event.id !== null) state.lastId = event.id;
    if (event.data.length) {
      const raw = event.data.join("\n");
      let data;
      try { data = JSON.parse(raw); } catch (_) { data = raw; }
      if (state.final.includes(event.type)) state.done = true;
      onEvent(event.type, data, event.id);
    }
    event = { type: "message", data: [], id: null };
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") { dispatch(); continue; }
      if (line.startsWith(":")) continue; // comment (keep-alive ping)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.type = value;
      else if (field === "data") event.data.push(value);
      else if (field === "id") event.id = value;
    }
  }
}

// Streams `url`, calling onEvent(type, data, id) per event. Resolves when a final event
// (`complete`/`error` by default) has arrived or the server ended the stream; GET streams that
// drop before their final event are resumed from the last event id, a few times.
export async function stream(url, { method = "GET", headers = {}, body, onEvent, final = ["complete", "error"], retries = 5, signal } = {}) {
  const state = { lastId: null, done: false, final };
  for (let attempt = 0; ; attempt++) {
    const h = { Accept: "text/event-stream", ...headers };
    if (state.lastId !== null) h["Last-Event-ID"] = state.lastId;
    let response;
    try {
      response = await fetch(url, { method, headers: h, body, signal, cache: "no-store" });
    } catch (err) {
      if (method !== "GET" || attempt >= retries || signal?.aborted) throw err;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    try {
      await readEvents(response, onEvent, state);
    } catch (err) {
      if (method !== "GET" || attempt >= retries || signal?.aborted) throw err;
    }
    // Without event ids there is no point to resume from: the server ended the stream.
    if (state.done || method !== "GET" || attempt >= retries || state.lastId === null) return state;
    await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
  }
}
