"""The chat write-back on the embedded Postgres: one transaction in one round trip, replays that
write nothing twice, nothing written for someone else's thread, and memories that wait for their
vector when the embedder fails (then get it from the user's next write-back)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from bench.probe import COUNTER, count_round_trips
from core.errors import NotFound
from services.embeddings import CachedEmbeddings, OfflineEmbeddings
from services.memory import MemoryStore
from services.writeback import ChatWriteBack, NewMemory, TurnRecord
from state.schemas import Usage

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
USAGE = Usage(input_tokens=900, output_tokens=120, cost_usd=0.000207, calls=2)


class SwitchableEmbeddings(Embeddings):
    """The offline embedder, failing while `down` is set."""

    def __init__(self, dim: int) -> None:
        self.inner = OfflineEmbeddings(dim)
        self.down = False
        self.requests = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.requests += 1
        if self.down:
            raise RuntimeError("embedder down")
        return self.inner.embed_documents(texts)


@pytest.fixture
async def user(services) -> uuid.UUID:
    return (await services.users.ensure(f"wb-{uuid.uuid4().hex[:8]}")).id


@pytest.fixture
def embedder(services) -> SwitchableEmbeddings:
    return SwitchableEmbeddings(services.settings.embedding_dim)


@pytest.fixture
def writeback(services, embedder) -> ChatWriteBack:
    # Same embedder name as the service's, so recall through `services.memory` sees the rows.
    cached = CachedEmbeddings(
        embedder, OfflineEmbeddings.name, services.settings.model_copy(update={"embedding_cache_size": 0})
    )
    return ChatWriteBack(services.db, MemoryStore(services.db, cached, services.settings), services.settings)


def turn_record(user: uuid.UUID, thread: str, text: str, **over: Any) -> TurnRecord:
    human, ai = str(uuid.uuid4()), str(uuid.uuid4())
    fields: dict[str, Any] = {
        "user_id": user,
        "thread_id": thread,
        "turn_key": f"chat:{human}",
        "messages": [(human, "user", text), (ai, "assistant", "Noted, thank you.")],
        "memories": [
            NewMemory(
                uuid.uuid5(uuid.NAMESPACE_URL, f"exchange:{human}"),
                "task",
                f"User said: {text}",
                {"tags": ["chat"]},
            ),
            NewMemory(uuid.uuid5(uuid.NAMESPACE_URL, f"fact:{human}"), "personal", text, {"tags": ["chat"]}),
        ],
        "recalled": [],
        "usage": USAGE,
        "model": "gpt-4o-mini",
        "now": NOW,
    }
    return TurnRecord(**(fields | over))


async def state_of(services, user: uuid.UUID, thread: str) -> dict[str, Any]:
    db = services.db
    return {
        "memories": await db.fetch(
            """SELECT id, tier, content, embedding IS NOT NULL AS embedded, access_count, metadata
               FROM memories WHERE user_id = %s ORDER BY tier, content""",
            (user,),
        ),
        "messages": await db.fetch(
            "SELECT id, role, content FROM chat_messages WHERE thread_id = %s ORDER BY created_at", (thread,)
        ),
        "usage": await db.fetch(
            """SELECT site, model, input_tokens, output_tokens, calls, turn_key
               FROM llm_usage WHERE user_id = %s""",
            (user,),
        ),
    }


async def test_one_turn_is_one_round_trip_and_writes_everything(services, user, writeback) -> None:
    thread = await services.threads.create(user)
    recalled, _ = await services.memory.add(
        user, "project", "Goal: run a half marathon", now=NOW - timedelta(days=3)
    )
    turn = turn_record(user, thread, "My brother is called Tom", recalled=[uuid.UUID(recalled)])

    with count_round_trips((services.db.pool,)):
        before = COUNTER.total - COUNTER.pool_checks
        result = await writeback.write(turn)
        trips = COUNTER.total - COUNTER.pool_checks - before

    assert trips == 1 and result.embedded
    s = await state_of(services, user, thread)
    assert [(m["role"], m["content"]) for m in s["messages"]] == [
        ("user", "My brother is called Tom"),
        ("assistant", "Noted, thank you."),
    ]
    assert {(m["tier"], m["content"], m["embedded"]) for m in s["memories"]} == {
        ("personal", "My brother is called Tom", True),
        ("project", "Goal: run a half marathon", True),
        ("task", "User said: My brother is called Tom", True),
    }
    assert next(m for m in s["memories"] if m["tier"] == "project")["access_count"] == 1
    row = await services.db.fetchrow("SELECT accessed_at FROM memories WHERE id = %s", (uuid.UUID(recalled),))
    assert row["accessed_at"] == NOW
    assert s["usage"] == [
        {
            "site": "chat.turn",
            "model": "gpt-4o-mini",
            "input_tokens": 900,
            "output_tokens": 120,
            "calls": 2,
            "turn_key": turn.turn_key,
        }
    ]


async def test_a_replayed_write_back_writes_nothing_twice(services, user, writeback) -> None:
    thread = await services.threads.create(user)
    recalled, _ = await services.memory.add(user, "personal", "I have a dog named Rex", now=NOW)
    # The exchange repeats an existing memory (merges into it) and recalls one.
    await services.memory.add(user, "task", "User said: walked Rex twice today", {"tags": ["old"]}, now=NOW)
    turn = turn_record(user, thread, "walked Rex twice today", recalled=[uuid.UUID(recalled)])
    await writeback.write(turn)
    first = await state_of(services, user, thread)

    await writeback.write(turn)  # a resumed or retried run
    await writeback.write(replace(turn, now=NOW + timedelta(minutes=5)))  # ...with a later clock

    assert await state_of(services, user, thread) == first
    merged = next(m for m in first["memories"] if m["tier"] == "task")
    assert merged["access_count"] == 1 and merged["metadata"]["tags"] == ["chat", "old"]
    assert next(m for m in first["memories"] if m["content"] == "I have a dog named Rex")["access_count"] == 1
    assert len(first["usage"]) == 1 and len(first["messages"]) == 2


async def test_someone_elses_thread_is_refused_and_nothing_is_written(services, user, writeback) -> None:
    owner = (await services.users.ensure(f"owner-{uuid.uuid4().hex[:8]}")).id
    thread = await services.threads.create(owner)
    recalled, _ = await services.memory.add(user, "personal", "I like tea", now=NOW)
    before = await state_of(services, user, thread)

    with pytest.raises(NotFound):
        await writeback.write(turn_record(user, thread, "My aunt is Rosa", recalled=[uuid.UUID(recalled)]))

    # The transcript statement failed, so the whole transaction did: no memory, stat or usage.
    assert await state_of(services, user, thread) == before
    assert (await state_of(services, owner, thread))["messages"] == []


async def test_a_thread_seen_first_here_is_registered_to_the_user(services, user, writeback) -> None:
    thread = f"studio-{uuid.uuid4()}"
    await writeback.write(turn_record(user, thread, "hello"))
    row = await services.db.fetchrow("SELECT user_id FROM threads WHERE id = %s", (thread,))
    assert row["user_id"] == user


async def test_failed_embedding_stores_memories_without_vector_then_a_later_turn_embeds_them(
    services, user, writeback, embedder
) -> None:
    thread = await services.threads.create(user)
    embedder.down = True
    result = await writeback.write(turn_record(user, thread, "My sister is called Maya"))

    assert not result.embedded
    s = await state_of(services, user, thread)
    assert len(s["messages"]) == 2 and len(s["usage"]) == 1  # the turn is fully recorded
    assert {(m["tier"], m["embedded"]) for m in s["memories"]} == {("personal", False), ("task", False)}
    assert (await services.memory.retrieve(user, "sister Maya", now=NOW))["personal"] == []

    # Still down: the next turn does not try the waiting ones again (nor wait for them).
    requests = embedder.requests
    await writeback.write(turn_record(user, thread, "It rained all day"))
    assert embedder.requests == requests + 1

    embedder.down = False
    result = await writeback.write(turn_record(user, thread, "I went swimming"))

    assert result.embedded and result.settled == 4
    s = await state_of(services, user, thread)
    assert all(m["embedded"] for m in s["memories"]) and len(s["memories"]) == 6
    (hit,) = (await services.memory.retrieve(user, "sister Maya", now=NOW))["personal"][:1]
    assert hit.content == "My sister is called Maya"
