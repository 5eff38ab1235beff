"""Nodes of personalized_nudge: three parallel loaders (preferences with personal memories,
active goals, inactivity) → check_eligibility → choose_channel → write_message (one call) →
check_tone (one rewrite at most, then the safe template) → schedule (once per local day) →
log_memory."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from langgraph.runtime import Runtime

from core.logging import get_logger
from core.settings import Settings
from domain.calendar import valid_timezone
from domain.ids import stable_id
from domain.nudges import (
    MIN_DAYS_INACTIVE,
    days_inactive,
    nudge_allowed,
    nudge_channel,
    send_time,
    shaming_phrase,
)
from nodes.context import Context
from nodes.kit import Update, observed
from nodes.ports import GoalsPort, LlmPort, MemoryPort, NudgesPort
from prompts.personalized_nudge import (
    PREFERENCES_QUERY,
    nudge_memory,
    rewrite_messages,
    safe_draft,
    write_messages,
)
from services.nudges import nudge_key
from state.nudges import NudgePreferences
from state.personalized_nudge import NudgeDraft, NudgeState

GRAPH = "personalized_nudge"
MAX_GOALS = 3  # active goal titles handed to the prompt (newest first)


class PersonalizedNudgeServices(Protocol):
    """What personalized_nudge's nodes use of the services."""

    @property
    def settings(self) -> Settings: ...
    @property
    def llm(self) -> LlmPort: ...
    @property
    def memory(self) -> MemoryPort: ...
    @property
    def goals(self) -> GoalsPort: ...
    @property
    def nudges(self) -> NudgesPort: ...


NudgeRuntime = Runtime[Context[PersonalizedNudgeServices]]

log = get_logger("delight.graph")


def shaming_in(draft: NudgeDraft) -> str | None:
    """The first shaming phrase anywhere the user will read: message, subject, suggested step."""
    for text in (draft.message, draft.subject, draft.suggested_step):
        if phrase := shaming_phrase(text):
            return phrase
    return None


def _preferences(state: NudgeState) -> NudgePreferences:
    return NudgePreferences(**state["preferences"]) if state.get("preferences") else NudgePreferences()


def _top_goal(state: NudgeState) -> str | None:
    goals = state.get("goals") or []
    return goals[0] if goals else None


# --- the parallel loaders -------------------------------------------------------------------


@observed(GRAPH)
async def load_preferences(state: NudgeState, runtime: NudgeRuntime) -> Update:
    """users.preferences over the defaults, plus how the user likes to be encouraged (personal
    memories; a background read, so it does not touch their access stats)."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    raw, hits = await asyncio.gather(
        svc.nudges.preferences(user),
        svc.memory.retrieve(
            user,
            PREFERENCES_QUERY,
            now=ctx.now,
            quotas={"personal": svc.settings.memory_quota_personal, "project": 0, "task": 0},
            touch=False,
        ),
    )
    prefs = NudgePreferences.from_raw(raw, [h.content for h in hits.get("personal", [])])
    return {"preferences": prefs.model_dump(mode="json")}


@observed(GRAPH)
async def load_active_goals(state: NudgeState, runtime: NudgeRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    goals = await svc.goals.list(ctx.user_id, "active")
    return {"goals": [g.title for g in goals[:MAX_GOALS]]}


@observed(GRAPH)
async def load_inactivity(state: NudgeState, runtime: NudgeRuntime) -> Update:
    """Whole local days since the last activity, the current inactive streak (it began on the
    local day after that activity), and what was already nudged in it and today. Local means
    the user's stored timezone (the run's context timezone if that one is unusable)."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    now = ctx.now
    activity = await svc.nudges.last_activity(user, now)
    tz = valid_timezone(activity.timezone, ctx.timezone)
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    streak_start = activity.last_active.astimezone(zone).date() + dt.timedelta(days=1)
    (in_streak, today_count), existing = await asyncio.gather(
        svc.nudges.tally(user, streak_start=streak_start, day=today, tz=tz),
        svc.nudges.by_key(user, nudge_key(user, today)),
    )
    return {
        "timezone": tz,
        "last_active": activity.last_active.isoformat(),
        # never negative (an activity stamped after the run's clock counts as today)
        "days_inactive": max(0, days_inactive(activity.last_active, now, tz)),
        "streak_start": streak_start.isoformat(),
        "local_date": today.isoformat(),
        "sent_in_streak": in_streak,
        "sent_today": today_count,
        "existing": existing.output() if existing else None,
    }


# Fallbacks: the nudge is still decided, with safe defaults (in-app only, default quiet hours).
def default_preferences() -> Update:
    return {"preferences": NudgePreferences().model_dump(mode="json")}


def no_goals() -> Update:
    return {"goals": []}


# --- the decision ---------------------------------------------------------------------------


@observed(GRAPH)
async def check_eligibility(state: NudgeState, runtime: NudgeRuntime) -> Update:
    """In order: active within MIN_DAYS_INACTIVE days → no nudge; today's nudge already stored
    → it is the answer (created False); a cap reached → no nudge; else go on. Also sets every
    output key, so each way out of the graph returns the full output."""
    days = state["days_inactive"]
    base: dict[str, Any] = {"usage": {}, "degraded": [], "nudge": None, "created": False, "eligible": False}
    if days < MIN_DAYS_INACTIVE:
        unit = "day" if days == 1 else "days"
        return {**base, "scheduled": False, "reason": f"active {days} {unit} ago: no nudge needed"}
    if existing := state.get("existing"):
        status = existing["status"]
        return {
            **base,
            "scheduled": status in ("scheduled", "sent"),  # a failed or cancelled one is not
            "nudge": existing,
            "reason": f"already nudged today ({state['local_date']}, {status}): one nudge per day",
        }
    allowed, why = nudge_allowed(
        sent_in_streak=state.get("sent_in_streak", 0),
        sent_today=state.get("sent_today", 0),
        max_per_day=_preferences(state).max_per_day,
    )
    if not allowed:
        return {**base, "scheduled": False, "reason": why}
    return {**base, "scheduled": False, "reason": f"{days} days inactive", "eligible": True}


