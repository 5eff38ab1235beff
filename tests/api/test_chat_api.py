"""The chat API through a real ASGI client against the embedded Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import httpx
from httpx_sse import aconnect_sse

from tests.conftest import auth


def uid() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"


async def test_health_names_database_and_offline_model(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["database"]["status"] == "ok"
    assert body["model"]["kind"] == "offline"
    assert "offline" in body["model"]["description"]


async def test_chat_turn_shape_and_emotion(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/chat",
        json={"message": "I feel so sad and hopeless, nothing works anymore"},
        headers=auth(uid()),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "thread_id",
        "reply",
        "emotion",
        "memories",
        "progress",
        "usage",
        "degraded",
    }
    uuid.UUID(body["thread_id"])
    assert body["reply"]
    assert body["emotion"]["dominant"] == "sadness"
    assert body["emotion"]["scores"]["sadness"] > 0.7
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert body["usage"]["cost_usd"] > 0
    assert body["degraded"] == []
    assert {"dci", "streak_days", "completed", "zone", "terms"} <= set(body["progress"])


async def test_later_turn_recalls_a_fact_told_earlier(client: httpx.AsyncClient) -> None:
    user = uid()
    first = await client.post(
        "/api/v1/chat", json={"message": "My sister's name is Maya."}, headers=auth(user)
    )
    assert first.status_code == 200
    # A new conversation: only memory can carry the fact across.
    later = await client.post(
        "/api/v1/chat", json={"message": "What is my sister's name again?"}, headers=auth(user)
    )
    assert later.status_code == 200
    body = later.json()
    assert body["thread_id"] != first.json()["thread_id"]
    personal = [m for m in body["memories"] if m["tier"] == "personal"]
    assert personal and "Maya" in personal[0]["content"]
    assert "Maya" in body["reply"]


async def test_turns_continue_a_thread_and_state_is_owner_only(client: httpx.AsyncClient) -> None:
    user = uid()
    t = (await client.post("/api/v1/chat", json={"message": "hello"}, headers=auth(user))).json()
    r = await client.post(
        "/api/v1/chat", json={"message": "again", "thread_id": t["thread_id"]}, headers=auth(user)
    )
    assert r.status_code == 200 and r.json()["thread_id"] == t["thread_id"]
    state = await client.get(f"/api/v1/threads/{t['thread_id']}/state", headers=auth(user))
    assert state.status_code == 200
    msgs = state.json()["values"]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[2]["content"] == "again"
    hist = await client.get(f"/api/v1/threads/{t['thread_id']}/history", headers=auth(user))
    assert hist.status_code == 200 and len(hist.json()) >= 2
    other = auth(uid())
    for url in (
        f"/api/v1/threads/{t['thread_id']}/state",
        f"/api/v1/threads/{t['thread_id']}/history",
    ):
        denied = await client.get(url, headers=other)
        assert denied.status_code == 404
        assert denied.json()["detail"] == "thread not found"


async def test_stream_sends_metadata_steps_tokens_then_complete(client: httpx.AsyncClient) -> None:
    events: list[tuple[str, dict]] = []
    async with aconnect_sse(
        client,
        "POST",
        "/api/v1/chat/stream",
        json={"message": "I am so happy today!"},
        headers=auth(uid()),
    ) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for sse in source.aiter_sse():
            events.append((sse.event, json.loads(sse.data)))
    kinds = [k for k, _ in events]
    assert kinds[0] == "metadata" and kinds[-1] == "complete"
    meta = events[0][1]
    uuid.UUID(meta["thread_id"]) and uuid.UUID(meta["run_id"])
    nodes = {"detect_emotion", "retrieve_memories", "load_progress", "compose_reply", "remember_exchange"}
    steps = [d for k, d in events if k == "step" and d["status"] != "running"]
    assert {s["node"] for s in steps} == nodes
    assert all(s["status"] == "ok" and s["ms"] >= 0 for s in steps)
    # Each node is announced as it starts (a client lights it up), then finishes.
    for node in nodes:
        assert [d["status"] for k, d in events if k == "step" and d["node"] == node] == ["running", "ok"]
    started = [i for i, (k, d) in enumerate(events) if k == "step" and d["status"] == "running"]
    tokens = [d["content"] for k, d in events if k == "token"]
    complete = events[-1][1]
    assert len(tokens) > 1 and "".join(tokens) == complete["reply"]
    assert complete["thread_id"] == meta["thread_id"]
    # Tokens flow while compose_reply runs: before its step event, after the branches' steps.
    first_token = kinds.index("token")
    compose_step = next(
        i
        for i, (k, d) in enumerate(events)
        if k == "step" and d["node"] == "compose_reply" and d["status"] == "ok"
    )
    assert first_token < compose_step
    assert all(
        i < first_token
        for i, (k, d) in enumerate(events)
        if k == "step" and d["node"] in ("detect_emotion", "retrieve_memories", "load_progress")
    )
    assert 0 < started[0] < first_token  # the first node ran before any token


async def test_companion_contract_eventsource_flow(client: httpx.AsyncClient) -> None:
    user = uid()
    r = await client.post(
        "/api/v1/companion/chat",
        json={"message": "I finished my run!", "conversation_id": None},
        headers=auth(user),
    )
    assert r.status_code == 200
    accepted = r.json()
    assert accepted["status"] == "processing" and set(accepted) == {"conversation_id", "status"}
    cid = accepted["conversation_id"]
    data: list[dict] = []
    # EventSource cannot send headers: the token travels in the query string.
    async with aconnect_sse(client, "GET", f"/api/v1/companion/stream/{cid}?token=dev:{user}") as source:
        headers = source.response.headers
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        async for sse in source.aiter_sse():
            assert sse.event == "message"  # plain `data:` lines, no event names
            data.append(json.loads(sse.data))
    complete = data[-1]
    assert complete["type"] == "complete" and set(complete) == {"type", "usage"}
    usage = complete["usage"]
    assert set(usage) == {"model", "input_tokens", "output_tokens", "total_tokens", "cost_usd"}
    assert usage["model"] == "gpt-4o-mini"  # the offline model is priced as the configured one
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0 and usage["cost_usd"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    tokens = [d for d in data[:-1]]
    assert tokens and all(d["type"] == "token" and isinstance(d["content"], str) for d in tokens)
    reply = "".join(d["content"] for d in tokens)

    hist = await client.get("/api/v1/companion/history?limit=50", headers=auth(user))
    assert hist.status_code == 200
    assert list(hist.json()) == ["conversations"]
    convo = hist.json()["conversations"][0]
    assert set(convo) == {"id", "created_at", "updated_at", "messages"}
    assert convo["id"] == cid
    assert [(m["role"], m["content"]) for m in convo["messages"]] == [
        ("user", "I finished my run!"),
        ("assistant", reply),
    ]
    assert all(set(m) == {"role", "content", "timestamp"} for m in convo["messages"])
    assert all(dt.datetime.fromisoformat(m["timestamp"]) for m in convo["messages"])

    # A second message continues the same conversation; history stays newest first.
    r2 = await client.post(
        "/api/v1/companion/chat",
        json={"message": "and now?", "conversation_id": cid},
        headers=auth(user),
    )
    assert r2.json()["conversation_id"] == cid
    async with aconnect_sse(client, "GET", f"/api/v1/companion/stream/{cid}?token=dev:{user}") as source:
        last = [json.loads(s.data) async for s in source.aiter_sse()][-1]
    assert last["type"] == "complete" and last["usage"]["output_tokens"] > 0
    convo = (await client.get("/api/v1/companion/history", headers=auth(user))).json()["conversations"][0]
    assert convo["id"] == cid and len(convo["messages"]) == 4


async def test_companion_history_is_newest_first_and_limited(client: httpx.AsyncClient) -> None:
    user = uid()
    assert (await client.get("/api/v1/companion/history", headers=auth(user))).json() == {"conversations": []}
    ids = []
    for text in ("first", "second", "third"):
        ids.append(
            (await client.post("/api/v1/chat", json={"message": text}, headers=auth(user))).json()[
                "thread_id"
            ]
        )
    body = (await client.get("/api/v1/companion/history?limit=2", headers=auth(user))).json()
    assert [c["id"] for c in body["conversations"]] == ids[:0:-1]
    assert [c["messages"][0]["content"] for c in body["conversations"]] == ["third", "second"]
    # Only the caller's conversations.
    assert (await client.get("/api/v1/companion/history", headers=auth(uid()))).json() == {
        "conversations": []
    }


async def test_companion_stream_requires_owner_and_token(client: httpx.AsyncClient) -> None:
    user = uid()
    cid = (await client.post("/api/v1/companion/chat", json={"message": "hi"}, headers=auth(user))).json()[
        "conversation_id"
    ]
    assert (await client.get(f"/api/v1/companion/stream/{cid}")).status_code == 401
    r = await client.get(f"/api/v1/companion/stream/{cid}?token=dev:{uid()}")
    assert r.status_code == 404
    # let the background turn finish before the next test
    async with aconnect_sse(client, "GET", f"/api/v1/companion/stream/{cid}?token=dev:{user}") as s:
        assert [json.loads(e.data) async for e in s.aiter_sse()][-1]["type"] == "complete"


async def test_two_concurrent_turns_on_one_thread_are_both_kept_in_order(
    client: httpx.AsyncClient,
) -> None:
    user = uid()
    tid = (await client.post("/api/v1/chat", json={"message": "start"}, headers=auth(user))).json()[
        "thread_id"
    ]
    results = await asyncio.gather(
        *(
            client.post(
                "/api/v1/chat",
                json={"message": f"parallel {i}", "thread_id": tid},
                headers=auth(user),
            )
            for i in range(4)
        )
    )
    assert all(r.status_code == 200 for r in results)
    msgs = (await client.get(f"/api/v1/threads/{tid}/state", headers=auth(user))).json()["values"]["messages"]
    assert len(msgs) == 10  # nothing lost: 5 turns x (user, assistant)
    # Strict alternation: each user message is answered before the next turn starts.
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 5
    assert sorted(m["content"] for m in msgs[2::2]) == [f"parallel {i}" for i in range(4)]
    # The checkpoint history is one line, not a fork: each checkpoint's parent is the next older.
    hist = (await client.get(f"/api/v1/threads/{tid}/history?limit=200", headers=auth(user))).json()
    assert [h["parent_checkpoint_id"] for h in hist[:-1]] == [h["checkpoint_id"] for h in hist[1:]]
    assert hist[-1]["parent_checkpoint_id"] is None
