"""Nodes of the adaptive_mission graph (seed Pattern 3: conditional branching). Three independent
assessments run in parallel, `decide` picks the path with `domain.missions.choose_path`, and one
of four path nodes acts on it. Each node returns only the keys it changed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any, Protocol

from langgraph.runtime import Runtime

from core.errors import NotFound
from core.settings import Settings
from domain.calendar import local_day, local_midnight
from domain.ids import stable_id
from domain.missions import (
    Energy,
    choose_path,
    daily_index,
    energy_level,
    energy_with_feeling,
    priority_score,
    priority_triad,
    top_goal,
)
from nodes.context import Context
from nodes.kit import Update, emit, log, observed
from nodes.ports import AdaptiveReadsPort, GoalsPort, LlmPort, MissionsPort
from prompts.adaptive_mission import (
    CELEBRATION,
    CHALLENGE_MINUTES,
    SELF_CARE_TEMPLATES,
    challenge_messages,
    template_challenge,
)
from prompts.common import emotion_messages
from state.adaptive_mission import AdaptiveState, ChallengeDraft
from state.goals import Mission
from state.schemas import Emotion, EmotionScores

GRAPH = "adaptive_mission"
DAY = timedelta(hours=24)
RECENT_MESSAGES = 3  # the latest user messages read when no feeling is given
MAX_FEELING_CHARS = 5000  # the chat API's message cap; bounds the scoring call's cost
TRIAD_CANDIDATES = 500  # pending missions considered for the triad


class AdaptiveMissionServices(Protocol):
    """What adaptive_mission's nodes use of the services."""

    @property
    def settings(self) -> Settings: ...
    @property
    def llm(self) -> LlmPort: ...
    @property
    def goals(self) -> GoalsPort: ...
    @property
    def missions(self) -> MissionsPort: ...
    @property
    def adaptive(self) -> AdaptiveReadsPort: ...


AdaptiveRuntime = Runtime[Context[AdaptiveMissionServices]]


def _dump(missions: list[Mission]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in missions]


# --- the three assessments (parallel) -----------------------------------------------------------


@observed(GRAPH)
async def assess_emotion(state: AdaptiveState, runtime: AdaptiveRuntime) -> Update:
    """The feeling the user stated, else their latest messages of the last 24 h (up to three,
    newest last), scored by one structured call. No text at all: neutral, no model call."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    text = (state.get("feeling") or "").strip()[:MAX_FEELING_CHARS]
    if not text:
        latest = await svc.adaptive.recent_user_messages(
            user, since=ctx.now - DAY, until=ctx.now, limit=RECENT_MESSAGES
        )
        text = "\n".join(m.strip() for m in latest if m.strip())[:MAX_FEELING_CHARS]
    if not text:
        return {"emotion": Emotion().model_dump()}
    scores, _usage = await svc.llm.structured(
        EmotionScores, emotion_messages(text), site="adaptive.assess_emotion", user_id=str(user)
    )
    return {"emotion": Emotion.from_scores(scores.model_dump()).model_dump()}


@observed(GRAPH)
async def assess_energy(state: AdaptiveState, runtime: AdaptiveRuntime) -> Update:
    """`energy_level` over the latest emotion recorded in the user's chat memories (last 24 h)
    and today's activity since local midnight (focused minutes, completions)."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    now = ctx.now
    midnight = local_midnight(now, ctx.timezone)
    recorded, minutes, completed = await asyncio.gather(
        svc.adaptive.latest_emotion_scores(user, since=now - DAY, until=now),
        svc.missions.minutes_since(user, midnight),
        svc.missions.completed_since(user, midnight),
    )
    return {
        "energy": energy_level(recorded, minutes_today=minutes, completed_today=completed),
        "energy_basis": {
            "recorded_emotion": Emotion.from_scores(recorded).dominant if recorded else None,
            "minutes_today": minutes,
            "completed_today": completed,
        },
    }


