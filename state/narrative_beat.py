"""State of the narrative_beat workflow (seed: "Epic 2 + Epic 4: Narrative Generation with Memory").

Everything in it is plain JSON (dicts, lists, strings, ISO timestamps), like goal_decomposition's
state: a checkpointed run needs no extra types on the strict msgpack allow-list, and a resumed run
sees exactly what the interrupted one wrote. The model answers (`StoryBeat`, `BeatTeaser`) live in
`state.engagement`.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.schemas import Usage

Json = dict[str, Any]

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cost_usd", "calls")


def _sum(left: Json, right: Json) -> Json:
    total = {k: (left.get(k) or 0) + (right.get(k) or 0) for k in _USAGE_FIELDS}
    total["cost_usd"] = round(total["cost_usd"], 8)
    return total


def empty_usage() -> Json:
    return {**_sum({}, {}), "by_site": {}}


def usage_entry(site: str, usage: Usage) -> Json:
    """One model call site's usage, in the shape `add_usage` accumulates."""
    one = _sum(usage.model_dump(include=set(_USAGE_FIELDS)), {})
    return {**one, "by_site": {site: one}}


def add_usage(left: Json | None, right: Json | None) -> Json:
    """Reducer of the usage the parallel model calls write: totals plus a per-call-site breakdown
    (`{"input_tokens", "output_tokens", "cost_usd", "calls", "by_site": {site: {...}}}`)."""
    left, right = left or {}, right or {}
    by_site = dict(left.get("by_site") or {})
    for site, one in (right.get("by_site") or {}).items():
        by_site[site] = _sum(by_site.get(site, {}), one)
    return {**_sum(left, right), "by_site": by_site}


class NarrativeInput(TypedDict):
    goal_id: str


class NarrativeOutput(TypedDict, total=False):
    # {id, goal_id, beat_type, title, text, unlocks (quest keys), created_at (ISO)}
    beat: Json
    created: bool  # False: the trigger already had its beat (returned as stored, no model call)
    teaser: str | None  # the in-app teaser line (None for an earlier beat whose teaser is unknown)
    unlocks: list[Json]  # hidden quests this beat unlocked: {key, title, description}
    degraded: list[str]  # nodes that fell back to a default value
    usage: Json  # see `add_usage`; zero when no model was called


class NarrativeState(NarrativeInput, NarrativeOutput, total=False):
    # Written by parallel branches (and their fallbacks), hence the reducers. `load_goal` resets
    # both at the start of every run, so a thread's runs do not accumulate them.
    degraded: Annotated[list[str], operator.add]
    usage: Annotated[Json, add_usage]
    # gathered in parallel
    goal: Json  # Goal.model_dump(mode="json")
    project_memories: list[Json]  # {id, content, created_at, tags}, newest first
    narrative_prefs: list[Json]  # same shape: personal memories tagged narrative_pref
    progress: Json | None  # NarrativeStore.goal_progress + streak_days; None when degraded
    # the pipeline
    triggers: Json  # domain.narrative.Triggers as a dict
    beat_type: str
    trigger_key: str
    existing: bool  # the trigger already had a beat: the run ends after select_beat
    story: Json  # StoryBeat
