"""Nodes of narrative_beat (seed: "Epic 2 + Epic 4"): the goal → in parallel its project
memories, the user's story preferences and the progress → triggers → the beat (or the one the
trigger already has) → in parallel the story (premium model) and the teaser (cheap model) →
hidden-quest unlocks → the beat stored, remembered and announced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from core.errors import NotFound
from core.settings import Settings
from domain.ids import stable_id
from domain.narrative import (
    HIDDEN_QUESTS,
    QuestTrigger,
    build_triggers,
    nothing_new,
    triggers_json,
    triggers_of,
)
from domain.narrative import select_beat as choose_beat
from nodes.context import Context
from nodes.kit import Update, observed
from nodes.ports import GoalsPort, LlmPort, MemoryPort, NarrativePort, NotificationsPort, ProgressPort
from prompts.narrative_beat import (
    FALLBACK_TEASER,
    beat_facts,
    story_data,
    story_memory,
    story_messages,
    teaser_messages,
)
from services.narrative import beat_notification_key
from state.narrative_beat import BeatTeaser, Json, NarrativeState, StoryBeat
from state.reducers import empty_usage, usage_entry

GRAPH = "narrative_beat"
PROJECT_MEMORY_LIMIT = 10
SKIP_WINDOW_DAYS = 7
PREF_TAG = "narrative_pref"
STORY_SITE = "narrative.story"
TEASER_SITE = "narrative.teaser"
_QUESTS: dict[str, QuestTrigger] = {q.key: q for q in HIDDEN_QUESTS}


class NarrativeBeatServices(Protocol):
    """What narrative_beat's nodes use of the services."""

    @property
    def settings(self) -> Settings: ...
    @property
    def llm(self) -> LlmPort: ...
    @property
    def memory(self) -> MemoryPort: ...
    @property
    def progress(self) -> ProgressPort: ...
    @property
    def goals(self) -> GoalsPort: ...
    @property
    def narrative(self) -> NarrativePort: ...
    @property
    def notifications(self) -> NotificationsPort: ...


NarrativeRuntime = Runtime[Context[NarrativeBeatServices]]


# --- JSON shapes ---------------------------------------------------------------------------------


def quest_json(keys: Iterable[str]) -> list[Json]:
    """Quest dicts of unlock keys (a key no longer in HIDDEN_QUESTS is left out)."""
    return [
        {"key": q.key, "title": q.title, "description": q.description}
        for k in keys
        if (q := _QUESTS.get(k)) is not None
    ]


def public_beat(beat: Mapping[str, Any], title: str | None = None) -> Json:
    created = beat["created_at"]
    return {
        "id": str(beat["id"]),
        "goal_id": str(beat["goal_id"]),
        "beat_type": beat["beat_type"],
        "title": title or beat["title"],
        "text": beat["text"],
        "unlocks": list(beat["unlocks"]),
        "created_at": created.isoformat() if hasattr(created, "isoformat") else created,
    }


def _memory_json(row: Mapping[str, Any]) -> Json:
    return {
        "id": str(row["id"]),
        "content": row["content"],
        "created_at": row["created_at"].isoformat(),
        "tags": list((row.get("metadata") or {}).get("tags") or []),
    }


def _goal_uuid(goal_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(goal_id))
    except ValueError:
        raise NotFound("goal not found") from None


def _beat_facts(state: NarrativeState) -> Json:
    triggers = state["triggers"]
    progress = state.get("progress") or {}
    milestone = None
    if state["beat_type"] == "milestone":
        seq = triggers["milestone_completed"]
        milestone = next(
            (m for m in progress.get("milestones") or [] if m["sequence"] == seq),
            {"sequence": seq, "title": f"Milestone {seq}"},
        )
    return beat_facts(
        state["beat_type"],
        milestone=milestone,
        unlocks=quest_json(triggers["new_unlocks"]),
        rough_patch=state["beat_type"] == "character_moment",
    )


# --- nodes ----------------------------------------------------------------------------------------


