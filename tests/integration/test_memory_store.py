"""The memory store on the embedded Postgres: user filter inside the query, tier quotas, the
documented ranking, access stats, near-duplicate merging, expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.memory import rank_score

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
async def user(services) -> uuid.UUID:
    return (await services.users.ensure(f"mem-{uuid.uuid4().hex[:8]}")).id


async def test_retrieval_is_filtered_by_user_in_the_query(services, user) -> None:
    other = (await services.users.ensure(f"other-{uuid.uuid4().hex[:8]}")).id
    await services.memory.add(other, "personal", "My favourite colour is green", now=NOW)
    await services.memory.add(user, "personal", "I live in Lisbon", now=NOW)
    hits = await services.memory.retrieve(user, "favourite colour green", now=NOW)
    assert all(h.content != "My favourite colour is green" for hs in hits.values() for h in hs)
    assert (await services.memory.retrieve(other, "favourite colour", now=NOW))["personal"][0].content == (
        "My favourite colour is green"
    )


async def test_tier_quotas_and_ranking(services, user) -> None:
    for i in range(8):
        await services.memory.add(
            user, "personal", f"running fact number {i} about marathon training", now=NOW
        )
        await services.memory.add(user, "project", f"marathon project note {i} training plan", now=NOW)
        await services.memory.add(user, "task", f"task {i}: marathon training session logged", now=NOW)
    hits = await services.memory.retrieve(user, "marathon training", now=NOW)
    assert [len(hits[t]) for t in ("personal", "project", "task")] == [5, 3, 3]
    for tier_hits in hits.values():
        scores = [h.score for h in tier_hits]
        assert scores == sorted(scores, reverse=True)


async def test_ranking_uses_recency_and_frequency(services, user) -> None:
    old, _ = await services.memory.add(
        user, "personal", "I enjoy painting watercolours", now=NOW - timedelta(days=60)
    )
    new, _ = await services.memory.add(user, "personal", "I enjoy painting watercolour landscapes", now=NOW)
    hits = (await services.memory.retrieve(user, "painting watercolours", now=NOW, touch=False))["personal"]
    by_id = {h.id: h for h in hits}
    # The score is exactly the documented formula over the stored stats.
    for h in hits:
        row = await services.db.fetchrow(
            "SELECT accessed_at, access_count FROM memories WHERE id = %s", (uuid.UUID(h.id),)
        )
        expected = rank_score(
            h.similarity, row["accessed_at"], row["access_count"], NOW, services.memory.params
        )
        assert h.score == pytest.approx(expected, abs=1e-3)
    # The 60-day-old memory is more similar to the query, but recency puts the new one first.
    assert by_id[old].similarity > by_id[new].similarity
    assert hits[0].id == new


async def test_retrieval_updates_access_stats(services, user) -> None:
    mid, _ = await services.memory.add(user, "personal", "My partner is called Sam", now=NOW)
    later = NOW + timedelta(hours=3)
    await services.memory.retrieve(user, "partner Sam", now=later)
    await services.memory.retrieve(user, "who is Sam", now=later)
    row = await services.db.fetchrow(
        "SELECT accessed_at, access_count FROM memories WHERE id = %s", (uuid.UUID(mid),)
    )
    assert row["access_count"] == 2 and row["accessed_at"] == later
    await services.memory.retrieve(user, "partner Sam", now=later, touch=False)
    row = await services.db.fetchrow("SELECT access_count FROM memories WHERE id = %s", (uuid.UUID(mid),))
    assert row["access_count"] == 2


async def test_near_duplicates_merge_within_user_and_tier_only(services, user) -> None:
    a, merged_a = await services.memory.add(
        user, "personal", "I am training for the Berlin marathon", {"tags": ["a"]}, now=NOW
    )
    b, merged_b = await services.memory.add(
        user, "personal", "I am training for the Berlin marathon.", {"tags": ["b"]}, now=NOW
    )
    assert (merged_a, merged_b, b) == (False, True, a)
    row = await services.db.fetchrow(
        "SELECT metadata, access_count FROM memories WHERE id = %s", (uuid.UUID(a),)
    )
    assert row["metadata"]["tags"] == ["a", "b"] and row["access_count"] == 1
    # The same text in another tier, or for another user, is a different memory.
    c, merged_c = await services.memory.add(user, "project", "I am training for the Berlin marathon", now=NOW)
    other = (await services.users.ensure(f"dup-{uuid.uuid4().hex[:8]}")).id
    d, merged_d = await services.memory.add(
        other, "personal", "I am training for the Berlin marathon", now=NOW
    )
    assert not merged_c and not merged_d and len({a, c, d}) == 3
    # A merely related memory (similarity below 0.95) is kept apart.
    e, merged_e = await services.memory.add(
        user, "personal", "I ran the Berlin marathon last year in 4 hours", now=NOW
    )
    assert not merged_e and e != a


async def test_task_memories_expire_after_30_days(services, user) -> None:
    mid, _ = await services.memory.add(user, "task", "Logged a 20 minute yoga session", now=NOW)
    row = await services.db.fetchrow("SELECT expires_at FROM memories WHERE id = %s", (uuid.UUID(mid),))
    assert row["expires_at"] == NOW + timedelta(days=30)
    pid, _ = await services.memory.add(user, "personal", "Yoga calms me down", now=NOW)
    assert (await services.db.fetchrow("SELECT expires_at FROM memories WHERE id = %s", (uuid.UUID(pid),)))[
        "expires_at"
    ] is None
    assert (await services.memory.retrieve(user, "yoga session", now=NOW + timedelta(days=29)))["task"]
    assert (await services.memory.retrieve(user, "yoga session", now=NOW + timedelta(days=31)))["task"] == []


async def test_idempotent_write_with_a_given_id(services, user) -> None:
    mid = uuid.uuid4()
    first = await services.memory.add(user, "task", "Wrote the intro chapter", now=NOW, memory_id=mid)
    n = (await services.db.fetchrow("SELECT count(*) AS n FROM memories WHERE user_id = %s", (user,)))["n"]
    second = await services.memory.add(user, "task", "Wrote the intro chapter", now=NOW, memory_id=mid)
    assert first[0] == second[0] == str(mid)
    assert (await services.db.fetchrow("SELECT count(*) AS n FROM memories WHERE user_id = %s", (user,)))[
        "n"
    ] == n


async def test_recall_and_write_are_one_round_trip_each(services, user) -> None:
    from bench.probe import COUNTER, count_round_trips

    await services.embeddings.aembed_query("marathon training plan")
    await services.embeddings.aembed_query("I run on Sundays")

    def statements() -> int:  # round trips other than the pool's checkout checks
        return COUNTER.total - COUNTER.pool_checks

    with count_round_trips((services.db.pool,)):
        before = statements()
        await services.memory.retrieve(user, "marathon training plan", now=NOW)  # three tiers + touch
        recall = statements() - before
        before = statements()
        await services.memory.add(user, "personal", "I run on Sundays", now=NOW)  # merge check + insert
        write = statements() - before
    assert (recall, write) == (1, 1)


async def _waiting(services, user, tier, content, tags):
    mid = uuid.uuid4()
    sql, params = services.memory.add_statement(
        user, tier, content, {"tags": tags}, None, now=NOW, memory_id=mid
    )
    await services.db.execute(sql, params)
    return mid


async def test_a_memory_without_vector_waits_until_settled(services, user) -> None:
    mid = await _waiting(services, user, "personal", "My cat is called Miso", ["chat"])

    assert (await services.memory.retrieve(user, "cat Miso", now=NOW))["personal"] == []
    sql, params = services.memory.waiting_statement(user)
    assert [r["id"] for r in await services.db.fetch(sql, params)] == [mid]
    other = (await services.users.ensure(f"wait-{uuid.uuid4().hex[:8]}")).id
    sql, params = services.memory.waiting_statement(other)
    assert await services.db.fetch(sql, params) == []  # owner-filtered

    vector = await services.embeddings.aembed_query("My cat is called Miso")
    await services.db.execute(*services.memory.settle_statement(user, mid, vector, NOW))

    (hit,) = (await services.memory.retrieve(user, "cat Miso", now=NOW))["personal"]
    assert hit.id == str(mid)
    sql, params = services.memory.waiting_statement(user)
    assert await services.db.fetch(sql, params) == []


async def test_settling_a_near_duplicate_merges_it_into_the_existing_memory(services, user) -> None:
    kept, _ = await services.memory.add(
        user, "personal", "I am training for the Berlin marathon", {"tags": ["b", "a"]}, now=NOW
    )
    mid = await _waiting(services, user, "personal", "I am training for the Berlin marathon.", ["chat"])

    vector = await services.embeddings.aembed_query("I am training for the Berlin marathon.")
    await services.db.execute(*services.memory.settle_statement(user, mid, vector, NOW))

    assert await services.db.fetchrow("SELECT 1 FROM memories WHERE id = %s", (mid,)) is None
    row = await services.db.fetchrow(
        "SELECT metadata, access_count FROM memories WHERE id = %s", (uuid.UUID(kept),)
    )
    assert row["metadata"]["tags"] == ["a", "b", "chat"] and row["access_count"] == 1
