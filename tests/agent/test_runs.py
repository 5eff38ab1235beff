"""Runs through the real `langgraph-sdk` client over HTTP: every workflow with `runs.wait` and
`runs.stream`, each stream mode, the multitask strategies, join and join-stream after a dropped
connection (Last-Event-ID), cancel, interrupts and resume, failures, stateless runs."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.agent.conftest import first_token, opened, refused, say, until

NOW_WEEK = "2026-W48"


def inputs(goal_id: str) -> dict[str, dict[str, Any]]:
    return {
        "chat": say("I finished my run this morning!"),
        "goal_creation": {
            "goal_id": goal_id,
            "title": "Run a 10k",
            "description": "by spring",
            "value_category": "health",
            "target_date": None,
        },
        "goal_decomposition": {"goal_id": goal_id},
        "adaptive_mission": {"feeling": "a bit tired today"},
        "process_missions": {"mission_ids": [str(uuid.uuid4())]},
        "narrative_beat": {"goal_id": goal_id},
        "weekly_insights": {"week": NOW_WEEK},
        "personalized_nudge": {},
        "weekly_quests": {"week": NOW_WEEK},
        "nightly_maintenance": {"day": "2026-11-29"},
    }


# What each workflow's output must carry (its output schema's key facts).
EXPECTED = {
    "chat": "reply",
    "goal_creation": "goal",
    "goal_decomposition": "milestones",
    "adaptive_mission": "path",
    "process_missions": "results",
    "narrative_beat": "beat",
    "weekly_insights": "insight",
    "personalized_nudge": "reason",
    "weekly_quests": "reason",
    "nightly_maintenance": "results",
}


async def test_every_workflow_runs_with_wait_and_with_stream(sdk) -> None:
    user, admin = sdk(), sdk("admin")  # the two service jobs are admin-only, as on /api/v1/jobs
    workflows = [a["graph_id"] for a in await user.assistants.search(limit=100)]
    assert sorted(workflows) == sorted(EXPECTED)
    goal = str(uuid.uuid4())

    async def both_ways(workflow: str, given: dict[str, Any]) -> None:
        client = admin if workflow in ("weekly_quests", "nightly_maintenance") else user
        assistant = (await client.assistants.get(workflow))["assistant_id"]
        waited_on = (await client.threads.create())["thread_id"]
        out = await client.runs.wait(waited_on, workflow, input=given)
        assert EXPECTED[workflow] in out, (workflow, out)
        [run] = await client.runs.list(waited_on)
        assert run["status"] == "success" and run["assistant_id"] == assistant

        streamed_on = (await client.threads.create())["thread_id"]
        parts = [p async for p in client.runs.stream(streamed_on, workflow, input=given)]
        events = [p.event for p in parts]
        assert events[0] == "metadata" and "error" not in events, (workflow, events)
        assert set(events) == {"metadata", "values"}  # the default mode is `values`
        assert EXPECTED[workflow] in parts[-1].data
        assert [int(p.id) for p in parts] == list(range(1, len(parts) + 1))  # SSE id: the event number
        [run] = await client.runs.list(streamed_on)
        assert run["status"] == "success" and parts[0].data["run_id"] == run["run_id"]

    given = inputs(goal)
    await both_ways("goal_creation", given.pop("goal_creation"))  # the goal the others use
    await asyncio.gather(*(both_ways(w, i) for w, i in given.items()))


async def test_a_service_job_is_refused_to_a_user_who_is_not_admin(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    assert await refused(client.runs.wait(thread, "nightly_maintenance", input={"day": "2026-11-29"})) == 403
    assert await refused(client.runs.create(thread, "weekly_quests", input={"week": NOW_WEEK})) == 403
    assert await client.runs.list(thread) == []


MODES: dict[str, set[str]] = {
    "values": {"values"},
    "updates": {"updates"},
    "messages-tuple": {"messages"},
    "messages": {"messages/metadata", "messages/partial", "messages/complete"},
    "custom": {"custom"},
    "debug": {"debug"},
    "tasks": {"tasks"},
    "checkpoints": {"checkpoints"},
    "events": {"events"},
}


async def test_each_stream_mode_streams_its_own_events_in_langgraph_dev_shapes(sdk) -> None:
    client = sdk()

    async def one(mode: str) -> list[Any]:
        thread = (await client.threads.create())["thread_id"]
        parts = [
            p
            async for p in client.runs.stream(thread, "chat", input=say(f"hello in {mode}"), stream_mode=mode)
        ]
        assert parts[0].event == "metadata"
        assert {p.event for p in parts[1:]} == MODES[mode], mode
        return [p.data for p in parts[1:]]

    seen = dict(zip(MODES, await asyncio.gather(*(one(mode) for mode in MODES)), strict=True))
    assert seen["values"][-1]["reply"]
    assert {"detect_emotion", "compose_reply", "remember_exchange"} <= {k for u in seen["updates"] for k in u}
    message, meta = seen["messages-tuple"][0]
    assert message["type"] == "AIMessageChunk" and meta["langgraph_node"] in (
        "detect_emotion",
        "compose_reply",
    )
    # `messages`: metadata once per message, then the message so far, growing with each chunk.
    metadata = {k: v["metadata"] for d in seen["messages"] if isinstance(d, dict) for k, v in d.items()}
    reply_id = next(k for k, m in metadata.items() if m["langgraph_node"] == "compose_reply")
    so_far = [d[0]["content"] for d in seen["messages"] if isinstance(d, list) and d[0]["id"] == reply_id]
    assert len(so_far) > 3 and len(so_far[-1]) > len(so_far[0])
    assert all(b.startswith(a) for a, b in itertools.pairwise(so_far))
    assert {d["type"] for d in seen["custom"]} == {"step", "token"}
    debug_types = {d["type"] for d in seen["debug"]}
    assert {"checkpoint", "task", "task_result"} <= debug_types
    checkpoint = [d["payload"] for d in seen["debug"] if d["type"] == "checkpoint"][-1]
    assert checkpoint["checkpoint"]["checkpoint_id"] and checkpoint["parent_checkpoint"]["checkpoint_id"]
    assert checkpoint["checkpoint"]["thread_id"] == checkpoint["config"]["configurable"]["thread_id"]
    assert {"compose_reply", "remember_exchange"} <= {t["name"] for t in seen["tasks"]}
    assert all({"config", "values", "next", "metadata"} <= set(c) for c in seen["checkpoints"])
    kinds = {e["event"] for e in seen["events"]}
    assert {"on_chain_start", "on_chain_end", "on_chat_model_stream"} <= kinds
    # The run's own stream chunks feed the other modes; they are not repeated as `events`.
    assert not any(e["event"] == "on_chain_stream" and e["name"] == "chat" for e in seen["events"])

    # Several modes at once, with subgraphs: the same events (these graphs have no subgraph).
    thread = (await client.threads.create())["thread_id"]
    parts = [
        p
        async for p in client.runs.stream(
            thread, "chat", input=say("all of them"), stream_mode=["updates", "custom"], stream_subgraphs=True
        )
    ]
    assert {p.event for p in parts} == {"metadata", "updates", "custom"}


async def test_reject_answers_409_while_the_thread_runs_and_starts_nothing(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    async with opened(client.runs.stream(thread, "chat", input=say("first"), stream_mode="custom")) as first:
        await first_token(first)
        with pytest.raises(ConflictError):
            await client.runs.create(thread, "chat", input=say("second"), multitask_strategy="reject")
        async for _ in first:
            pass
    runs = await client.runs.list(thread)
    assert [r["status"] for r in runs] == ["success"]
    # Idle again: `reject` runs.
    assert (await client.runs.wait(thread, "chat", input=say("third"), multitask_strategy="reject"))["reply"]


async def test_enqueue_runs_after_the_running_one_in_order(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    async with opened(client.runs.stream(thread, "chat", input=say("first"), stream_mode="custom")) as first:
        await first_token(first)
        queued = await client.runs.create(thread, "chat", input=say("second"), multitask_strategy="enqueue")
        assert queued["status"] == "pending"
        assert (await client.threads.get(thread))["status"] == "busy"
        async for _ in first:
            pass
    await client.runs.join(thread, queued["run_id"])
    assert [r["status"] for r in await client.runs.list(thread)] == ["success", "success"]
    humans = [
        m["content"]
        for m in (await client.threads.get_state(thread))["values"]["messages"]
        if m["type"] == "human"
    ]
    assert humans == ["first", "second"]


async def test_interrupt_stops_the_running_run_at_a_step_and_keeps_what_it_did(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    async with opened(client.runs.stream(thread, "chat", input=say("first"), stream_mode="custom")) as first:
        started = await first_token(first)
        newer = await client.runs.create(thread, "chat", input=say("second"), multitask_strategy="interrupt")
        async for _ in first:
            pass
    await client.runs.join(thread, newer["run_id"])
    older = await client.runs.get(thread, started[0].data["run_id"])
    assert older["status"] == "interrupted"
    assert (await client.runs.get(thread, newer["run_id"]))["status"] == "success"
    humans = [
        m["content"]
        for m in (await client.threads.get_state(thread))["values"]["messages"]
        if m["type"] == "human"
    ]
    assert humans == ["first", "second"]  # the interrupted turn's message stays in the thread


async def test_rollback_deletes_the_running_run_and_what_it_wrote(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    async with opened(
        client.runs.stream(thread, "chat", input=say("forget me"), stream_mode="custom")
    ) as first:
        started = await first_token(first)
        newer = await client.runs.create(thread, "chat", input=say("keep me"), multitask_strategy="rollback")
        async for _ in first:
            pass
    await client.runs.join(thread, newer["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.get(thread, started[0].data["run_id"])
    humans = [
        m["content"]
        for m in (await client.threads.get_state(thread))["values"]["messages"]
        if m["type"] == "human"
    ]
    assert humans == ["keep me"]
    history = await client.threads.get_history(thread, limit=100)
    assert all(h["metadata"].get("run_id") != started[0].data["run_id"] for h in history)


async def test_a_dropped_stream_is_joined_again_from_its_last_event_id(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    async with opened(
        client.runs.stream(thread, "chat", input=say("tell me something"), stream_mode=["custom", "values"])
    ) as stream:
        before = await first_token(stream)
    run_id = before[0].data["run_id"]
    assert (await client.runs.get(thread, run_id))["status"] == "running"  # on_disconnect: continue
    after = [p async for p in client.runs.join_stream(thread, run_id, last_event_id=before[-1].id)]
    ids = [int(p.id) for p in before + after]
    assert ids == list(range(1, len(ids) + 1))  # nothing lost, nothing twice
    tokens = "".join(
        p.data["content"] for p in before + after if p.event == "custom" and p.data["type"] == "token"
    )
    final = await client.runs.join(thread, run_id)
    assert tokens == final["reply"] == [p.data for p in after if p.event == "values"][-1]["reply"]
    # Joined again from the start, restricted to one mode (useStream sends -1 for "from the start").
    again = [
        p async for p in client.runs.join_stream(thread, run_id, stream_mode="values", last_event_id="-1")
    ]
    assert {p.event for p in again} <= {"metadata", "values"} and again[-1].data["reply"] == final["reply"]


async def test_join_waits_for_a_background_run_and_answers_its_final_values(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    run = await client.runs.create(thread, "chat", input=say("in the background"))
    assert run["status"] in ("pending", "running") and run["kwargs"]["input"]["messages"][0]["content"]
    out = await client.runs.join(thread, run["run_id"])
    assert out["reply"] and (await client.runs.get(thread, run["run_id"]))["status"] == "success"
    assert (await client.threads.get(thread))["status"] == "idle"


async def test_cancel_interrupt_and_rollback(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    async with opened(client.runs.stream(thread, "chat", input=say("stop me"), stream_mode="custom")) as s:
        run_id = (await first_token(s))[0].data["run_id"]
        out = await client.runs.cancel(thread, run_id, wait=True, action="interrupt")
    assert isinstance(out, dict)
    assert (await client.runs.get(thread, run_id))["status"] == "interrupted"
    assert (await client.threads.get(thread))["status"] == "interrupted"

    async with opened(client.runs.stream(thread, "chat", input=say("undo me"), stream_mode="custom")) as s:
        run_id = (await first_token(s))[0].data["run_id"]
        await client.runs.cancel(thread, run_id, wait=True, action="rollback")
    with pytest.raises(NotFoundError):
        await client.runs.get(thread, run_id)
    humans = [
        m["content"]
        for m in (await client.threads.get_state(thread))["values"]["messages"]
        if m["type"] == "human"
    ]
    assert "undo me" not in humans


async def test_on_disconnect_cancel_stops_the_run_when_the_client_goes(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    async with opened(
        client.runs.stream(thread, "chat", input=say("bye"), stream_mode="custom", on_disconnect="cancel")
    ) as s:
        run_id = (await first_token(s))[0].data["run_id"]

    async def stopped() -> bool:
        return (await client.runs.get(thread, run_id))["status"] == "interrupted"

    await until(stopped)


async def test_interrupt_before_pauses_the_thread_and_a_null_input_resumes_it(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(
        thread, "chat", input=say("pause before replying"), interrupt_before=["compose_reply"]
    )
    state = await client.threads.get_state(thread)
    assert state["next"] == ["compose_reply"] and "reply" not in state["values"]
    assert (await client.threads.get(thread))["status"] == "interrupted"
    out = await client.runs.wait(thread, "chat", input=None)
    assert out["reply"] and (await client.threads.get_state(thread))["next"] == []
    assert (await client.threads.get(thread))["status"] == "idle"


async def test_a_command_steers_the_paused_thread(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, "chat", input=say("hi"), interrupt_after=["compose_reply"])
    assert (await client.threads.get_state(thread))["next"] == ["remember_exchange"]
    out = await client.runs.wait(
        thread, "chat", command={"update": {"reply": "edited reply"}, "goto": "remember_exchange"}
    )
    assert out["reply"] == "edited reply"


async def test_a_failed_run_answers_its_error_in_wait_and_stream(sdk) -> None:
    client = sdk()
    missing = {"goal_id": str(uuid.uuid4())}
    thread = (await client.threads.create())["thread_id"]
    out = await client.runs.wait(thread, "narrative_beat", input=missing, raise_error=False)
    assert out == {"__error__": {"error": "NotFound", "message": "goal not found"}}
    parts = [p async for p in client.runs.stream(thread, "narrative_beat", input=missing)]
    assert parts[-1].event == "error" and parts[-1].data["message"] == "goal not found"
    assert [r["status"] for r in await client.runs.list(thread)] == ["error", "error"]
    assert (await client.threads.get(thread))["status"] == "error"


async def test_stateless_runs_use_a_temporary_thread_unless_kept(sdk) -> None:
    client = sdk()
    out = await client.runs.wait(None, "adaptive_mission", input={"feeling": "great"})
    assert out["path"]
    parts = [p async for p in client.runs.stream(None, "chat", input=say("just once"), stream_mode="custom")]
    assert parts[0].event == "metadata" and any(p.event == "custom" for p in parts)

    async def gone() -> bool:  # their threads go when they end
        return await client.threads.count() == 0

    await until(gone)
    kept = await client.runs.create(None, "weekly_insights", input={"week": NOW_WEEK}, on_completion="keep")
    assert (await client.runs.join(kept["thread_id"], kept["run_id"]))["insight"]
    assert (await client.threads.get(kept["thread_id"]))["metadata"]["graph_id"] == "weekly_insights"
    batch = await client.runs.create_batch(
        [{"assistant_id": "adaptive_mission", "input": {"feeling": f"try {i}"}} for i in range(3)]
    )
    assert len({r["run_id"] for r in batch}) == 3
    await asyncio.gather(*(client.runs.join(r["thread_id"], r["run_id"]) for r in batch))

    async def only_kept() -> bool:
        return [t["thread_id"] for t in await client.threads.search()] == [kept["thread_id"]]

    await until(only_kept)


async def test_a_run_from_a_checkpoint_forks_the_thread(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, "chat", input=say("first"))
    after_first = (await client.threads.get_state(thread))["checkpoint"]
    await client.runs.wait(thread, "chat", input=say("second"))
    # Run again from after the first turn: the second is not in the new branch.
    await client.runs.wait(thread, "chat", input=say("instead"), checkpoint=after_first)
    humans = [
        m["content"]
        for m in (await client.threads.get_state(thread))["values"]["messages"]
        if m["type"] == "human"
    ]
    assert humans == ["first", "instead"]
    assert (
        await refused(client.runs.wait(thread, "chat", input=say("x"), checkpoint_id=str(uuid.uuid4())))
        == 404
    )


async def test_runs_on_a_thread_of_another_graph_are_refused(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, "adaptive_mission", input={"feeling": "ok"})
    assert await refused(client.runs.wait(thread, "chat", input=say("hello"))) == 409
    assert len(await client.runs.list(thread)) == 1