@observed(GRAPH)
async def load_goal(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    """Owner-checked (NotFound for someone else's goal). Resets the per-run accumulators."""
    ctx = runtime.context
    svc = ctx.services
    goal = await svc.goals.get(ctx.user_id, _goal_uuid(state["goal_id"]))
    return {
        "goal_id": goal.id,
        "goal": goal.model_dump(mode="json"),
        "degraded": Overwrite([]),
        "usage": Overwrite(empty_usage(by_site=True)),
    }


@observed(GRAPH)
async def load_project_memories(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    rows = await svc.narrative.project_memories(
        ctx.user_id, uuid.UUID(state["goal_id"]), now=ctx.now, limit=PROJECT_MEMORY_LIMIT
    )
    return {"project_memories": [_memory_json(r) for r in rows]}


@observed(GRAPH)
async def load_narrative_prefs(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    rows = await svc.narrative.tagged_memories(
        ctx.user_id, PREF_TAG, now=ctx.now, limit=svc.settings.memory_quota_personal
    )
    return {"narrative_prefs": [_memory_json(r) for r in rows]}


@observed(GRAPH)
async def load_goal_progress(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    counts, recent = await asyncio.gather(
        svc.narrative.goal_progress(
            user, uuid.UUID(state["goal_id"]), now=ctx.now, skip_window_days=SKIP_WINDOW_DAYS
        ),
        svc.progress.recent(user, ctx.timezone, ctx.now),
    )
    return {"progress": {**counts, "streak_days": recent.streak_days}}


@observed(GRAPH)
async def analyse_triggers(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    return {"triggers": triggers_json(build_triggers(state.get("progress")))}


@observed(GRAPH)
async def select_beat(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    """The beat type and trigger key (`domain.narrative.select_beat`). A trigger that already
    has its beat, or no new trigger at all (`nothing_new`), ends the run with the stored beat:
    a beat is never generated twice for the same trigger."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    beat_type, key = choose_beat(triggers_of(state["triggers"]))
    progress = state.get("progress") or {}
    existing = None
    if nothing_new(beat_type, progress):  # the goal's latest beat already tells this
        existing = await svc.narrative.get_beat(user, uuid.UUID(progress["last_beat_id"]))
    if existing is None:
        existing = await svc.narrative.beat_for_trigger(user, uuid.UUID(state["goal_id"]), key)
    if existing is None:
        return {"beat_type": beat_type, "trigger_key": key, "existing": False}
    return {
        "beat_type": existing["beat_type"],
        "trigger_key": existing["trigger_key"],
        "existing": True,
        "beat": public_beat(existing),
        "created": False,
        "teaser": existing["teaser"],
        "unlocks": quest_json(existing["unlocks"]),
    }


@observed(GRAPH)
async def write_story(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    """The premium model (DOMAIN.md: only narrative is worth it); memories and preferences go in
    the prompt's data block. Invalid output (e.g. outside 200-400 words) is asked for again
    with the error fed back, by the gateway."""
    ctx = runtime.context
    svc = ctx.services
    data = story_data(
        state["goal"],
        _beat_facts(state),
        state.get("progress"),
        [m["content"] for m in state.get("project_memories") or []],
        [m["content"] for m in state.get("narrative_prefs") or []],
    )
    story, usage = await svc.llm.structured(
        StoryBeat, story_messages(data), site=STORY_SITE, user_id=str(ctx.user_id), tier="premium"
    )
    return {"story": story.model_dump(), "usage": usage_entry(STORY_SITE, usage)}


@observed(GRAPH)
async def write_teaser(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    teaser, usage = await svc.llm.structured(
        BeatTeaser,
        teaser_messages(state["goal"]["title"], _beat_facts(state)),
        site=TEASER_SITE,
        user_id=str(ctx.user_id),
        tier="cheap",
    )
    return {"teaser": teaser.teaser, "usage": usage_entry(TEASER_SITE, usage)}


@observed(GRAPH)
async def check_unlocks(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    """Record the hidden quests this beat unlocks (a quest already recorded stays as it is)."""
    ctx = runtime.context
    svc = ctx.services
    quests = [_QUESTS[k] for k in state["triggers"]["new_unlocks"] if k in _QUESTS]
    if quests:
        await svc.narrative.record_unlocks(ctx.user_id, quests, now=ctx.now)
    return {"unlocks": quest_json(q.key for q in quests)}


@observed(GRAPH)
async def store_beat(state: NarrativeState, runtime: NarrativeRuntime) -> Update:
    """Every write is keyed by the beat id `stable_id(user, goal, trigger_key)`. The memory
    first (its embedding is the step most likely to fail), then the beat row, the marker that
    the trigger is done, then the notification. A retried step finds its own beat (same text)
    and finishes the rest; a concurrent run that stored this trigger's beat first wins, and
    this run answers that beat with `created: false`."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    goal_id = uuid.UUID(state["goal_id"])
    beat_type, key = state["beat_type"], state["trigger_key"]
    story = StoryBeat.model_validate(state["story"])
    unlocks = [q["key"] for q in state.get("unlocks") or []]
    beat_id = stable_id(user, goal_id, key)
    await svc.memory.add(
        user,
        "project",
        story_memory(story.title, story.text),
        {
            "goal_id": str(goal_id),
            "beat_id": str(beat_id),
            "beat_type": beat_type,
            "trigger_key": key,
            "unlocks": unlocks,
            "tags": ["narrative", "story_beat", beat_type],
        },
        now=ctx.now,
        memory_id=stable_id(beat_id, "memory"),
    )
    stored, _ = await svc.narrative.insert_beat(
        user,
        beat_id=beat_id,
        goal_id=goal_id,
        beat_type=beat_type,
        trigger_key=key,
        text=story.text,
        unlocks=unlocks,
        now=ctx.now,
    )
    if stored["text"] != story.text:  # another run stored this trigger's beat first
        return {
            "beat": public_beat(stored),
            "created": False,
            "teaser": stored["teaser"],
            "unlocks": quest_json(stored["unlocks"]),
        }
    teaser = state.get("teaser") or FALLBACK_TEASER
    await svc.notifications.record(
        user,
        kind="narrative_beat",
        title=story.title,
        body=teaser,
        data={"beat_id": str(beat_id), "goal_id": str(goal_id), "beat_type": beat_type, "unlocks": unlocks},
        dedupe_key=beat_notification_key(beat_id),
    )
    return {"beat": public_beat(stored, title=story.title), "created": True, "teaser": teaser}


# --- fallbacks (graphs/narrative_beat.py wires them as error handlers) -----------------------------------


def no_project_memories() -> Update:
    return {"project_memories": []}


def no_narrative_prefs() -> Update:
    return {"narrative_prefs": []}


def no_progress() -> Update:
    return {"progress": None}


def fallback_teaser() -> Update:
    return {"teaser": FALLBACK_TEASER}
