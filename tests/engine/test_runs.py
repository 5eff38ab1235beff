"""The run engine in one process, on a real Postgres: same-thread runs take turns; each multitask
strategy; cancel by id; reading a run's events again from a Last-Event-ID; a failed turn leaves
thread state, transcript and memories agreeing; admission limits answer at once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from core.errors import Busy, NotFound, Overloaded
from engine import Engine, RunRequest
from graphs.chat import settle_turn
from services.container import Services
from tests.support.engine import engine_for


def turn(user: uuid.UUID, text: str, thread: str | None = None, **options: Any) -> RunRequest:
    return RunRequest(
        "chat",
        {"messages": [{"type": "human", "content": text}]},
        user=user,
        thread_id=thread,
        create_thread=thread is None,
        **options,
    )


async def new_user(svc: Services) -> uuid.UUID:
    return (await svc.users.ensure(f"engine-{uuid.uuid4().hex[:10]}")).id


async def state_messages(engine: Engine, thread: str) -> list[tuple[str, str]]:
    snap = await engine.graphs["chat"].aget_state({"configurable": {"thread_id": thread}})
    return [(m.type, m.text) for m in snap.values.get("messages", [])]


async def transcript(svc: Services, thread: str) -> list[tuple[str, str, str]]:
    rows = await svc.db.fetch(
        "SELECT role, content, status FROM chat_messages WHERE thread_id = %s ORDER BY created_at", (thread,)
    )
    return [(r["role"], r["content"], r["status"]) for r in rows]


async def task_memories(svc: Services, user: uuid.UUID) -> list[str]:
    rows = await svc.db.fetch("SELECT content FROM memories WHERE user_id = %s AND tier = 'task'", (user,))
    return [r["content"] for r in rows]


async def until(predicate: Any, limit: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_runs_of_one_thread_take_turns_in_order(scripted) -> None:
    svc, model = scripted()
    model.stall("reply", 0.2)
    user = await new_user(svc)
    async with engine_for(svc) as engine:
        first = await engine.submit(turn(user, "one"))
        later = [await engine.submit(turn(user, t, first.thread_id)) for t in ("two", "three")]
        assert first.status == "running" and [r.status for r in later] == ["pending", "pending"]
        # A queued run holds no connection while it waits.
        assert engine.services.db.pool.get_stats().get("requests_waiting", 0) == 0
        done = [await engine.wait(r.id) for r in (first, *later)]
        thread = first.thread_id
        assert [r.status for r in done] == ["success"] * 3
        assert [t for kind, t in await state_messages(engine, thread) if kind == "human"] == [
            "one",
            "two",
            "three",
        ]
        # One linear history: every checkpoint's parent is the one before it.
        history = [
            s async for s in engine.graphs["chat"].aget_state_history({"configurable": {"thread_id": thread}})
        ]
        ids = [s.config["configurable"]["checkpoint_id"] for s in history]
        parents = [(s.parent_config or {}).get("configurable", {}).get("checkpoint_id") for s in history]
        assert parents[:-1] == ids[1:]
        assert [(r, s) for r, _, s in await transcript(svc, thread)] == [
            ("user", "ok"),
            ("assistant", "ok"),
        ] * 3
        row = await svc.db.fetchrow("SELECT status FROM threads WHERE id = %s", (thread,))
        assert row["status"] == "idle"


async def test_reject_answers_busy_and_writes_nothing(scripted) -> None:
    svc, model = scripted()
    model.stall("reply", 0.5)
    user = await new_user(svc)
    async with engine_for(svc) as engine:
        first = await engine.submit(turn(user, "hello"))
        with pytest.raises(Busy):
            await engine.submit(turn(user, "again", first.thread_id, strategy="reject"))
        assert len(await svc.runs.for_thread(first.thread_id)) == 1
        await engine.wait(first.id)
        # Once the thread is idle, `reject` runs.
        second = await engine.run(turn(user, "again", first.thread_id, strategy="reject"))
        assert second.status == "success"


async def test_interrupt_stops_the_running_turn_at_a_step_and_starts_from_its_state(scripted) -> None:
    svc, model = scripted()
    model.stall("structured", 0.6)  # the first turn is inside its gathering step
    user = await new_user(svc)
    async with engine_for(svc) as engine:
        first = await engine.submit(turn(user, "I am so tired today"))
        await asyncio.sleep(0.2)
        model.stall("structured", 0)
        second = await engine.submit(
            turn(user, "actually, I feel better", first.thread_id, strategy="interrupt")
        )
        assert second.status == "pending"
        done = await engine.wait(first.id)
        assert done.status == "interrupted"
        assert (await engine.wait(second.id)).status == "success"
        thread = first.thread_id
        # What the interrupted turn finished stays (its message, read by the next turn); the
        # transcript says so, and its write-back never ran (no memory of it).
        kinds = await state_messages(engine, thread)
        assert [k for k, _ in kinds] == ["human", "human", "ai"]
        assert kinds[0] == ("human", "I am so tired today")
        rows = await transcript(svc, thread)
        assert rows[0] == ("user", "I am so tired today", "interrupted")
        assert [(r, s) for r, _, s in rows[1:]] == [("user", "ok"), ("assistant", "ok")]
        assert not any("I am so tired today" in m for m in await task_memories(svc, user))
        # The interrupted turn stopped at a step boundary: its reply was never composed.
        assert len(model.calls_of("reply")) == 1


async def test_rollback_cancels_the_running_turn_and_deletes_what_it_wrote(scripted) -> None:
    svc, model = scripted()
    user = await new_user(svc)
    async with engine_for(svc) as engine:
        warm = await engine.run(turn(user, "first of all"))
        model.stall("reply", 2.0)
        # Checkpoints after every step, so that there is something to roll back mid-run.
        first = await engine.submit(turn(user, "a message I regret", warm.thread_id, durability="async"))
        await until(lambda: _has_checkpoint(svc, warm.thread_id, first.id), limit=5)
        model.stall("reply", 0)
        second = await engine.submit(turn(user, "what I meant", warm.thread_id, strategy="rollback"))
        assert (await engine.wait(second.id)).status == "success"
        with pytest.raises(NotFound):
            await svc.runs.get(first.id)
        assert not await _has_checkpoint(svc, warm.thread_id, first.id)
        texts = [t for k, t in await state_messages(engine, warm.thread_id) if k == "human"]
        assert texts == ["first of all", "what I meant"]
        assert [c for _, c, _ in await transcript(svc, warm.thread_id) if c == "a message I regret"] == []


async def _has_checkpoint(svc: Services, thread: str, run_id: uuid.UUID) -> bool:
    row = await svc.db.fetchrow(
        "SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s AND metadata->>'run_id' = %s",
        (thread, str(run_id)),
    )
    return bool(row and row["n"])


async def test_cancel_by_id_interrupts_or_rolls_back(scripted) -> None:
    svc, model = scripted(run_lease_s=3)
    model.stall("structured", 0.5)
    user = await new_user(svc)
    async with engine_for(svc) as engine:
        run = await engine.submit(turn(user, "hello there"))
        ended = await engine.cancel(run.id, "interrupt", wait=True)
        assert ended is not None and ended.status == "interrupted"
        assert (await svc.runs.get(run.id)).status == "interrupted"

        doomed = await engine.submit(turn(user, "never mind", run.thread_id))
        queued = await engine.submit(turn(user, "and this one", run.thread_id))
        assert queued.status == "pending"
        await engine.cancel(queued.id, "interrupt")  # a pending run ends at once
        assert (await svc.runs.get(queued.id)).status == "interrupted"
        gone = await engine.cancel(doomed.id, "rollback", wait=True)
        assert gone is not None and (gone.status, gone.error) == ("interrupted", "the run was rolled back")
        with pytest.raises(NotFound):
            await svc.runs.get(doomed.id)
        with pytest.raises(NotFound):
            await engine.cancel(uuid.uuid4())


async def test_a_reconnecting_reader_gets_the_rest_from_its_last_event_id(scripted) -> None:
    svc, model = scripted()
    model.answer_reply("one two three four five six seven eight nine ten eleven twelve")
    user = await new_user(svc)
    async with engine_for(svc) as engine:
        run = await engine.submit(turn(user, "tell me something"))
        seen = []
        async for event in engine.events(run.id):
            seen.append(event)
            if event.name == "custom" and event.data.get("type") == "token":
                break  # the connection drops mid-reply
        rest = [e async for e in engine.events(run.id, after=seen[-1].seq)]
        everything = [e async for e in engine.events(run.id)]
        assert (
            [e.seq for e in seen + rest] == [e.seq for e in everything] == list(range(1, len(everything) + 1))
        )
        assert everything[-1].name == "end" and everything[-1].data["status"] == "success"
        tokens = "".join(
            e.data["content"] for e in everything if e.name == "custom" and e.data["type"] == "token"
        )
        assert tokens == "one two three four five six seven eight nine ten eleven twelve"
        # After the run has ended and left this process's memory, the row replays the same events.
        engine.logs.clear()
        replay = [e async for e in engine.events(run.id, after=3)]
        assert [(e.seq, e.name, e.data) for e in replay] == [(e.seq, e.name, e.data) for e in everything[3:]]


async def test_a_failed_turn_leaves_state_transcript_and_memories_agreeing(scripted) -> None:
    svc, model = scripted(llm_max_attempts=1)
    user = await new_user(svc)
    async with engine_for(svc) as engine:
        ok = await engine.run(turn(user, "my sister is called Maya"))
        model.fail("reply", RuntimeError("the model fell over"))
        failed = await engine.run(turn(user, "will you remember this?", ok.thread_id))
        assert failed.status == "error" and failed.error == "the run failed"
        thread = ok.thread_id
        # The failed message reaches no prompt (not in the state), is never lost (the transcript
        # keeps it, marked), and wrote no memory.
        assert [t for k, t in await state_messages(engine, thread) if k == "human"] == [
            "my sister is called Maya"
        ]
        rows = await transcript(svc, thread)
        assert rows[-1] == ("user", "will you remember this?", "failed")
        assert [s for _, _, s in rows[:-1]] == ["ok", "ok"]
        assert not any("will you remember this?" in m for m in await task_memories(svc, user))
        assert (await svc.runs.get(failed.id)).input["messages"][0]["content"] == "will you remember this?"
        # The thread is usable again.
        model.fail("reply", None)
        assert (await engine.run(turn(user, "hello again", thread))).status == "success"


async def test_admission_refuses_at_once_past_each_limit(scripted) -> None:
    svc, model = scripted(run_max_pending_per_thread=1, run_rate_per_minute=4)
    model.stall("reply", 1.0)
    user = await new_user(svc)
    async with engine_for(svc, max_running=2) as engine:
        a = await engine.submit(turn(user, "a"))
        b = await engine.submit(turn(user, "b", a.thread_id))
        assert b.status == "pending"
        with pytest.raises(Overloaded) as full:
            await engine.submit(turn(user, "c", a.thread_id))
        assert "queued on this thread" in full.value.message
        other = await engine.submit(turn(user, "d"))
        with pytest.raises(Overloaded) as capacity:  # two running here: the cap
            await engine.submit(turn(await new_user(svc), "e"))
        assert capacity.value.retry_after == 1
        runs_before = await svc.db.fetchrow("SELECT count(*) AS n FROM runs WHERE user_id = %s", (user,))
        for r in (a, b, other):
            await engine.wait(r.id)
        await engine.run(turn(user, "f"))  # the 4th run of this minute
        with pytest.raises(Overloaded) as rate:
            await engine.submit(turn(user, "g"))
        assert "last minute" in rate.value.message and 1 <= rate.value.retry_after <= 60
        runs_after = await svc.db.fetchrow("SELECT count(*) AS n FROM runs WHERE user_id = %s", (user,))
        assert runs_after["n"] == runs_before["n"] + 1  # only "f": refusals wrote nothing
        # The service's own runs are not refused: they queue.
        assert (await engine.submit(turn(user, "h", admit=False))).status == "running"


def test_messages_of_a_turn_get_their_ids_at_submit() -> None:
    from graphs.chat import normalize_input

    stored = normalize_input({"messages": [{"role": "user", "content": "hi"}, ("user", "yo")]})
    assert all(uuid.UUID(m["id"]) for m in stored["messages"])
    assert [m["type"] for m in stored["messages"]] == ["human", "human"]
    assert normalize_input(stored) == stored  # ids kept: a retried run writes under the same keys
    assert isinstance(HumanMessage(**stored["messages"][0]), HumanMessage)
    assert not isinstance(HumanMessage(**stored["messages"][0]), AIMessage)


async def test_a_turn_killed_after_its_write_back_is_completed_in_the_thread_state(scripted) -> None:
    """The write-back is the turn's commit point: when it committed but the process died before
    the final checkpoint, settling the orphan puts the exchange in the state too."""
    svc, _ = scripted()
    user = await new_user(svc)
    async with engine_for(svc) as engine:
        done = await engine.run(turn(user, "I ran five kilometres"))
        # What a crash between the write-back and the final checkpoint leaves (durability exit).
        await svc.runs.delete_checkpoints(done.thread_id, done.id)
        assert await state_messages(engine, done.thread_id) == []
        status, output = await settle_turn(engine._settlement(done, "crashed"))
        assert status == "success" and output["reply"] == done.output["reply"]
        assert await state_messages(engine, done.thread_id) == [
            ("human", "I ran five kilometres"),
            ("ai", done.output["reply"]),
        ]
        assert [(r, s) for r, _, s in await transcript(svc, done.thread_id)] == [
            ("user", "ok"),
            ("assistant", "ok"),
        ]
