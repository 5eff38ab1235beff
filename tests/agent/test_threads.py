"""Threads through the real `langgraph-sdk` client: create (with id, metadata, if_exists),
search and count (metadata, graph, status, ids, sort, pagination), get, patch, delete; state,
state at a checkpoint, history, update state as a new checkpoint; and the threads the Delight
routes start are the same threads (Studio opens a user's real conversation)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.agent.conftest import say


async def test_create_get_patch_delete_a_thread(sdk) -> None:
    client = sdk()
    chosen = str(uuid.uuid4())
    thread = await client.threads.create(thread_id=chosen, metadata={"topic": "running"})
    assert thread["thread_id"] == chosen and thread["status"] == "idle"
    assert thread["metadata"] == {"topic": "running"} and thread["values"] == {}
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=chosen)
    again = await client.threads.create(thread_id=chosen, if_exists="do_nothing")
    assert again["thread_id"] == chosen and again["metadata"] == {"topic": "running"}

    patched = await client.threads.update(chosen, metadata={"mood": "good"})
    assert patched["metadata"] == {"topic": "running", "mood": "good"}
    assert (await client.threads.get(chosen))["metadata"] == patched["metadata"]

    await client.runs.wait(chosen, "chat", input=say("hello"))
    got = await client.threads.get(chosen)
    assert got["metadata"]["graph_id"] == "chat"
    assert got["metadata"]["assistant_id"] == (await client.assistants.get("chat"))["assistant_id"]
    assert [m["type"] for m in got["values"]["messages"]] == ["human", "ai"]

    await client.threads.delete(chosen)
    with pytest.raises(NotFoundError):
        await client.threads.get(chosen)
    with pytest.raises(NotFoundError):
        await client.threads.get_state(chosen)


async def test_search_and_count_filter_sort_and_page(sdk) -> None:
    client = sdk()
    made = [
        (await client.threads.create(metadata={"n": i, "even": i % 2 == 0}))["thread_id"] for i in range(5)
    ]
    await client.runs.wait(made[0], "adaptive_mission", input={"feeling": "fine"})
    assert await client.threads.count() == 5
    assert await client.threads.count(metadata={"even": True}) == 3
    found = await client.threads.search(metadata={"even": False})
    assert {t["thread_id"] for t in found} == {made[1], made[3]}
    by_graph = await client.threads.search(metadata={"graph_id": "adaptive_mission"})
    assert [t["thread_id"] for t in by_graph] == [made[0]] and by_graph[0]["values"]["path"]
    by_assistant = await client.threads.search(
        metadata={"assistant_id": (await client.assistants.get("adaptive_mission"))["assistant_id"]}
    )
    assert [t["thread_id"] for t in by_assistant] == [made[0]]
    assert await client.threads.search(metadata={"graph_id": "no-such-graph"}) == []
    assert await client.threads.count(status="idle") == 5
    assert await client.threads.search(status="busy") == []
    oldest_first = await client.threads.search(sort_by="created_at", sort_order="asc", limit=2, offset=1)
    assert [t["thread_id"] for t in oldest_first] == made[1:3]
    picked = await client.threads.search(ids=[made[4], made[2]], select=["thread_id", "status"])
    assert sorted(picked, key=lambda t: t["thread_id"]) == sorted(
        [{"thread_id": made[4], "status": "idle"}, {"thread_id": made[2], "status": "idle"}],
        key=lambda t: t["thread_id"],
    )


async def test_pagination_headers_tell_whether_there_is_more(agent_api, sdk) -> None:
    user = f"page-{uuid.uuid4().hex[:8]}"
    client = sdk(user)
    for _ in range(3):
        await client.threads.create()
    headers = {"Authorization": f"Bearer dev:{user}"}
    async with httpx.AsyncClient(base_url=agent_api.url, headers=headers) as http:
        first = await http.post("/threads/search", json={"limit": 2})
        last = await http.post("/threads/search", json={"limit": 2, "offset": 2})
    assert len(first.json()) == 2 and first.headers["x-pagination-next"] == "2"
    assert len(last.json()) == 1 and "x-pagination-next" not in last.headers
    assert last.headers["x-pagination-total"] == "3"


async def test_state_history_and_checkpoints_by_id(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, "chat", input=say("one"))
    after_one = await client.threads.get_state(thread)
    await client.runs.wait(thread, "chat", input=say("two"))
    now = await client.threads.get_state(thread)
    assert [m["content"] for m in now["values"]["messages"] if m["type"] == "human"] == ["one", "two"]
    assert now["next"] == [] and now["checkpoint"]["thread_id"] == thread
    assert now["parent_checkpoint"]["checkpoint_id"] and now["metadata"]["source"] == "loop"

    history = await client.threads.get_history(thread, limit=100)
    assert history[0]["checkpoint"]["checkpoint_id"] == now["checkpoint"]["checkpoint_id"]
    ids = [h["checkpoint"]["checkpoint_id"] for h in history]
    assert [h["parent_checkpoint"]["checkpoint_id"] for h in history[:-1]] == ids[1:]  # one linear history
    assert after_one["checkpoint"]["checkpoint_id"] in ids
    assert len(await client.threads.get_history(thread, limit=2)) == 2
    older = await client.threads.get_history(thread, limit=100, before=after_one["checkpoint"])
    assert [h["checkpoint"]["checkpoint_id"] for h in older] == ids[
        ids.index(after_one["checkpoint"]["checkpoint_id"]) + 1 :
    ]
    assert all(
        h["metadata"]["source"] == "input"
        for h in await client.threads.get_history(thread, metadata={"source": "input"})
    )

    by_id = await client.threads.get_state(thread, checkpoint_id=after_one["checkpoint"]["checkpoint_id"])
    assert by_id["values"] == after_one["values"]
    by_ref = await client.threads.get_state(thread, checkpoint=after_one["checkpoint"])
    assert by_ref["values"] == after_one["values"]
    with pytest.raises(NotFoundError):
        await client.threads.get_state(thread, checkpoint_id=str(uuid.uuid4()))


async def test_update_state_writes_a_new_checkpoint_as_a_node(sdk) -> None:
    client = sdk()
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, "chat", input=say("hello"))
    before = await client.threads.get_state(thread)
    update = await client.threads.update_state(thread, {"reply": "an edited reply"}, as_node="compose_reply")
    assert update["checkpoint"]["thread_id"] == thread
    after = await client.threads.get_state(thread)
    assert after["values"]["reply"] == "an edited reply"
    assert after["checkpoint"]["checkpoint_id"] == update["checkpoint"]["checkpoint_id"]
    assert after["parent_checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert after["metadata"]["source"] == "update" and after["next"] == ["remember_exchange"]
    # The earlier checkpoint is still there, unchanged.
    old = await client.threads.get_state(thread, checkpoint_id=before["checkpoint"]["checkpoint_id"])
    assert old["values"]["reply"] == before["values"]["reply"]
    with pytest.raises(UnprocessableEntityError):
        await client.threads.update_state(thread, {"not_a_key": 1})
    with pytest.raises(UnprocessableEntityError):
        await client.threads.update_state(thread, {"reply": "x"}, as_node="no_such_node")


async def test_a_thread_started_on_the_delight_routes_is_the_same_thread_here(agent_api, sdk) -> None:
    user = f"app-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=agent_api.url, timeout=30) as http:
        r = await http.post(
            "/api/v1/chat",
            json={"message": "My sister's name is Maya."},
            headers={"Authorization": f"Bearer dev:{user}"},
        )
    assert r.status_code == 200, r.text
    thread = r.json()["thread_id"]
    client = sdk(user)
    [found] = await client.threads.search(metadata={"graph_id": "chat"})
    assert found["thread_id"] == thread and found["status"] == "idle"
    state = await client.threads.get_state(thread)
    assert [m["content"] for m in state["values"]["messages"]] == [
        "My sister's name is Maya.",
        r.json()["reply"],
    ]
    [run] = await client.runs.list(thread)
    assert run["status"] == "success" and run["kwargs"]["stream_mode"] == ["custom"]
    # And a turn taken here continues the same conversation there.
    await client.runs.wait(thread, "chat", input=say("What is my sister's name?"))
    async with httpx.AsyncClient(base_url=agent_api.url, timeout=30) as http:
        history = await http.get("/api/v1/companion/history", headers={"Authorization": f"Bearer dev:{user}"})
    convo = history.json()
    messages = (convo["conversations"] if isinstance(convo, dict) else convo)[0]["messages"]
    assert [m["content"] for m in messages][2] == "What is my sister's name?"
    assert "Maya" in messages[3]["content"]