@observed(GRAPH)
async def count_completions(state: AdaptiveState, runtime: AdaptiveRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    return {"completed_last_day": await svc.missions.completed_since(ctx.user_id, ctx.now - DAY)}


# Fallbacks (seed Pattern 3 with Pattern 1's graceful degradation): the path is still chosen.
def neutral_emotion() -> Update:
    return {"emotion": Emotion().model_dump()}


def medium_energy() -> Update:
    return {"energy": "medium", "energy_basis": {}}


def no_completions() -> Update:
    return {"completed_last_day": 0}


# --- the decision ---------------------------------------------------------------------------------


def _missions(n: int) -> str:
    return f"{n} mission{'' if n == 1 else 's'}"


def decision_energy(state: AdaptiveState) -> Energy:
    """The assessed energy, or the one the stated feeling gives (`energy_with_feeling`): the
    feeling's scores count only when the user gave one and it was scored (not the fallback)."""
    stated = None
    if (state.get("feeling") or "").strip() and "assess_emotion" not in (state.get("degraded") or []):
        stated = (state.get("emotion") or {}).get("scores") or None
    basis = state.get("energy_basis") or {}
    return energy_with_feeling(
        stated,
        assessed=state.get("energy") or "medium",
        minutes_today=basis.get("minutes_today"),
        completed_today=basis.get("completed_today"),
    )


def explain(state: AdaptiveState) -> tuple[str, str, str]:
    """(path, reason, energy): `choose_path` over the assessments, its reason completed with
    every number the decision was made on."""
    scores = (state.get("emotion") or {}).get("scores") or {}
    energy = decision_energy(state)
    completed = int(state.get("completed_last_day") or 0)
    path, why = choose_path(scores, energy, completed)
    basis = state.get("energy_basis") or {}
    today = (
        f" ({basis['minutes_today']} focused minutes and {_missions(basis['completed_today'])} today)"
        if basis.get("minutes_today") is not None
        else ""
    )
    felt = " from how you feel now" if energy != (state.get("energy") or "medium") else ""
    numbers = (
        f"sadness {scores.get('sadness', 0.0):.2f}, joy {scores.get('joy', 0.0):.2f}, "
        f"energy {energy}{felt}{today}, {_missions(completed)} completed in the last 24 h"
    )
    return path, f"{why} [{numbers}]", energy


@observed(GRAPH)
async def decide(state: AdaptiveState, runtime: AdaptiveRuntime) -> Update:
    path, reason, energy = explain(state)
    emit(runtime, {"type": "path", "path": path, "reason": reason})
    # `degraded: []` adds nothing; it makes the key present in every output.
    return {"path": path, "reason": reason, "energy": energy, "degraded": []}


# --- the four paths ---------------------------------------------------------------------------------


@observed(GRAPH)
async def self_care(state: AdaptiveState, runtime: AdaptiveRuntime) -> Update:
    """A gentle 5-15 minute mission from the templates, one per user and local day."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    day = local_day(ctx.now, ctx.timezone)
    template = SELF_CARE_TEMPLATES[daily_index(user, day, len(SELF_CARE_TEMPLATES))]
    mission = await svc.missions.create_once(
        user,
        stable_id(user, "self_care", day),
        title=template["title"],
        description=template["description"],
        estimated_minutes=template["estimated_minutes"],
        energy_level="low",
        kind="self_care",
        value_category="health",
        priority=priority_score(
            estimated_minutes=template["estimated_minutes"],
            created_at=ctx.now,
            now=ctx.now,
            target_date=None,
        ),
    )
    return {"missions": _dump([mission])}


@observed(GRAPH)
async def challenge(state: AdaptiveState, runtime: AdaptiveRuntime) -> Update:
    """One stretching mission toward the top active goal (a general growth challenge without
    one), drafted by the model once per user and local day. A failed or slow model call falls
    back to a template challenge and names `challenge` in `degraded`."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    day = local_day(ctx.now, ctx.timezone)
    mission_id = stable_id(user, "challenge", day)
    try:  # already drafted today (a re-run, a resumed run): no second model call
        return {"missions": _dump([await svc.missions.get(user, mission_id)])}
    except NotFound:
        pass
    goal = top_goal(await svc.goals.list(user, "active"))
    degraded: list[str] = []
    try:
        async with asyncio.timeout(svc.settings.reply_timeout_s):
            draft, _usage = await svc.llm.structured(
                ChallengeDraft,
                challenge_messages(
                    goal,
                    emotion=(state.get("emotion") or {}).get("dominant", "neutral"),
                    energy=state.get("energy") or "high",
                ),
                site="adaptive.challenge",
                user_id=str(user),
            )
    except Exception as err:  # model down, invalid output, too slow: a template still stretches
        log.warning(
            "branch degraded",
            extra={
                "graph": GRAPH,
                "node": "challenge",
                "thread_id": ctx.thread_id,
                "outcome": "degraded",
                "reason": repr(err),
            },
        )
        draft = template_challenge(goal.title if goal else None)
        degraded = ["challenge"]
    low, high = CHALLENGE_MINUTES
    minutes = min(high, max(low, draft.estimated_minutes))
    mission = await svc.missions.create_once(
        user,
        mission_id,
        title=draft.title,
        description=f"{draft.description}\n\nWhy: {draft.why}" if draft.description else draft.why,
        estimated_minutes=minutes,
        energy_level="high",
        kind="challenge",
        goal_id=uuid.UUID(goal.id) if goal else None,
        value_category=goal.value_category if goal else "growth",
        priority=priority_score(
            estimated_minutes=minutes,
            created_at=ctx.now,
            now=ctx.now,
            target_date=goal.target_date if goal else None,
        ),
    )
    return {"missions": _dump([mission]), "degraded": degraded}


@observed(GRAPH)
async def celebration(state: AdaptiveState, runtime: AdaptiveRuntime) -> Update:
    """A "rest and celebrate" mission, once per user and local day, followed in `missions` by
    the missions completed in the last 24 h (newest first)."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    day = local_day(ctx.now, ctx.timezone)
    rest = await svc.missions.create_once(
        user,
        stable_id(user, "celebration", day),
        title=CELEBRATION["title"],
        description=CELEBRATION["description"],
        estimated_minutes=CELEBRATION["estimated_minutes"],
        energy_level="low",
        kind="celebration",
        value_category="health",
    )
    done = await svc.adaptive.completed_missions_since(user, ctx.now - DAY)
    return {"missions": _dump([rest, *(m for m in done if m.id != rest.id)])}


@observed(GRAPH)
async def triad(state: AdaptiveState, runtime: AdaptiveRuntime) -> Update:
    """The priority triad of the user's pending missions; nothing is created."""
    ctx = runtime.context
    svc = ctx.services
    pending = await svc.missions.list(ctx.user_id, "pending", limit=TRIAD_CANDIDATES)
    return {"missions": _dump(priority_triad(pending))}
