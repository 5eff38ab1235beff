"""Bad input on every Agent Server route: a clear 4xx whose message names the field or feature,
and nothing written (no thread, no run, no checkpoint). Fields this service does not serve are
refused by name, never silently dropped."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.agent.conftest import say

BAD_RUNS: list[tuple[dict[str, Any], int, str]] = [
    ({"webhook": "https://example.com/hook"}, 422, "webhook"),
    ({"feedback_keys": ["score"]}, 422, "feedback_keys"),
    ({"after_seconds": 5}, 422, "after_seconds"),
    ({"langsmith_tracer": {"project_name": "p"}}, 422, "langsmith_tracer"),
    ({"strict_resume": True}, 422, "strict_resume"),
    ({"context": {"user_id": "someone-else"}}, 422, "context"),
    ({"context": {"timezone": "Asia/Tokyo", "now": "2030-01-01T00:00:00Z"}}, 422, "context"),
    ({"config": {"configurable": {"user_id": "someone-else"}}}, 422, "config.configurable"),
    ({"config": {"configurable": {"thread_id": str(uuid.uuid4())}}}, 422, "config.configurable"),
    ({"config": {"tags": ["x"]}}, 422, "config.tags"),
    ({"config": {"recursion_limit": 0}}, 422, "recursion_limit"),
    ({"config": {"callbacks": []}}, 422, "callbacks"),
    ({"stream_mode": "telepathy"}, 422, "stream_mode"),
    ({"stream_mode": ["values", "lifecycle"]}, 422, "stream_mode"),
    ({"multitask_strategy": "shout"}, 422, "multitask_strategy"),
    ({"durability": "forever"}, 422, "durability"),
    ({"assistant_id": "no-such-graph"}, 404, "assistant"),
    ({"assistant_id": str(uuid.uuid4())}, 404, "assistant"),
    ({"surprise": 1}, 422, "surprise"),
    ({"input": {"feeling": 3}}, 422, "feeling"),
    ({"input": {"mood": "ok"}}, 422, "mood"),
    ({"input": "just a string"}, 422, "input"),
    ({"input": {"feeling": "bad\u0000byte"}}, 422, "NUL"),
    ({"metadata": {"k": "nul\u0000"}}, 422, "NUL"),
    ({"interrupt_before": ["no_such_node"]}, 422, "interrupt_before"),
    ({"interrupt_after": ["no_such_node"]}, 422, "interrupt_after"),
    ({"input": None, "command": {"goto": "no_such_node"}}, 422, "command.goto"),
    ({"input": None, "command": {"update": {"not_a_key": 1}}}, 422, "command.update"),
    ({"command": {"resume": 1}}, 422, "input and command"),
    ({"on_completion": "keep"}, 422, "on_completion"),
    ({"checkpoint": {"checkpoint_ns": "inner", "checkpoint_id": "x"}}, 422, "checkpoint_ns"),
    ({"checkpoint": {"thread_id": str(uuid.uuid4()), "checkpoint_id": "x"}}, 422, "checkpoint.thread_id"),
]


async def test_bad_runs_are_refused_by_name_and_start_nothing(agent_api) -> None:
    user = f"bad-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer dev:{user}"}
    async with httpx.AsyncClient(base_url=agent_api.url, headers=headers, timeout=30) as http:
        thread = (await http.post("/threads", json={})).json()["thread_id"]
        for extra, status, words in BAD_RUNS:
            body = {"assistant_id": "adaptive_mission", "input": {"feeling": "ok"}, **extra}
            for path in (
                f"/threads/{thread}/runs/wait",
                f"/threads/{thread}/runs/stream",
                f"/threads/{thread}/runs",
            ):
                r = await http.post(path, json=body)
                assert r.status_code == status and words in r.text, (path, extra, r.status_code, r.text)
            if "on_completion" not in extra and "checkpoint" not in extra:
                r = await http.post("/runs/wait", json=body)
                assert r.status_code == status and words in r.text, ("/runs/wait", extra, r.text)
        r = await http.post("/runs/wait", json={"assistant_id": "chat", "command": {"resume": "x"}})
        assert r.status_code == 422 and "resume" in r.text
        r = await http.post(
            "/runs/wait", json={"assistant_id": "chat", "input": say("x"), "checkpoint_id": "x"}
        )
        assert r.status_code == 422 and "checkpoint" in r.text
        r = await http.post(
            f"/threads/{thread}/runs", json={"assistant_id": "chat", "on_disconnect": "cancel"}
        )
        assert r.status_code == 422 and "on_disconnect" in r.text
        r = await http.post(
            f"/threads/{uuid.uuid4()}/runs/wait", json={"assistant_id": "chat", "input": say("x")}
        )
        assert r.status_code == 404 and "not found" in r.text  # if_not_exists defaults to reject
        r = await http.post(
            f"/threads/{thread}/runs/wait",
            content=b'{"assistant_id": "chat", "input": ',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and "JSON" in r.text
        r = await http.post(
            f"/threads/{thread}/runs/wait", json={"assistant_id": "chat", "input": {"x": "y" * 70_000}}
        )
        assert r.status_code == 413
        # Nothing was written: no run, no other thread, no checkpoint.
        assert (await http.get(f"/threads/{thread}/runs")).json() == []
        assert [t["thread_id"] for t in (await http.post("/threads/search", json={})).json()] == [thread]
        assert (await http.get(f"/threads/{thread}/history")).json() == []


async def test_bad_thread_assistant_and_run_requests_are_clear_4xx(agent_api) -> None:
    user = f"bad-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer dev:{user}"}
    async with httpx.AsyncClient(base_url=agent_api.url, headers=headers, timeout=30) as http:
        thread = (await http.post("/threads", json={})).json()["thread_id"]
        run = await http.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "adaptive_mission"})
        assert run.status_code == 200, run.text
        run_id = (await http.get(f"/threads/{thread}/runs")).json()[0]["run_id"]
        cases: list[tuple[str, str, Any, int, str]] = [
            ("POST", "/threads", {"thread_id": "not-a-uuid"}, 422, "thread ID"),
            ("POST", "/threads", {"ttl": {"strategy": "delete", "ttl": 5}}, 422, "ttl"),
            ("POST", "/threads", {"supersteps": [{"updates": []}]}, 422, "supersteps"),
            ("POST", "/threads", {"metadata": {"x": "\u0000"}}, 422, "NUL"),
            ("POST", "/threads", {"metadata": {"graph_id": "nope"}}, 422, "graph_id"),
            ("POST", "/threads", {"if_exists": "sometimes"}, 422, "if_exists"),
            ("POST", "/threads", {"colour": "red"}, 422, "colour"),
            ("POST", "/threads/search", {"values": {"reply": "x"}}, 422, "values"),
            ("POST", "/threads/search", {"extract": {"a": "values.x"}}, 422, "extract"),
            ("POST", "/threads/search", {"limit": 0}, 422, "limit"),
            ("POST", "/threads/search", {"sort_by": "colour"}, 422, "sort_by"),
            ("POST", "/threads/search", {"status": "asleep"}, 422, "status"),
            ("POST", "/threads/search", {"ids": ["nope"]}, 422, "thread ID"),
            ("POST", "/threads/count", {"values": {"a": 1}}, 422, "values"),
            ("GET", "/threads/not-a-uuid", None, 422, "thread ID"),
            ("PATCH", f"/threads/{thread}", {"ttl": {"ttl": 1}}, 422, "ttl"),
            ("PATCH", f"/threads/{thread}", {"metadata": {"graph_id": "chat"}}, 422, "graph_id"),
            ("GET", f"/threads/{thread}/history?limit=0", None, 422, "limit"),
            ("POST", f"/threads/{thread}/history", {"limit": 5000}, 422, "limit"),
            (
                "POST",
                f"/threads/{thread}/state",
                {"values": {"path": "x"}, "as_node": "nope"},
                422,
                "as_node",
            ),
            ("POST", f"/threads/{thread}/state", {"values": {"nope": 1}}, 422, "nope"),
            ("POST", f"/threads/{thread}/state/checkpoint", {}, 422, "checkpoint"),
            ("GET", f"/threads/{thread}/state/{uuid.uuid4()}", None, 404, "Checkpoint"),
            ("POST", "/assistants", {"graph_id": "chat"}, 405, "read-only"),
            ("PATCH", "/assistants/chat", {"name": "x"}, 405, "read-only"),
            ("DELETE", "/assistants/chat", None, 405, "read-only"),
            ("GET", "/assistants/nope", None, 404, "assistant"),
            ("GET", "/assistants/chat/graph?xray=-1", None, 422, "xray"),
            ("POST", "/assistants/search", {"limit": 0}, 422, "limit"),
            ("POST", "/runs/crons", {"assistant_id": "chat", "schedule": "* * * * *"}, 404, "crons"),
            ("POST", f"/threads/{thread}/runs/crons", {"assistant_id": "chat"}, 404, "crons"),
            ("POST", "/runs/crons/search", {}, 404, "crons"),
            ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}}, 404, "store"),
            ("POST", "/store/items/search", {}, 404, "store"),
            ("GET", f"/threads/{thread}/stream", None, 404, "thread streams"),
            ("POST", "/threads/prune", {"thread_ids": [thread]}, 404, "pruning"),
            ("POST", f"/threads/{thread}/copy", None, 404, "copying"),
            ("POST", "/runs/cancel", {"thread_id": thread, "run_ids": [run_id]}, 404, "bulk cancel"),
            ("POST", f"/threads/{thread}/runs/{run_id}/cancel?action=explode", None, 422, "action"),
            ("GET", f"/threads/{thread}/runs?status=asleep", None, 422, "status"),
            ("GET", f"/threads/{thread}/runs?select=colour", None, 422, "select"),
            (
                "GET",
                f"/threads/{thread}/runs/{run_id}/stream?stream_mode=telepathy",
                None,
                422,
                "stream_mode",
            ),
            ("GET", f"/threads/{thread}/runs/not-a-uuid", None, 422, "run ID"),
            ("DELETE", f"/threads/{thread}/runs/{uuid.uuid4()}", None, 404, "not found"),
            ("POST", "/runs/batch", [], 422, "body"),
        ]
        for method, path, body, status, words in cases:
            r = await http.request(method, path, json=body)
            assert r.status_code == status and words in r.text, (method, path, body, r.status_code, r.text)
        # A graph that did not change, a thread as it was.
        got = (await http.get(f"/threads/{thread}")).json()
        assert got["metadata"] == {
            "graph_id": "adaptive_mission",
            "assistant_id": got["metadata"]["assistant_id"],
        }
        assert len((await http.post("/threads/search", json={})).json()) == 1
        assert len((await http.get(f"/threads/{thread}/runs")).json()) == 1
