"""Owner isolation: a second user's client gets 404 on every id of the first user's (thread, run,
checkpoint), through every route that takes one, and sees none of them in search or count; the
first user's data is unchanged by the attempts. Without credentials everything but /ok and /info
is 401."""

from __future__ import annotations

import uuid

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.agent.conftest import refused, say


async def test_another_users_threads_runs_and_checkpoints_are_404_and_unlisted(sdk) -> None:
    alice, mallory = sdk(), sdk()
    thread = (await alice.threads.create(metadata={"secret": "yes"}))["thread_id"]
    await alice.runs.wait(thread, "chat", input=say("my secret is 42"))
    [run] = await alice.runs.list(thread)
    checkpoint = (await alice.threads.get_state(thread))["checkpoint"]
    before = await alice.threads.get_state(thread)

    attempts = {
        "threads.get": mallory.threads.get(thread),
        "threads.update": mallory.threads.update(thread, metadata={"owned": "mallory"}),
        "threads.get_state": mallory.threads.get_state(thread),
        "threads.get_state(checkpoint_id)": mallory.threads.get_state(
            thread, checkpoint_id=checkpoint["checkpoint_id"]
        ),
        "threads.get_state(checkpoint)": mallory.threads.get_state(thread, checkpoint=checkpoint),
        "threads.update_state": mallory.threads.update_state(thread, {"reply": "pwned"}),
        "threads.get_history": mallory.threads.get_history(thread),
        "runs.list": mallory.runs.list(thread),
        "runs.get": mallory.runs.get(thread, run["run_id"]),
        "runs.join": mallory.runs.join(thread, run["run_id"]),
        "runs.cancel": mallory.runs.cancel(thread, run["run_id"]),
        "runs.delete": mallory.runs.delete(thread, run["run_id"]),
        "runs.wait": mallory.runs.wait(thread, "chat", input=say("let me in")),
        "runs.create": mallory.runs.create(thread, "chat", input=say("let me in")),
        "runs.create(if_not_exists)": mallory.runs.create(
            thread, "chat", input=say("let me in"), if_not_exists="create"
        ),
        "threads.delete": mallory.threads.delete(thread),
    }
    for name, call in attempts.items():
        assert await refused(call) == 404, name
    for name, stream in {
        "runs.stream": mallory.runs.stream(thread, "chat", input=say("let me in")),
        "runs.join_stream": mallory.runs.join_stream(thread, run["run_id"]),
    }.items():
        with pytest.raises(NotFoundError):
            async for _ in stream:
                pytest.fail(f"{name} streamed")
    with pytest.raises(ConflictError):  # an id that is taken is not a way in, with do_nothing too
        await mallory.threads.create(thread_id=thread, if_exists="do_nothing")

    assert await mallory.threads.search() == [] and await mallory.threads.count() == 0
    # Alice's checkpoint id asked for on a thread of Mallory's own: not found there either.
    own = (await mallory.threads.create())["thread_id"]
    await mallory.runs.wait(own, "chat", input=say("hello"))
    assert await refused(mallory.threads.get_state(own, checkpoint_id=checkpoint["checkpoint_id"])) == 404
    stolen = {**checkpoint, "thread_id": own}
    assert await refused(mallory.runs.wait(own, "chat", input=say("fork hers"), checkpoint=stolen)) == 404
    await mallory.threads.delete(own)
    assert await mallory.threads.search(ids=[thread]) == []
    assert await mallory.threads.search(metadata={"secret": "yes"}) == []
    # Alice's thread is as it was.
    after = await alice.threads.get_state(thread)
    assert after["checkpoint"] == before["checkpoint"] and after["values"] == before["values"]
    assert [r["run_id"] for r in await alice.runs.list(thread)] == [run["run_id"]]
    assert (await alice.threads.get(thread))["metadata"]["secret"] == "yes"


async def test_without_credentials_only_ok_and_info_answer(agent_api) -> None:
    thread = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=agent_api.url) as http:
        assert (await http.get("/ok")).json() == {"ok": True}
        info = (await http.get("/info")).json()
        assert info["flags"]["assistants"] is True and info["flags"]["crons"] is False
        for method, path, body in (
            ("POST", "/assistants/search", {}),
            ("GET", "/assistants/chat", None),
            ("POST", "/threads", {}),
            ("POST", "/threads/search", {}),
            ("GET", f"/threads/{thread}/state", None),
            ("POST", f"/threads/{thread}/runs/wait", {"assistant_id": "chat"}),
            ("POST", "/runs/wait", {"assistant_id": "chat"}),
        ):
            r = await http.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
            assert r.status_code == 401, (path, r.text)
            r = await http.request(method, path, json=body)
            assert r.status_code == 401, (path, r.text)
