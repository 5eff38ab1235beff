"""personalized_nudge run for real by LangGraph over a scripted model and in-memory services:
the early ends (active, already nudged today, caps) with their reasons, channel and send time
from the user's preferences and timezone, the ONE-call draft (and the one rewrite), the safe
template, idempotency, degradation, the task memory. No Postgres, no network."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.runtime import Runtime

from domain.ids import stable_id
from graphs.personalized_nudge import build
from graphs.registry import Graph
from nodes.context import Context
from nodes.personalized_nudge import schedule
from prompts.personalized_nudge import GOAL, MEMORIES_OPEN, SAFE_SUBJECT, read_brief, safe_draft, tone_of
from services.container import CHECKPOINT_TYPES
from services.llm.gateway import ModelGateway
from state.nudges import Nudge
from state.personalized_nudge import NudgeDraft, NudgeState
from state.schemas import Usage
from tests.support.fakes import (
    FakeServices,
    ScriptedChatModel,
    bad_request_error,
    connection_error,
    fake_services,
    hit,
)

NY = "America/New_York"
# 2025-01-15 12:00 in New York (17:00 UTC): outside the default quiet hours.
NOW = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)
OUTPUT_KEYS = {"scheduled", "reason", "nudge", "days_inactive", "created", "degraded", "usage"}
NUDGE_KEYS = {"id", "channel", "message", "subject", "send_at", "status", "sequence_index"}
PIPELINE = ("choose_channel", "write_message", "check_tone", "schedule", "log_memory")
SHAMING = NudgeDraft(
    message="You missed 4 days! Get back to it.", subject="Hey", suggested_step="Open the app"
)
CLEAN = NudgeDraft(
    message="Your guitar is right here. Ready for one small step? Play one chord.",
    subject="One chord today?",
    suggested_step="Play one chord.",
)


Svc = FakeServices[ScriptedChatModel]


def make_services(
    *,
    days: int = 5,
    last_active: datetime | None = None,
    preferences: dict[str, Any] | None = None,
    goals: list[str] | None = None,
    memories: list[str] | None = None,
    timezone: str = NY,
    now: datetime = NOW,
    model: ScriptedChatModel | None = None,
) -> Svc:
    """Last active `days` local days before `now`, at 15:00 local."""
    if last_active is None:
        local_now = now.astimezone(ZoneInfo(timezone))
        day = local_now.date() - timedelta(days=days)
        last_active = datetime.combine(day, dt.time(15, 0), tzinfo=ZoneInfo(timezone))
    svc = fake_services(
        model=model or ScriptedChatModel(),
        hits={"personal": [hit(t) for t in memories or []]},
        branch_timeout_s=0.5,
    )
    svc.nudges.last_active(last_active, timezone)
    svc.nudges.raw_preferences = preferences or {}
    for title in ["Learn the guitar"] if goals is None else goals:
        svc.goals.add(uuid.UUID(USER), title)
    return svc


USER = str(uuid.uuid4())


@dataclass
class Run:
    out: dict[str, Any]  # what `ainvoke` returns: the output schema only
    state: dict[str, Any]  # the whole checkpointed state


def compiled(svc: Svc) -> Graph:
    # The production serde (strict allow-list): the state must be plain JSON to checkpoint.
    saver = InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES))
    return build(svc.settings).compile(checkpointer=saver)


def context(svc: Svc, now: datetime) -> Context:
    return Context(
        user_id=uuid.UUID(USER), thread_id=str(uuid.uuid4()), timezone="UTC", now=now, services=svc
    )


async def run(svc: Svc, *, now: datetime = NOW) -> Run:
    graph = compiled(svc)
    ctx = context(svc, now)
    config: RunnableConfig = {"configurable": {"thread_id": ctx.thread_id}}
    out = await graph.ainvoke({}, config, context=ctx)
    return Run(out, (await graph.aget_state(config)).values)


def stored(svc: Svc) -> list[Nudge]:
    return list(svc.nudges.rows.values())


# --- early ends -------------------------------------------------------------------------------


async def test_active_yesterday_late_evening_is_not_nudged() -> None:
    # Last active 23:30 local yesterday; now 00:30 local (05:30 UTC): 1 day, whatever the hours.
    now = datetime(2025, 1, 15, 5, 30, tzinfo=UTC)
    svc = make_services(last_active=datetime(2025, 1, 14, 23, 30, tzinfo=ZoneInfo(NY)), now=now)
    r = await run(svc, now=now)
    assert r.out == {
        "scheduled": False,
        "reason": "active 1 day ago: no nudge needed",
        "nudge": None,
        "days_inactive": 1,
        "created": False,
        "degraded": [],
        "usage": Usage().model_dump(),
    }
    assert svc.model.calls == [] and stored(svc) == [] and svc.memory.added == []


async def test_two_local_days_is_nudged_even_under_48_hours() -> None:
    # 23:30 local two days back, now 00:05 local: about 24.5 hours, but two local days.
    now = datetime(2025, 1, 15, 5, 5, tzinfo=UTC)  # 00:05 in New York
    svc = make_services(last_active=datetime(2025, 1, 13, 23, 30, tzinfo=ZoneInfo(NY)), now=now)
    r = await run(svc, now=now)
    assert r.out["days_inactive"] == 2
    assert r.out["scheduled"] is True and r.out["created"] is True
    assert r.out["nudge"]["channel"] == "in_app"
    # inside quiet hours (00:05): sent at 08:00 local, the same day
    assert datetime.fromisoformat(r.out["nudge"]["send_at"]) == datetime(2025, 1, 15, 13, 0, tzinfo=UTC)


async def test_local_days_come_from_the_users_timezone_not_utc() -> None:
    # 20:30 New York on the 13th is 01:30 UTC on the 14th; now 10:00 New York on the 15th.
    now = datetime(2025, 1, 15, 15, 0, tzinfo=UTC)
    svc = make_services(last_active=datetime(2025, 1, 13, 20, 30, tzinfo=ZoneInfo(NY)), now=now)
    r = await run(svc, now=now)
    assert r.out["days_inactive"] == 2 and r.out["scheduled"] is True
    assert svc.nudges.tallies == [
        {"streak_start": dt.date(2025, 1, 14), "day": dt.date(2025, 1, 15), "tz": NY}
    ]


async def test_a_brand_new_user_is_not_nudged() -> None:
    svc = make_services(last_active=NOW - timedelta(hours=1))
    svc.nudges.last_active(NOW - timedelta(hours=1), NY, signed_up_only=True)
    r = await run(svc)
    assert r.out["scheduled"] is False
    assert r.out["reason"] == "active 0 days ago: no nudge needed"


@pytest.mark.parametrize(
    ("in_streak", "today", "max_per_day", "allowed", "why"),
    [
        (2, 0, 2, True, None),  # the 3rd nudge of a streak is allowed
        (3, 0, 2, False, "already nudged 3 times in this inactive streak (max 3)"),
        (0, 1, 2, True, None),
        (0, 2, 2, False, "already nudged 2 times today (max 2)"),
        (0, 1, 1, False, "already nudged 1 times today (max 1)"),
    ],
)
async def test_caps(in_streak: int, today: int, max_per_day: int, allowed: bool, why: str | None) -> None:
    svc = make_services(preferences={"max_per_day": max_per_day})
    svc.nudges.extra_in_streak, svc.nudges.extra_today = in_streak, today
    r = await run(svc)
    assert r.out["scheduled"] is allowed
    if allowed:
        assert r.out["nudge"]["sequence_index"] == in_streak + 1
        assert len(svc.model.calls) == 1
    else:
        assert r.out["reason"] == why
        assert r.out["nudge"] is None and stored(svc) == [] and svc.model.calls == []


# --- channel and send time from the preferences ---------------------------------------------------


@pytest.mark.parametrize(
    ("days", "channels", "expected"),
    [
        (3, ["email", "sms"], "in_app"),
        (4, ["email"], "email"),
        (5, [], "in_app"),
        (6, ["sms"], "in_app"),
        (7, ["sms"], "sms"),
        (7, ["email"], "in_app"),
    ],
)
async def test_channel_follows_days_and_opt_ins(days: int, channels: list[str], expected: str) -> None:
    svc = make_services(days=days, preferences={"channels": channels})
    r = await run(svc)
    assert r.out["days_inactive"] == days
    assert r.out["nudge"]["channel"] == expected
    (create,) = svc.nudges.creates
    assert create["channel"] == expected
    brief = read_brief(svc.model.calls[0].messages[-1].text)
    assert brief["Channel"].startswith(expected)


@pytest.mark.parametrize(
    ("tz", "local_now", "quiet", "expected_local"),
    [
        (NY, (2025, 1, 15, 21, 59), ["22:00", "08:00"], (2025, 1, 15, 21, 59)),
        (NY, (2025, 1, 15, 22, 0), ["22:00", "08:00"], (2025, 1, 16, 8, 0)),
        ("Asia/Tokyo", (2025, 1, 15, 7, 59), ["22:00", "08:00"], (2025, 1, 15, 8, 0)),
        ("Asia/Tokyo", (2025, 1, 15, 8, 0), ["22:00", "08:00"], (2025, 1, 15, 8, 0)),
        (NY, (2025, 3, 8, 23, 0), ["22:00", "08:00"], (2025, 3, 9, 8, 0)),  # spring-forward night
        (NY, (2025, 1, 15, 23, 0), None, (2025, 1, 16, 10, 0)),  # no quiet hours: 10:00 local
        (NY, (2025, 1, 15, 9, 0), None, (2025, 1, 15, 10, 0)),
    ],
)
async def test_send_at_is_outside_quiet_hours_in_the_users_timezone(
    tz: str,
    local_now: tuple[int, int, int, int, int],
    quiet: list[str] | None,
    expected_local: tuple[int, int, int, int, int],
) -> None:
    now = datetime(*local_now, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    svc = make_services(days=5, timezone=tz, now=now, preferences={"quiet_hours": quiet})
    r = await run(svc, now=now)
    expected = datetime(*expected_local, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    assert datetime.fromisoformat(r.out["nudge"]["send_at"]) == expected
    assert svc.nudges.creates[0]["send_at"] == expected


# --- the ONE call, the rewrite, the template --------------------------------------------------


async def test_one_structured_call_writes_the_whole_nudge() -> None:
    svc = make_services(
        preferences={"nudge_tone": "playful", "channels": ["email"]},
        goals=["Learn the guitar", "Run a 10k", "Read more", "Fourth goal"],
        memories=["The user likes jokes"],
    )
    r = await run(svc)
    (call,) = svc.model.calls
    assert call.kind == "structured"
    assert [rec.site for rec in svc.usage.records] == ["nudges.write"]
    assert {rec.user_id for rec in svc.usage.records} == {USER}
    assert r.out["usage"] == svc.usage.records[0].usage.model_dump()
    assert r.out["usage"]["calls"] == 1 and r.out["usage"]["output_tokens"] > 0
    # the prompt: the user's tone, the newest active goal, at most three goals, memories as data
    text = call.messages[-1].text
    brief = read_brief(text)
    assert tone_of(brief) == "playful"
    assert brief[GOAL] == "Learn the guitar"
    assert "Fourth goal" not in text
    assert "The user likes jokes" in text.split(MEMORIES_OPEN, 1)[1]
    (retrieve,) = svc.memory.calls_of("retrieve")
    assert retrieve.args["quotas"]["personal"] > 0
    assert retrieve.args["quotas"]["project"] == retrieve.args["quotas"]["task"] == 0
    # message, subject and step come from that one answer
    nudge = r.out["nudge"]
    assert set(nudge) == NUDGE_KEYS
    assert "Learn the guitar" in nudge["message"]
    assert nudge["subject"] and nudge["subject"] == svc.nudges.creates[0]["subject"]
    assert r.state["draft_source"] == "model"
    assert r.state["draft"]["suggested_step"] in nudge["message"]


async def test_a_shaming_draft_is_rewritten_once_with_the_phrase_named() -> None:
    model = ScriptedChatModel().answer_analysis(SHAMING, CLEAN)
    svc = make_services(model=model)
    r = await run(svc)
    assert [c.kind for c in svc.model.calls] == ["structured", "structured"]
    assert [rec.site for rec in svc.usage.records] == ["nudges.write", "nudges.rewrite"]
    rewrite = read_brief(svc.model.calls[1].messages[-1].text)
    assert rewrite["Shaming phrase"] == "You missed"
    assert rewrite["Draft message"] == SHAMING.message
    assert r.out["nudge"]["message"] == CLEAN.message
    assert r.out["nudge"]["subject"] == CLEAN.subject
    assert r.out["usage"]["calls"] == 2
    assert r.out["usage"] == (svc.usage.records[0].usage + svc.usage.records[1].usage).model_dump()
    assert r.state["draft_source"] == "rewrite" and r.state["shaming"] == "You missed"
    assert "missed" not in stored(svc)[0].message


async def test_a_shaming_subject_alone_is_rewritten_too() -> None:
    sneaky = CLEAN.model_copy(update={"subject": "Where have you been?"})
    svc = make_services(model=ScriptedChatModel().answer_analysis(sneaky, CLEAN))
    r = await run(svc)
    assert len(svc.model.calls) == 2
    assert r.out["nudge"]["subject"] == CLEAN.subject


async def test_still_shaming_after_the_rewrite_sends_the_safe_template() -> None:
    model = ScriptedChatModel().answer_analysis(
        SHAMING, SHAMING.model_copy(update={"message": "Don't be lazy!"})
    )
    svc = make_services(model=model, goals=["Learn the guitar"])
    r = await run(svc)
    assert svc.goals.args_of("list") == [{"status": "active"}]  # only active goals reach the prompt
    assert len(svc.model.calls) == 2  # no third attempt
    expected = safe_draft("Learn the guitar")
    assert r.out["nudge"]["message"] == expected.message
    assert r.out["nudge"]["subject"] == SAFE_SUBJECT
    assert r.state["draft_source"] == "template"
    (row,) = stored(svc)
    assert row.message == expected.message and "lazy" not in row.message.lower()


async def test_a_model_that_fails_degrades_to_the_safe_template() -> None:
    model = ScriptedChatModel()
    model.fail("structured", bad_request_error())
    svc = make_services(model=model, goals=["Learn the guitar"])
    r = await run(svc)
    assert r.out["degraded"] == ["write_message"]
    assert r.out["scheduled"] is True
    assert r.out["nudge"]["message"] == safe_draft("Learn the guitar").message


async def test_a_failing_rewrite_degrades_to_the_template_never_the_shaming_draft(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ScriptedChatModel().answer_analysis(SHAMING)
    svc = make_services(model=model)

    async def write_ok_then_fail(*args: Any, **kwargs: Any) -> Any:
        if kwargs["site"] == "nudges.rewrite":
            raise bad_request_error()
        return await ModelGateway.structured(svc.llm, *args, **kwargs)

    monkeypatch.setattr(svc.llm, "structured", write_ok_then_fail)
    r = await run(svc)
    assert r.out["degraded"] == ["check_tone"]
    assert r.out["nudge"]["message"] == safe_draft(None).message
    assert "missed" not in stored(svc)[0].message


async def test_transient_model_errors_are_retried_inside_the_gateway() -> None:
    model = ScriptedChatModel()
    model.fail("structured", connection_error(), times=1)
    svc = make_services(model=model)
    r = await run(svc)
    assert r.out["degraded"] == []
    assert r.state["draft_source"] == "model"
    assert len(svc.model.calls) == 2  # the failed attempt and its retry; one usage record
    assert [rec.site for rec in svc.usage.records] == ["nudges.write"]


# --- idempotency ------------------------------------------------------------------------------


async def test_running_twice_the_same_day_stores_one_nudge() -> None:
    svc = make_services()
    first = await run(svc)
    second = await run(svc, now=NOW + timedelta(hours=5))  # 17:00 local, same day
    assert first.out["created"] is True and second.out["created"] is False
    assert second.out["scheduled"] is True
    assert second.out["nudge"]["id"] == first.out["nudge"]["id"]
    assert second.out["reason"].startswith("already nudged today (2025-01-15, scheduled)")
    assert len(stored(svc)) == 1
    assert len(svc.model.calls) == 1  # the second run wrote no message
    assert len(svc.memory.added) == 1


async def test_a_racing_run_gets_the_stored_nudge_back() -> None:
    svc = make_services()
    first = await run(svc)
    svc.nudges.hide_existing = True  # the other run inserted after this one looked
    svc.nudges.extra_in_streak = -1  # ...and before it counted
    second = await run(svc, now=NOW + timedelta(minutes=1))
    assert second.out["created"] is False
    assert second.out["nudge"]["id"] == first.out["nudge"]["id"]
    assert second.out["nudge"]["message"] == first.out["nudge"]["message"]
    assert len(stored(svc)) == 1 and len(svc.nudges.creates) == 2
    assert second.out["reason"].startswith("already nudged today")
    # the task memory is keyed by the nudge: the same memory id both times
    assert {a["memory_id"] for a in svc.memory.added} == {stable_id(first.out["nudge"]["id"], "nudge_memory")}


async def test_the_next_day_continues_the_streak() -> None:
    svc = make_services(days=4, preferences={"channels": ["email", "sms"]})
    indexes, channels = [], []
    for day in range(4):
        r = await run(svc, now=NOW + timedelta(days=day))
        if r.out["created"]:
            indexes.append(r.out["nudge"]["sequence_index"])
            channels.append(r.out["nudge"]["channel"])
        last = r
    assert indexes == [1, 2, 3]
    assert channels == ["email", "email", "email"]  # 4, 5, 6 days
    assert last.out["scheduled"] is False and last.out["days_inactive"] == 7
    assert last.out["reason"] == "already nudged 3 times in this inactive streak (max 3)"
    assert {n.streak_start for n in stored(svc)} == {(NOW - timedelta(days=3)).date()}


# --- degradation, memory, output, events --------------------------------------------------------


@pytest.mark.parametrize("failing", ["memory", "preferences"])
async def test_preferences_unavailable_fall_back_to_in_app_defaults(failing: str) -> None:
    svc = make_services(days=5, preferences={"channels": ["email"], "nudge_tone": "playful"})
    if failing == "memory":
        svc.memory.fail(connection_error())
    else:
        svc.nudges.fail(connection_error(), op="preferences")
    r = await run(svc)
    assert r.out["degraded"] == ["load_preferences"]
    assert r.out["nudge"]["channel"] == "in_app"  # opt-ins unknown: the always-allowed channel
    assert tone_of(read_brief(svc.model.calls[0].messages[-1].text)) == "encouraging"
    assert r.out["scheduled"] is True


async def test_goals_unavailable_still_nudge_without_a_goal() -> None:
    svc = make_services()
    svc.goals.fail(connection_error(), op="list")
    r = await run(svc)
    assert r.out["degraded"] == ["load_active_goals"]
    assert read_brief(svc.model.calls[0].messages[-1].text)[GOAL] == "(none)"
    assert r.out["scheduled"] is True


async def test_the_scheduled_nudge_is_logged_as_a_task_memory() -> None:
    svc = make_services(days=5, preferences={"channels": ["email"]})
    r = await run(svc)
    (mem,) = svc.memory.added
    assert mem["tier"] == "task"
    assert mem["content"] == "Nudge scheduled: 5 days inactive, email"
    assert mem["metadata"]["tags"] == ["nudge", "email", "scheduled"]
    assert mem["metadata"]["nudge_id"] == r.out["nudge"]["id"]
    assert mem["memory_id"] == stable_id(r.out["nudge"]["id"], "nudge_memory")
    assert mem["now"] == NOW


async def test_a_failed_memory_write_keeps_the_nudge() -> None:
    svc = make_services()
    svc.memory.fail(connection_error(), op="add")
    r = await run(svc)
    assert r.out["scheduled"] is True and r.out["created"] is True
    assert r.out["degraded"] == ["log_memory"]


async def test_output_is_the_narrow_schema_on_every_path() -> None:
    ended = await run(make_services(days=1))
    full = await run(make_services(days=5))
    assert set(ended.out) == OUTPUT_KEYS
    assert set(full.out) == OUTPUT_KEYS
    assert set(full.out["nudge"]) == NUDGE_KEYS
    assert full.out["nudge"]["status"] == "scheduled" and full.out["nudge"]["sequence_index"] == 1
    assert full.out["reason"] == (
        "5 days inactive: in_app nudge 1 of this streak at 2025-01-15 12:00 America/New_York"
    )


async def test_one_step_event_per_node_that_ran() -> None:
    svc = make_services(days=5)
    ctx = context(svc, NOW)
    config: RunnableConfig = {"configurable": {"thread_id": ctx.thread_id}}
    events = [e async for e in compiled(svc).astream({}, config, context=ctx, stream_mode="custom")]
    done = [e for e in events if e.get("type") == "step" and e["status"] != "running"]
    steps = [e["node"] for e in done]
    assert all(e["status"] == "ok" for e in done)
    assert sorted(steps) == sorted(
        ["load_preferences", "load_active_goals", "load_inactivity", "check_eligibility", *PIPELINE]
    )
    assert steps[-5:] == list(PIPELINE)


async def test_early_end_runs_no_pipeline_node() -> None:
    svc = make_services(days=1)
    ctx = context(svc, NOW)
    config: RunnableConfig = {"configurable": {"thread_id": ctx.thread_id}}
    events = [e async for e in compiled(svc).astream({}, config, context=ctx, stream_mode="custom")]
    assert {e["node"] for e in events} == {
        "load_preferences",
        "load_active_goals",
        "load_inactivity",
        "check_eligibility",
    }


async def test_schedule_never_stores_a_shaming_message_it_is_handed() -> None:
    # check_tone normally guarantees this; schedule checks again at the write.
    svc = make_services()
    state: NudgeState = {
        "draft": SHAMING.model_dump(),
        "preferences": {},
        "timezone": NY,
        "local_date": "2025-01-15",
        "streak_start": "2025-01-11",
        "channel": "in_app",
        "days_inactive": 5,
        "sent_in_streak": 0,
    }
    update = await schedule(state, Runtime(context=context(svc, NOW)))
    (row,) = stored(svc)
    assert row.message == safe_draft(None).message
    assert update["nudge"]["message"] == row.message
