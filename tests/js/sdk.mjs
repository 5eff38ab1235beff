// Drives the service's Agent Server API with the real JS SDK (@langchain/langgraph-sdk), as a web
// app would: threads, runs.wait, runs.stream, getState. Prints one JSON object for
// tests/agent/test_js_sdk.py to check. Usage: API_URL=... TOKEN=dev:someone node sdk.mjs
import { Client } from "@langchain/langgraph-sdk";

const client = new Client({
  apiUrl: process.env.API_URL,
  defaultHeaders: { Authorization: `Bearer ${process.env.TOKEN}` },
});

const out = {};
out.assistants = (await client.assistants.search({ limit: 20 })).map((a) => a.graph_id);
const thread = await client.threads.create({ metadata: { client: "js" } });
out.thread = thread;
out.wait = await client.runs.wait(thread.thread_id, "chat", {
  input: { messages: [{ role: "user", content: "My brother's name is Tom." }] },
});

out.events = [];
for await (const part of client.runs.stream(thread.thread_id, "chat", {
  input: { messages: [{ role: "user", content: "What is my brother's name?" }] },
  streamMode: ["values", "messages-tuple", "updates"],
})) {
  out.events.push({ event: part.event, data: part.data });
}

out.state = await client.threads.getState(thread.thread_id);
out.history = await client.threads.getHistory(thread.thread_id, { limit: 3 });
out.search = (await client.threads.search({ metadata: { client: "js" } })).map((t) => t.thread_id);
try {
  await client.threads.get("00000000-0000-4000-8000-000000000000");
  out.missing = "found";
} catch (err) {
  out.missing = String(err.status ?? err.message);
}
console.log(JSON.stringify(out));
