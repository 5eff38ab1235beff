"""The JS SDK (`@langchain/langgraph-sdk` 2.x from npm, the client `useStream` and Agent Chat UI are
built on), run by node against the real server: threads, `runs.wait`, `runs.stream`, `getState`.
`make test` installs tests/js with `npm ci`; without node or its packages this test fails, loudly."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

from core.settings import ROOT
from tests.support.servers import ApiServer, clean_env

JS = ROOT / "tests" / "js"


def test_the_js_sdk_creates_threads_waits_streams_and_reads_state(agent_api: ApiServer) -> None:
    node = shutil.which("node")
    assert node, "node (20+) is required for the JS SDK test: install node and npm"
    assert (JS / "node_modules" / "@langchain" / "langgraph-sdk").is_dir(), (
        "tests/js has no node_modules: run `make test` (it runs `npm ci` there) or `cd tests/js && npm ci`"
    )
    user = f"js-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [node, "sdk.mjs"],
        cwd=JS,
        env=clean_env(API_URL=agent_api.url, TOKEN=f"dev:{user}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert "chat" in out["assistants"] and len(out["assistants"]) == 10
    thread = out["thread"]["thread_id"]
    assert out["thread"]["metadata"] == {"client": "js"}
    assert out["wait"]["reply"]
    events = [e["event"] for e in out["events"]]
    assert events[0] == "metadata" and {"values", "messages", "updates"} <= set(events)
    tokens = [e["data"][0]["content"] for e in out["events"] if e["event"] == "messages"]
    assert len(tokens) > 3
    final = [e["data"] for e in out["events"] if e["event"] == "values"][-1]
    assert "Tom" in final["reply"]  # recalled from the first turn's memory
    humans = [m["content"] for m in out["state"]["values"]["messages"] if m["type"] == "human"]
    assert humans == ["My brother's name is Tom.", "What is my brother's name?"]
    assert out["state"]["checkpoint"]["thread_id"] == thread
    assert len(out["history"]) == 3 and out["search"] == [thread]
    assert out["missing"] == "404"
