"""adaptive_mission end to end on the embedded Postgres: every path with real rows (missions,
progress events, chat messages, task memories), the router at and around each threshold, order
of precedence, once-per-day creation, owner scoping of every read, the user's local midnight,
and fallbacks. Emotions come from the offline lexicon (plain `feeling` text) or, at the
thresholds, from a scripted model."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain.ids import stable_id
from engine import RunRequest
from graphs.adaptive_mission import GRAPH, build
from nodes.context import Context
from services.adaptive import AdaptiveReads
from services.llm.gateway import ModelGateway
from services.llm.lexicon import score_emotions
from state.schemas import EmotionScores
from tests.support.engine import engine_for
from tests.support.fakes import FakeUsageSink, ScriptedChatModel, bad_request_error

NOW = datetime(2026, 5, 12, 15, 0, tzinfo=UTC)
TODAY = date(2026, 5, 12)
H = timedelta(hours=1)

SAD = "I feel so sad and lonely today, I just want to cry."
JOYFUL = "I am thrilled and so happy, what an amazing day!"
CALM = "Checking in about my plans for the week."
OUTPUT_KEYS = {"path", "reason", "missions", "emotion", "energy", "completed_last_day", "degraded"}


# --- helpers -----------------------------------------------------------------------------------------


async def new_user(services: Any, label: str = "adaptive") -> uuid.UUID:
    return (await services.users.ensure(f"{label}-{uuid.uuid4().hex[:10]}")).id


@pytest.fixture
async def user(services: Any) -> uuid.UUID:
    return await new_user(services)


def scripted(services: Any, *answers: EmotionScores) -> tuple[Any, ScriptedChatModel]:
    """`services` with a scripted model: the queued emotion answers first, then the offline
    answers (so the challenge path still gets its ChallengeDraft)."""
    model = ScriptedChatModel().answer_analysis(*answers)
    gateway = ModelGateway(
        services.settings, {"cheap": model, "premium": model}, kind="offline", sink=FakeUsageSink()
    )
    return dataclasses.replace(services, llm=gateway), model


async def run(
    services: Any, user: uuid.UUID, feeling: str | None = None, *, now: datetime = NOW, tz: str = "UTC"
) -> dict[str, Any]:
    ctx = Context(user_id=user, thread_id=f"adaptive-{uuid.uuid4()}", timezone=tz, now=now, services=services)
    return await build(services.settings).compile(name=GRAPH).ainvoke({"feeling": feeling}, context=ctx)


async def complete(
    services: Any, user: uuid.UUID, n: int, *, at: datetime = NOW - H, minutes: int = 10
) -> list[str]:
    """`n` missions completed one minute apart, the first at `at`; their ids, newest first."""
    ids = []
    for i in range(n):
        mid = uuid.uuid4()
        await services.missions.create_once(
            user,
            mid,
            title=f"finished {i}",
            description="",
            estimated_minutes=minutes,
            energy_level="medium",
            kind="regular",
        )
        await services.missions.transition(user, mid, "complete", now=at - timedelta(minutes=i))
        ids.append(str(mid))
    return ids


async def record_emotion(services: Any, user: uuid.UUID, at: datetime, **scores: float) -> None:
    """A chat task memory as the chat graph writes it (distinct words: never merged)."""
    await services.memory.add(
        user,
        "task",
        f"User said: {uuid.uuid4().hex} {uuid.uuid4().hex}",
        {"emotion": max(scores, key=scores.__getitem__), "emotion_scores": scores, "tags": ["chat"]},
        now=at,
    )


async def say(services: Any, user: uuid.UUID, *messages: tuple[str, str, datetime]) -> None:
    """Transcript rows (role, content, created_at) on a new thread of `user`."""
    thread = await services.threads.create(user)
    for role, content, at in messages:
        await services.db.execute(
            """INSERT INTO chat_messages (id, thread_id, role, content, created_at)
               VALUES (%s, %s, %s, %s, %s)""",
            (str(uuid.uuid4()), thread, role, content, at),
        )


async def missions_of(services: Any, user: uuid.UUID, kind: str | None = None) -> list[dict[str, Any]]:
    return await services.db.fetch(
        "SELECT id, kind FROM missions WHERE user_id = %s AND (%s::text IS NULL OR kind = %s)",
        (user, kind, kind),
    )


async def usage_sites(services: Any, user: uuid.UUID) -> list[str]:
    rows = await services.db.fetch("SELECT site FROM llm_usage WHERE user_id = %s ORDER BY id", (user,))
    return [r["site"] for r in rows]


def test_the_lexicon_texts_are_plainly_what_the_tests_need() -> None:
    assert score_emotions(SAD)["sadness"] > 0.7
    assert score_emotions(JOYFUL)["joy"] > 0.8
    assert score_emotions(CALM)["neutral"] == 1.0


# --- the four paths, offline model ------------------------------------------------------------------


async def test_sad_feeling_creates_one_self_care_mission_per_day(services: Any, user: uuid.UUID) -> None:
    first = await run(services, user, SAD)
    again = await run(services, user, SAD, now=NOW + 2 * H)

    assert set(first) == OUTPUT_KEYS
    json.dumps(first)  # plain JSON all the way down
    assert first["path"] == "self_care"
    assert first["reason"].startswith(f"sadness {score_emotions(SAD)['sadness']:.2f} > 0.7")
    assert first["emotion"]["dominant"] == "sadness"
    assert first["degraded"] == []
    (m,) = first["missions"]
    assert m["id"] == str(stable_id(user, "self_care", TODAY))
    assert (m["kind"], m["energy_level"], m["status"]) == ("self_care", "low", "pending")
    assert 5 <= m["estimated_minutes"] <= 15
    # Same local day: the same mission, not a second one.
    assert again["missions"] == first["missions"]
    assert len(await missions_of(services, user, "self_care")) == 1
    # The next day brings a new one.
    tomorrow = await run(services, user, SAD, now=NOW + 24 * H)
    assert tomorrow["missions"][0]["id"] == str(stable_id(user, "self_care", TODAY + timedelta(days=1)))
    assert len(await missions_of(services, user, "self_care")) == 2


async def test_low_recorded_energy_alone_means_self_care(services: Any, user: uuid.UUID) -> None:
    await record_emotion(services, user, NOW - 2 * H, sadness=0.9)

    out = await run(services, user, None)  # no feeling, no messages: neutral, no model call

    assert out["emotion"] == {"dominant": "neutral", "scores": {"neutral": 1.0}}
    assert out["energy"] == "low"
    assert out["path"] == "self_care"
    assert out["reason"].startswith("energy is low")
    assert await usage_sites(services, user) == []


async def test_joyful_rested_user_gets_one_challenge_toward_the_top_goal(
    services: Any, user: uuid.UUID
) -> None:
    for title, target in (("Write a novel", None), ("Run a half marathon", date(2026, 9, 1))):
        await services.goals.create(
            user,
            goal_id=uuid.uuid4(),
            title=title,
            description="",
            value_category="health",
            target_date=target,
            emotional_driver=None,
        )
    top = next(g for g in await services.goals.list(user) if g.title == "Run a half marathon")
    await record_emotion(services, user, NOW - 3 * H, joy=0.9)

    out = await run(services, user, JOYFUL)
    again = await run(services, user, JOYFUL, now=NOW + H)

    assert (out["path"], out["energy"]) == ("challenge", "high")
    assert "joy 0.99 > 0.8 and energy is high" in out["reason"]
    (m,) = out["missions"]
    assert m["id"] == str(stable_id(user, "challenge", TODAY))
    assert (m["kind"], m["energy_level"], m["goal_id"]) == ("challenge", "high", top.id)
    assert "Run a half marathon" in m["title"]
    assert 30 <= m["estimated_minutes"] <= 90
    assert again["missions"] == out["missions"]
    assert len(await missions_of(services, user, "challenge")) == 1
    # One scoring call per run, one drafting call per day.
    assert sorted(await usage_sites(services, user)) == [
        "adaptive.assess_emotion",
        "adaptive.assess_emotion",
        "adaptive.challenge",
    ]


async def test_challenge_without_an_active_goal_is_a_general_growth_challenge(
    services: Any, user: uuid.UUID
) -> None:
    await record_emotion(services, user, NOW - H, joy=1.0)

    out = await run(services, user, JOYFUL)

    (m,) = out["missions"]
    assert out["path"] == "challenge"
    assert (m["goal_id"], m["value_category"], m["energy_level"]) == (None, "growth", "high")


async def test_productive_day_celebrates_with_rest_and_lists_the_day(services: Any, user: uuid.UUID) -> None:
    done = await complete(services, user, 3)
    await complete(services, user, 1, at=NOW - 25 * H)  # more than a day ago
    other = await new_user(services)
    await complete(services, other, 2)

    out = await run(services, user, CALM)
    again = await run(services, user, CALM, now=NOW + H)

    assert out["completed_last_day"] == 3
    assert out["path"] == "celebration"
    assert "3 missions completed in the last day" in out["reason"]
    rest, *listed = out["missions"]
    assert rest["id"] == str(stable_id(user, "celebration", TODAY))
    assert (rest["kind"], rest["energy_level"], rest["status"]) == ("celebration", "low", "pending")
    assert [m["id"] for m in listed] == done
    assert all(m["status"] == "completed" for m in listed)
    assert again["missions"][0] == rest
    assert len(await missions_of(services, user, "celebration")) == 1


async def test_ordinary_day_offers_the_priority_triad_and_creates_nothing(
    services: Any, user: uuid.UUID
) -> None:
    async def pending(title: str, energy: str, priority: float, owner: uuid.UUID = user) -> str:
        mid = uuid.uuid4()
        await services.missions.create_once(
            owner,
            mid,
            title=title,
            description="",
            estimated_minutes=20,
            energy_level=energy,
            kind="regular",
            priority=priority,
        )
        return str(mid)

    best_high = await pending("high a", "high", 0.9)
    await pending("high b", "high", 0.5)
    medium = await pending("medium", "medium", 0.4)
    low = await pending("low", "low", 0.7)
    await pending("low b", "low", 0.2)
    await pending("someone else's", "high", 0.99, owner=await new_user(services))
    started = await pending("started", "medium", 0.95)
    await services.missions.transition(user, uuid.UUID(started), "start", now=NOW - H)
    await complete(services, user, 1)  # completed: never in the triad
    before = len(await missions_of(services, user))

    out = await run(services, user, CALM)

    assert out["path"] == "triad"
    assert out["completed_last_day"] == 1
    assert [m["id"] for m in out["missions"]] == [best_high, medium, low]
    assert [m["energy_level"] for m in out["missions"]] == ["high", "medium", "low"]
    assert len(await missions_of(services, user)) == before


# --- the router at its thresholds and in order, end to end ------------------------------------------

THRESHOLD_CASES = {
    # name: (emotion scored now, recorded emotion for energy, completions in the last hours, path)
    # The stated feeling is the newest emotion: it sets the energy (joy 0.5 keeps it medium here,
    # so the sadness threshold itself decides).
    "sadness 0.70": (EmotionScores(sadness=0.70, joy=0.5), None, 0, "triad"),
    "sadness 0.71": (EmotionScores(sadness=0.71, joy=0.5), None, 0, "self_care"),
    "joy 0.80, high energy": (EmotionScores(joy=0.80), {"joy": 0.9}, 0, "triad"),
    "joy 0.81, high energy": (EmotionScores(joy=0.81), {"joy": 0.9}, 0, "challenge"),
    "joy 0.81 stated, nothing recorded": (EmotionScores(joy=0.81), None, 0, "challenge"),
    "joy 0.81 stated over a recorded low": (EmotionScores(joy=0.81), {"sadness": 0.9}, 0, "challenge"),
    "joy 0.81, medium energy": (EmotionScores(joy=0.81, sadness=0.6), None, 0, "triad"),
    "2 completions": (EmotionScores(neutral=1.0), None, 2, "triad"),
    "3 completions": (EmotionScores(neutral=1.0), None, 3, "celebration"),
    "sad and 3 completions": (EmotionScores(sadness=0.9), None, 3, "self_care"),
    "joy 0.9, high energy, 3 completions": (EmotionScores(joy=0.9), {"joy": 0.9}, 3, "challenge"),
    "sadness 0.9 before joy 0.9": (EmotionScores(joy=0.9, sadness=0.9), {"joy": 0.9}, 0, "self_care"),
}


@pytest.mark.parametrize("case", THRESHOLD_CASES, ids=list(THRESHOLD_CASES))
async def test_router_thresholds_and_precedence_end_to_end(services: Any, user: uuid.UUID, case: str) -> None:
    now_scores, recorded, completions, expected = THRESHOLD_CASES[case]
    svc, model = scripted(services, now_scores)
    if recorded:
        await record_emotion(services, user, NOW - 2 * H, **recorded)
    await complete(services, user, completions)

    out = await run(svc, user, "how I feel")

    assert out["path"] == expected, out["reason"]
    assert out["degraded"] == []
    assert out["completed_last_day"] == completions
    assert out["emotion"]["scores"]["sadness"] == now_scores.sadness
    assert out["emotion"]["scores"]["joy"] == now_scores.joy
    assert f"sadness {now_scores.sadness:.2f}, joy {now_scores.joy:.2f}" in out["reason"]
    created = {m["kind"] for m in await missions_of(services, user)} - {"regular"}
    assert created == ({expected} if expected != "triad" else set())
    assert model.calls[0].messages[-1].text == "how I feel"


# --- what the assessments read ------------------------------------------------------------------------


async def test_without_a_feeling_the_last_three_user_messages_of_the_day_are_scored(
    services: Any, user: uuid.UUID
) -> None:
    await say(
        services,
        user,
        ("user", "too old to count", NOW - 30 * H),
        ("user", "one", NOW - 5 * H),
        ("user", "two", NOW - 4 * H),
        ("assistant", "Eliza's words are not the user's", NOW - 3.5 * H),
    )
    await say(services, user, ("user", "three", NOW - 3 * H), ("user", "four", NOW - 2 * H))
    await say(services, user, ("user", "written after the run's clock", NOW + H))
    await say(services, await new_user(services), ("user", "someone else's", NOW - H))
    svc, model = scripted(services, EmotionScores(fear=0.8))

    out = await run(svc, user, None)

    (call,) = model.calls_of("structured")
    assert call.messages[-1].text == "two\nthree\nfour"
    assert out["emotion"]["dominant"] == "fear"


async def test_sad_recent_messages_route_to_self_care_offline(services: Any, user: uuid.UUID) -> None:
    await say(services, user, ("user", "hi", NOW - 2 * H), ("user", SAD, NOW - H))

    out = await run(services, user, None)

    assert out["emotion"]["dominant"] == "sadness"
    assert out["path"] == "self_care"


async def test_energy_reads_the_newest_recorded_emotion_of_the_day_only(
    services: Any, user: uuid.UUID
) -> None:
    other = await new_user(services)
    await record_emotion(services, user, NOW - 30 * H, joy=1.0)  # too old
    await record_emotion(services, user, NOW - 3 * H, joy=0.9)
    await record_emotion(services, user, NOW - H, sadness=0.95)  # newest: wins
    await record_emotion(services, user, NOW + H, joy=1.0)  # after the run's clock
    await record_emotion(services, other, NOW - 0.5 * H, joy=1.0)  # someone else's
    reads = AdaptiveReads(services.db)

    latest = await reads.latest_emotion_scores(user, since=NOW - 24 * H, until=NOW)
    out = await run(services, user, None)

    assert latest == {"sadness": 0.95}
    assert await reads.latest_emotion_scores(await new_user(services), since=NOW - 24 * H, until=NOW) is None
    assert (out["energy"], out["path"]) == ("low", "self_care")


async def test_malformed_recorded_scores_are_cleaned(services: Any, user: uuid.UUID) -> None:
    await services.memory.add(
        user,
        "task",
        "User said: something odd",
        {"emotion_scores": {"joy": "lots", "sadness": 1.7, "bogus": 1, "fear": True}},
        now=NOW - H,
    )
    reads = AdaptiveReads(services.db)
    assert await reads.latest_emotion_scores(user, since=NOW - 24 * H, until=NOW) == {"sadness": 1.0}


@pytest.mark.parametrize(
    ("session_at", "tz", "energy"),
    [
        # 13:00 UTC is 01:00 on 13 May in Auckland: today there (local midnight 12:00 UTC).
        (datetime(2026, 5, 12, 13, 0, tzinfo=UTC), "Pacific/Auckland", "low"),
        # 11:00 UTC is 23:00 on 12 May in Auckland: yesterday there, though today in UTC.
        (datetime(2026, 5, 12, 11, 0, tzinfo=UTC), "Pacific/Auckland", "medium"),
        (datetime(2026, 5, 12, 11, 0, tzinfo=UTC), "UTC", "low"),
    ],
)
async def test_fatigue_counts_focused_minutes_since_local_midnight(
    services: Any, user: uuid.UUID, session_at: datetime, tz: str, energy: str
) -> None:
    await services.db.execute(
        "INSERT INTO progress_events (user_id, kind, minutes, at) VALUES (%s, 'session', 130, %s)",
        (user, session_at),
    )

    out = await run(services, user, CALM, tz=tz)

    assert out["energy"] == energy
    assert out["path"] == ("self_care" if energy == "low" else "triad")
    if energy == "low":
        assert "130 focused minutes" in out["reason"]


# --- failures -------------------------------------------------------------------------------------------


async def test_emotion_model_failure_degrades_to_neutral_and_still_routes(
    services: Any, user: uuid.UUID
) -> None:
    await complete(services, user, 3)
    svc, model = scripted(services)
    model.fail("structured", bad_request_error())

    out = await run(svc, user, SAD)  # would be self-care if it could be scored

    assert out["degraded"] == ["assess_emotion"]
    assert out["emotion"] == {"dominant": "neutral", "scores": {"neutral": 1.0}}
    assert out["path"] == "celebration"
    assert len(await missions_of(services, user, "celebration")) == 1


async def test_energy_read_failure_degrades_to_medium_and_still_routes(
    services: Any, user: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    await record_emotion(services, user, NOW - H, joy=1.0)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("memories table unreadable")

    monkeypatch.setattr(AdaptiveReads, "latest_emotion_scores", broken)

    out = await run(services, user, JOYFUL)  # would be a challenge with its high energy

    assert out["degraded"] == ["assess_energy"]
    assert out["energy"] == "medium"
    assert out["path"] == "triad"
    assert await missions_of(services, user, "challenge") == []


# --- as a checkpointed background run -------------------------------------------------------------------


async def test_runs_as_a_checkpointed_background_run(services: Any, user: uuid.UUID) -> None:
    async with engine_for(services) as engine:
        record = await engine.run(
            RunRequest(GRAPH, {"feeling": SAD}, user=user, background=True, admit=False)
        )
    stored = await services.runs.get(record.id, user)

    assert record.output["path"] == "self_care"
    assert stored.status == "success" and stored.queue == "worker"
    assert stored.kwargs["durability"] == "async"  # a background run can resume from its steps
    assert stored.output["missions"][0]["kind"] == "self_care"
    assert stored.output["path"] == "self_care"
