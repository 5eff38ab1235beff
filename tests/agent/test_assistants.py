"""Assistants: one per registered workflow, with the ids `langgraph dev` gives them, the workflow
name accepted wherever an assistant id is; graph drawings; and `/schemas` answering for every graph
with input, output, state, config and context schemas, on the service and under `langgraph dev`
(whose context schema used to fail on the process's services)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.settings import ROOT
from graphs.registry import WORKFLOWS
from tests.support.servers import clean_env, free_port

LANGGRAPH_DEV_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def dev_id(workflow: str) -> str:
    return str(uuid.uuid5(LANGGRAPH_DEV_NAMESPACE, workflow))


async def test_one_assistant_per_workflow_with_langgraph_dev_ids(sdk) -> None:
    client = sdk()
    found = await client.assistants.search(limit=100)
    assert {a["graph_id"]: a["assistant_id"] for a in found} == {w: dev_id(w) for w in WORKFLOWS}
    assert await client.assistants.count() == len(WORKFLOWS)
    assert await client.assistants.count(graph_id="chat") == 1
    assert [a["graph_id"] for a in await client.assistants.search(graph_id="chat")] == ["chat"]
    assert [a["graph_id"] for a in await client.assistants.search(name="nudge")] == ["personalized_nudge"]
    assert len(await client.assistants.search(limit=3, offset=8)) == 2
    by_id, by_name = await client.assistants.get(dev_id("chat")), await client.assistants.get("chat")
    assert by_id == by_name and by_id["metadata"] == {"created_by": "system"} and by_id["version"] == 1
    assert by_id["description"] == WORKFLOWS["chat"].description
    assert (await client.assistants.get_versions("chat"))[0]["assistant_id"] == dev_id("chat")


async def test_graph_drawing_with_and_without_xray(sdk) -> None:
    client = sdk()
    drawn = await client.assistants.get_graph(dev_id("chat"))
    nodes = {n["id"] for n in drawn["nodes"]}
    assert {"__start__", "detect_emotion", "retrieve_memories", "load_progress", "compose_reply"} <= nodes
    assert {("compose_reply", "remember_exchange")} <= {(e["source"], e["target"]) for e in drawn["edges"]}
    assert all("id" not in (n.get("data") or {}) for n in drawn["nodes"])
    assert (await client.assistants.get_graph("chat", xray=True))["nodes"]
    assert await client.assistants.get_subgraphs("chat") == {}


def check_schemas(workflow: str, body: dict) -> None:
    assert body["graph_id"] == workflow
    for key in ("input_schema", "output_schema", "state_schema", "config_schema", "context_schema"):
        assert isinstance(body[key], dict) and body[key].get("type") == "object", (workflow, key, body[key])
    assert not {"services", "started"} & set(body["context_schema"]["properties"]), workflow


async def test_schemas_answer_for_every_graph_and_the_context_schema_asks_for_nothing(sdk) -> None:
    client = sdk()
    for workflow in WORKFLOWS:
        body = await client.assistants.get_schemas(workflow)
        check_schemas(workflow, body)
        # The service sets the run's context itself: a client may pass nothing there.
        assert body["context_schema"]["properties"] == {}
    chat = await client.assistants.get_schemas("chat")
    assert "messages" in chat["input_schema"]["properties"] and "reply" in chat["output_schema"]["properties"]
    assert {"messages", "reply", "emotion"} <= set(chat["state_schema"]["properties"])


@pytest.fixture(scope="module")
def langgraph_dev() -> Iterator[str]:
    """`langgraph dev` as `make studio` runs it, on a free port, from a scratch folder (its
    in-memory runtime writes `.langgraph_api/` where it runs)."""
    here = Path(tempfile.mkdtemp(prefix="delight-lgdev-"))
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str(ROOT)]
    config["graphs"] = {k: str(ROOT / v.removeprefix("./")) for k, v in config["graphs"].items()}
    (here / "langgraph.json").write_text(json.dumps(config))
    port = free_port()
    log = (here / "dev.log").open("w+")
    cli = str(Path(sys.executable).parent / "langgraph")
    args = [
        "dev",
        "--no-browser",
        "--no-reload",
        "--port",
        str(port),
        "--config",
        str(here / "langgraph.json"),
    ]
    proc = subprocess.Popen(
        [cli, *args],
        cwd=here,
        env=clean_env(LANGGRAPH_CLI_NO_ANALYTICS="1", LANGGRAPH_NO_VERSION_CHECK="true"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (here / "dev.log").read_text()[-3000:]
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, 15)  # its own process group: the server and its reloader
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


def test_schemas_answer_for_every_graph_under_langgraph_dev(langgraph_dev: str) -> None:
    for workflow in WORKFLOWS:
        r = httpx.get(f"{langgraph_dev}/assistants/{dev_id(workflow)}/schemas", timeout=30)
        assert r.status_code == 200, (workflow, r.text)
        body = r.json()
        check_schemas(workflow, body)
        # What Studio's context form offers there: the user to act as, the timezone, the clock.
        assert set(body["context_schema"]["properties"]) == {"user_id", "timezone", "now"}, workflow
