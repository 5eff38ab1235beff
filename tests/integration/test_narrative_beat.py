"""narrative_beat end to end on the embedded Postgres with the offline model: a goal with its
plan and a week of history becomes a stored beat, a project memory, recorded hidden quests and
an in-app notification; re-running without a new trigger writes and calls nothing. Also the
NarrativeStore queries the graph and the API rely on (owner scoping, counts, tags)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import NotFound
from domain.ids import stable_id
from domain.narrative import HIDDEN_QUESTS
from graphs.narrative_beat import GRAPH, build
from nodes.context import Context
from services.narrative import beat_notification_key
from state.goal_decomposition import MilestoneDraft, MissionDraft
from state.goals import Goal

pytestmark = pytest.mark.db

NOW = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)
PRACTICE = "Practised the C to G chord change for twenty minutes and it finally clicked."
PREF = "Loves fantasy stories with dragons and quiet forests."


async def new_user(services: Any, prefix: str) -> uuid.UUID:
    return (await services.users.ensure(f"{prefix}-{uuid.uuid4().hex[:10]}")).id


async def make_goal(services: Any, user: uuid.UUID, title: str = "Learn to play the guitar") -> Goal:
    goal = await services.goals.create(
        user,
        goal_id=uuid.uuid4(),
        title=title,
        description="Play three songs at my sister's wedding.",
        value_category="craft",
        target_date=None,
        emotional_driver="joy",
    )
    milestones = [MilestoneDraft(title=t, description="") for t in ("First chords", "First song", "On stage")]
    missions = [
        [
            MissionDraft(
                title=f"{ms.title}: step {j}", description="", estimated_minutes=20, energy_level="medium"
            )
            for j in range(1, 5)
        ]
        for ms in milestones
    ]
    await services.goals.store_plan(goal, milestones, missions, NOW - timedelta(days=10))
    return goal


async def mission_ids(services: Any, goal: Goal) -> list[list[uuid.UUID]]:
    plan = await services.goals.plan(uuid.UUID(goal.id))
    return [[uuid.UUID(m["id"]) for m in ms["missions"]] for ms in plan["milestones"]]


async def a_week_of_history(services: Any, user: uuid.UUID, goal: Goal) -> list[list[uuid.UUID]]:
    """Milestone 1 done (4/4), 3 of 4 in milestones 2 and 3: 10 completions, at least one on
    each of the last 7 days (a 7-day streak), and one skip yesterday."""
    ids = await mission_ids(services, goal)
    done = [*ids[0], *ids[1][:3], *ids[2][:3]]
    for i, mission in enumerate(done):
        at = NOW - timedelta(days=i % 7, hours=1 + i // 7)
        await services.missions.transition(user, mission, "complete", now=at)
    await services.missions.transition(user, ids[2][3], "skip", now=NOW - timedelta(days=1))
    return ids


async def run(services: Any, user: uuid.UUID, goal_id: str, now: datetime = NOW) -> dict[str, Any]:
    graph = build(services.settings).compile(checkpointer=services.checkpointer, name=GRAPH)
    ctx = Context(
        user_id=user, thread_id=f"narrative:{uuid.uuid4()}", timezone="UTC", now=now, services=services
    )
    return await graph.ainvoke(
        {"goal_id": goal_id}, {"configurable": {"thread_id": ctx.thread_id}}, context=ctx
    )


async def count(services: Any, sql: str, *params: Any) -> int:
    row = await services.db.fetchrow(f"SELECT count(*) AS n FROM {sql}", params)
    return int(row["n"])


async def usage_rows(services: Any, user: uuid.UUID) -> list[tuple[str, str]]:
    rows = await services.db.fetch(
        "SELECT site, model FROM llm_usage WHERE user_id = %s ORDER BY site, id", (user,)
    )
    return [(r["site"], r["model"]) for r in rows]


async def test_a_week_of_progress_becomes_a_beat_memory_quests_and_notification(services) -> None:
    user = await new_user(services, "narr")
    goal = await make_goal(services, user)
    other_goal = await make_goal(services, user, "Run a half marathon")
    await a_week_of_history(services, user, goal)
    day = timedelta(days=1)
    await services.memory.add(
        user, "project", PRACTICE, {"goal_id": goal.id, "tags": ["practice"]}, now=NOW - 2 * day
    )
    await services.memory.add(
        user,
        "project",
        "Bought new running shoes for the long runs.",
        {"goal_id": other_goal.id},
        now=NOW - day,
    )
    await services.memory.add(user, "personal", PREF, {"tags": ["narrative_pref"]}, now=NOW - 3 * day)
    await services.memory.add(user, "personal", "Works night shifts at the hospital.", {"tags": []}, now=NOW)
    stranger = await new_user(services, "stranger")
    await services.memory.add(
        stranger, "personal", "Adores grim noir detective stories.", {"tags": ["narrative_pref"]}, now=NOW
    )

    out = await run(services, user, goal.id)

    gid = uuid.UUID(goal.id)
    beat_id = stable_id(user, gid, "milestone:1")
    beat = out["beat"]
    assert out["created"] is True and out["degraded"] == []
    assert beat["id"] == str(beat_id) and beat["beat_type"] == "milestone" and beat["goal_id"] == goal.id
    assert beat["title"] == "Milestone 1: First chords"
    assert 200 <= len(beat["text"].split()) <= 400
    # woven from this goal's memory and this user's story preference, nothing else
    assert PRACTICE in beat["text"] and PREF in beat["text"]
    assert "running shoes" not in beat["text"] and "night shifts" not in beat["text"]
    assert "noir" not in beat["text"]
    # 10 completions and a 7-day streak: both thresholds met, both recorded
    assert beat["unlocks"] == ["streak_7", "missions_10"]
    assert [q["key"] for q in out["unlocks"]] == ["streak_7", "missions_10"]
    quests = await services.narrative.list_unlocks(user)
    assert {q["key"] for q in quests} == {"streak_7", "missions_10"}
    assert {q["title"] for q in quests} == {"The Steady Flame", "Ten Small Victories"}
    assert all(q["unlocked_at"] == NOW for q in quests)
    # the beat row
    row = await services.db.fetchrow("SELECT * FROM narrative_beats WHERE id = %s", (beat_id,))
    assert row["user_id"] == user and row["goal_id"] == gid and row["trigger_key"] == "milestone:1"
    assert row["text"] == beat["text"] and row["unlocks"] == ["streak_7", "missions_10"]
    # the project memory of the story
    memory = await services.db.fetchrow(
        "SELECT tier, content, metadata FROM memories WHERE id = %s", (stable_id(beat_id, "memory"),)
    )
    assert memory["tier"] == "project" and beat["text"] in memory["content"]
    assert memory["metadata"]["goal_id"] == goal.id and memory["metadata"]["beat_type"] == "milestone"
    assert memory["metadata"]["unlocks"] == ["streak_7", "missions_10"]
    assert memory["metadata"]["tags"] == ["narrative", "story_beat", "milestone"]
    # the in-app notification with the teaser
    note = await services.db.fetchrow(
        "SELECT user_id, kind, title, body FROM notifications WHERE dedupe_key = %s",
        (beat_notification_key(beat_id),),
    )
    assert note["user_id"] == user and note["kind"] == "narrative_beat"
    assert note["body"] == out["teaser"] and note["title"] == beat["title"]
    # one premium call for the story, one cheap call for the teaser
    assert await usage_rows(services, user) == [
        ("narrative.story", "gpt-4o"),
        ("narrative.teaser", "gpt-4o-mini"),
    ]
    assert out["usage"]["calls"] == 2 and out["usage"]["cost_usd"] > 0
    # what the API lists
    (listed,) = await services.narrative.list_beats(user)
    assert (
        listed["id"] == str(beat_id)
        and listed["title"] == beat["title"]
        and listed["teaser"] == out["teaser"]
    )
    assert listed["created_at"] == NOW and listed["trigger_key"] == "milestone:1"
    assert await services.narrative.list_beats(user, goal_id=uuid.UUID(other_goal.id)) == []
    assert await services.narrative.list_beats(stranger) == []

    # re-run, nothing new: the same beat, no model call, no write
    memories = await count(services, "memories WHERE user_id = %s", user)
    again = await run(services, user, goal.id)
    assert again["created"] is False
    assert again["beat"] == beat and again["teaser"] == out["teaser"] and again["unlocks"] == out["unlocks"]
    assert again["usage"]["calls"] == 0
    assert len(await usage_rows(services, user)) == 2
    assert await count(services, "narrative_beats WHERE user_id = %s", user) == 1
    assert await count(services, "memories WHERE user_id = %s", user) == memories
    assert await count(services, "notifications WHERE user_id = %s AND kind = 'narrative_beat'", user) == 1


async def test_the_next_milestone_makes_the_next_beat_then_nothing_new(services) -> None:
    user = await new_user(services, "narr2")
    goal = await make_goal(services, user)
    ids = await a_week_of_history(services, user, goal)
    first = await run(services, user, goal.id)
    later = NOW + timedelta(hours=2)
    await services.missions.transition(user, ids[1][3], "complete", now=NOW + timedelta(hours=1))

    second = await run(services, user, goal.id, now=later)
    assert second["created"] is True and second["beat"]["beat_type"] == "milestone"
    assert second["beat"]["id"] == str(stable_id(user, uuid.UUID(goal.id), "milestone:2"))
    assert second["unlocks"] == [] and second["beat"]["unlocks"] == []  # 11 missions: no new quest

    # the progression at 11 completions would retell the milestone-2 beat: no new trigger
    third = await run(services, user, goal.id, now=later)
    assert third["created"] is False and third["beat"]["id"] == second["beat"]["id"]
    assert [b["id"] for b in await services.narrative.list_beats(user)] == [
        second["beat"]["id"],
        first["beat"]["id"],
    ]
    assert len(await usage_rows(services, user)) == 4


async def test_goal_progress_counts(services) -> None:
    user = await new_user(services, "narr3")
    goal = await make_goal(services, user)
    await a_week_of_history(services, user, goal)
    await services.goals.update(
        user, uuid.UUID((await make_goal(services, user, "Done goal")).id), {"status": "completed"}
    )
    p = await services.narrative.goal_progress(user, uuid.UUID(goal.id), now=NOW)
    assert p["goal_missions_total"] == 12 and p["goal_missions_completed"] == 10
    assert p["recent_skips"] == 1
    assert p["missions_completed"] == 10 and p["goals_completed"] == 1
    assert [(m["sequence"], m["missions"], m["completed"]) for m in p["milestones"]] == [
        (1, 4, 4),
        (2, 4, 3),
        (3, 4, 3),
    ]
    assert p["milestones"][0]["title"] == "First chords"
    assert p["unlocked"] == [] and p["beat_keys"] == [] and p["last_beat_id"] is None
    # a skip outside the 7-day window does not count
    assert (await services.narrative.goal_progress(user, uuid.UUID(goal.id), now=NOW + timedelta(days=7)))[
        "recent_skips"
    ] == 0
    assert (await services.progress.recent(user, "UTC", NOW)).streak_days == 7
    # someone else's goal counts as empty
    stranger = await new_user(services, "narr3x")
    theirs = await services.narrative.goal_progress(stranger, uuid.UUID(goal.id), now=NOW)
    assert theirs["goal_missions_total"] == 0 and theirs["milestones"] == [] and theirs["recent_skips"] == 0


async def test_unlocks_are_recorded_once(services) -> None:
    user = await new_user(services, "narr4")
    quests = [q for q in HIDDEN_QUESTS if q.key in ("streak_7", "first_goal")]
    assert sorted(await services.narrative.record_unlocks(user, quests, now=NOW)) == [
        "first_goal",
        "streak_7",
    ]
    assert await services.narrative.record_unlocks(user, quests, now=NOW + timedelta(days=1)) == []
    listed = await services.narrative.list_unlocks(user)
    assert [q["key"] for q in listed] == ["first_goal", "streak_7"]
    assert all(q["unlocked_at"] == NOW for q in listed)  # the first unlock's time stays


async def test_someone_elses_goal_is_not_found(services) -> None:
    owner = await new_user(services, "narr5")
    goal = await make_goal(services, owner)
    intruder = await new_user(services, "narr5x")
    with pytest.raises(NotFound):
        await run(services, intruder, goal.id)
    assert await count(services, "narrative_beats WHERE goal_id = %s", uuid.UUID(goal.id)) == 0
    assert await usage_rows(services, intruder) == []
