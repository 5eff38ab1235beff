"""State of the narrative_beat workflow (seed: "Epic 2 + Epic 4: Narrative Generation with Memory"),
and the two models it asks the LLM for (the story on the premium model, the teaser on the cheap one).

Everything in the state is plain JSON (dicts, lists, strings, ISO timestamps), like
goal_decomposition's state: a checkpointed run needs no extra types on the strict msgpack
allow-list, and a resumed run sees exactly what the interrupted one wrote.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.reducers import add_usage

Json = dict[str, Any]


# --- structured LLM output -------------------------------------------------------------------


class StoryBeat(BaseModel):
    """narrative_beat's story (premium model): 200-400 words, woven from the user's memories."""

    title: str = Field(min_length=1, max_length=120)  # the beat's title, shown with it
    text: str = Field(description="The story beat, 200-400 words")

    @field_validator("text")
    @classmethod
    def _length(cls, v: str) -> str:
        words = len(v.split())
        if not 200 <= words <= 400:
            raise ValueError(f"text must be 200-400 words, got {words}")
        return v


class BeatTeaser(BaseModel):
    """narrative_beat's in-app teaser (cheap model), written in parallel with the story."""

    teaser: str = Field(min_length=1, max_length=160)  # one line, shown in the notification


# --- graph state -------------------------------------------------------------------------------


class NarrativeInput(TypedDict):
    goal_id: str  # the goal whose story moves on; the user is the run's context user


class NarrativeOutput(TypedDict, total=False):
    # {id, goal_id, beat_type, title, text, unlocks (quest keys), created_at (ISO)}
    beat: Json
    created: bool  # False: the trigger already had its beat (returned as stored, no model call)
    teaser: str | None  # the in-app teaser line (None for an earlier beat whose teaser is unknown)
    unlocks: list[Json]  # hidden quests this beat unlocked: {key, title, description}
    degraded: list[str]  # nodes that fell back to a default value
    usage: Json  # totals and `by_site` (state.reducers.add_usage); zero when no model was called


class NarrativeState(NarrativeInput, NarrativeOutput, total=False):
    # Written by parallel branches (and their fallbacks), hence the reducers. `load_goal` resets
    # both at the start of every run, so a thread's runs do not accumulate them.
    degraded: Annotated[list[str], operator.add]
    usage: Annotated[Json, add_usage]  # see NarrativeOutput
    # gathered in parallel
    goal: Json  # Goal.model_dump(mode="json")
    project_memories: list[Json]  # {id, content, created_at, tags}, newest first
    narrative_prefs: list[Json]  # same shape: personal memories tagged narrative_pref
    progress: Json | None  # NarrativeStore.goal_progress + streak_days; None when degraded
    # the pipeline
    triggers: Json  # domain.narrative.Triggers as a dict
    beat_type: str  # progression, character_moment, hidden_quest_unlock or milestone
    trigger_key: str  # what the beat is for (one beat per key): e.g. "milestone:2"
    existing: bool  # the trigger already had a beat: the run ends after select_beat
    story: Json  # StoryBeat