@observed(GRAPH)
async def choose_channel(state: NudgeState, runtime: NudgeRuntime) -> Update:
    channel = nudge_channel(state["days_inactive"], _preferences(state).channels)
    assert channel is not None  # check_eligibility let only users inactive long enough through
    return {"channel": channel}


# --- the message ----------------------------------------------------------------------------


@observed(GRAPH)
async def write_message(state: NudgeState, runtime: NudgeRuntime) -> Update:
    """ONE structured call (cheap model) for message, subject and tiny step together."""
    ctx = runtime.context
    svc = ctx.services
    prefs = _preferences(state)
    draft, usage = await svc.llm.structured(
        NudgeDraft,
        write_messages(
            tone=prefs.nudge_tone,
            channel=state["channel"],
            days_inactive=state["days_inactive"],
            goals=state.get("goals") or [],
            memories=prefs.memories,
        ),
        site="nudges.write",
        user_id=str(ctx.user_id),
    )
    return {"draft": draft.model_dump(), "draft_source": "model", "usage": usage.model_dump()}


def no_draft() -> Update:
    """write_message failed: check_tone sends the safe template."""
    return {"draft": {}, "draft_source": "template"}


@observed(GRAPH)
async def check_tone(state: NudgeState, runtime: NudgeRuntime) -> Update:
    """A draft with a shaming phrase is rewritten once with the phrase named; if the rewrite
    still shames, the safe template goes out instead. A shaming message is never stored."""
    ctx = runtime.context
    svc = ctx.services
    goal = _top_goal(state)
    if not state.get("draft"):
        return {"draft": safe_draft(goal).model_dump(), "draft_source": "template"}
    draft = NudgeDraft(**state["draft"])
    phrase = shaming_in(draft)
    if phrase is None:
        return {}
    prefs = _preferences(state)
    rewritten, usage = await svc.llm.structured(
        NudgeDraft,
        rewrite_messages(
            tone=prefs.nudge_tone,
            channel=state["channel"],
            days_inactive=state["days_inactive"],
            goals=state.get("goals") or [],
            draft=draft,
            phrase=phrase,
        ),
        site="nudges.rewrite",
        user_id=str(ctx.user_id),
    )
    update: dict[str, Any] = {"shaming": phrase, "usage": usage.model_dump()}
    if (again := shaming_in(rewritten)) is None:
        return {**update, "draft": rewritten.model_dump(), "draft_source": "rewrite"}
    log.warning(
        "nudge still shaming after a rewrite: safe template sent",
        extra={"graph": GRAPH, "thread_id": ctx.thread_id, "phrase": phrase, "again": again},
    )
    return {**update, "draft": safe_draft(goal).model_dump(), "draft_source": "template"}


def template_draft() -> Update:
    """The rewrite call failed: the safe template (without the goal: a handler has no state)."""
    return {"draft": safe_draft(None).model_dump(), "draft_source": "template"}


# --- the writes -----------------------------------------------------------------------------


@observed(GRAPH)
async def schedule(state: NudgeState, runtime: NudgeRuntime) -> Update:
    """send_at is now, or the end of quiet hours (10:00 local when the user has none); one nudge
    per user per local day (the insert is keyed), numbered within the inactive streak."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    draft = NudgeDraft(**state["draft"])
    if shaming_in(draft):  # last guard: nothing shaming reaches the table
        draft = safe_draft(None)
    prefs = _preferences(state)
    tz = state["timezone"]
    at = send_time(ctx.now, tz, prefs.quiet_hours)
    nudge, created = await svc.nudges.create(
        user,
        key=nudge_key(user, dt.date.fromisoformat(state["local_date"])),
        channel=state["channel"],
        message=draft.message,
        subject=draft.subject,
        send_at=at,
        sequence_index=state.get("sent_in_streak", 0) + 1,
        streak_start=dt.date.fromisoformat(state["streak_start"]),
    )
    local = nudge.send_at.astimezone(ZoneInfo(tz))
    days = state["days_inactive"]
    reason = (
        f"{days} days inactive: {nudge.channel} nudge {nudge.sequence_index} of this streak "
        f"at {local:%Y-%m-%d %H:%M} {tz}"
        if created
        else f"already nudged today ({state['local_date']}): one nudge per day"
    )
    return {"nudge": nudge.output(), "created": created, "scheduled": True, "reason": reason}


@observed(GRAPH)
async def log_memory(state: NudgeState, runtime: NudgeRuntime) -> Update:
    """The seed's task memory, keyed by the nudge: a re-run rewrites the same one."""
    ctx = runtime.context
    svc = ctx.services
    nudge = state["nudge"]
    assert nudge is not None
    channel = nudge["channel"]
    await svc.memory.add(
        ctx.user_id,
        "task",
        nudge_memory(state["days_inactive"], channel),
        {"nudge_id": nudge["id"], "send_at": nudge["send_at"], "tags": ["nudge", channel, "scheduled"]},
        now=ctx.now,
        memory_id=stable_id(nudge["id"], "nudge_memory"),
    )
    return {}


def memory_not_logged() -> Update:
    """The nudge is scheduled either way; only the task memory is missing."""
    return {}
