"""Memories over HTTP: list, semantic search, create (merging near-duplicates), delete, owners."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import auth


async def test_create_list_search_delete_and_isolation(client: httpx.AsyncClient) -> None:
    alice, bob = auth(f"alice-{uuid.uuid4().hex[:6]}"), auth(f"bob-{uuid.uuid4().hex[:6]}")
    created = await client.post(
        "/api/v1/memories",
        json={"content": "I prefer morning workouts before work", "tags": ["habit"]},
        headers=alice,
    )
    assert created.status_code == 201 and created.json()["merged"] is False
    mid = created.json()["id"]
    await client.post("/api/v1/memories", json={"content": "My dog is called Biscuit"}, headers=alice)

    # A near-identical memory is merged into the first, not stored twice.
    again = await client.post(
        "/api/v1/memories",
        json={"content": "I prefer morning workouts before work!"},
        headers=alice,
    )
    assert again.json() == {"id": mid, "merged": True}

    listed = (await client.get("/api/v1/memories?tier=personal", headers=alice)).json()
    assert [m["content"] for m in listed] == [
        "My dog is called Biscuit",
        "I prefer morning workouts before work",
    ]
    assert listed[1]["metadata"]["tags"] == ["habit"] and listed[1]["access_count"] == 1

    found = (await client.get("/api/v1/memories?q=what is my dog called", headers=alice)).json()
    assert found[0]["content"] == "My dog is called Biscuit" and found[0]["score"] > 0
    assert all(found[i]["score"] >= found[i + 1]["score"] for i in range(len(found) - 1))

    # Bob sees none of it, by list or by search, and cannot delete it.
    assert (await client.get("/api/v1/memories", headers=bob)).json() == []
    assert (await client.get("/api/v1/memories?q=dog Biscuit", headers=bob)).json() == []
    assert (await client.delete(f"/api/v1/memories/{mid}", headers=bob)).status_code == 404

    assert (await client.delete(f"/api/v1/memories/{mid}", headers=alice)).status_code == 204
    assert (await client.delete(f"/api/v1/memories/{mid}", headers=alice)).status_code == 404
    remaining = (await client.get("/api/v1/memories", headers=alice)).json()
    assert [m["content"] for m in remaining] == ["My dog is called Biscuit"]


async def test_task_tier_filter_lists_chat_exchanges(client: httpx.AsyncClient) -> None:
    user = auth(f"carol-{uuid.uuid4().hex[:6]}")
    await client.post("/api/v1/chat", json={"message": "Planning my week"}, headers=user)
    tasks = (await client.get("/api/v1/memories?tier=task", headers=user)).json()
    assert len(tasks) == 1 and tasks[0]["content"].startswith("User said: Planning my week")
    assert (await client.get("/api/v1/memories?tier=project", headers=user)).json() == []
