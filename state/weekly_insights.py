"""State of the weekly_insights workflow (seed: "Epic 2 + Epic 5: Progress Insights with Memory"),
and the two models it asks the LLM for (the week's patterns, then the insight).

Every value in this state is plain JSON (dicts, lists, str, numbers, None; times as ISO strings):
a checkpointed run needs no entry on the strict msgpack allow-list, and a run's result can be
stored on its `runs` row as it is. The ISO-week rules (which week, which window) are in
`domain/calendar.py`.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.reducers import add_usage

Json = dict[str, Any]


# --- structured LLM output -------------------------------------------------------------------


class WeeklyPatterns(BaseModel):
    """weekly_insights step 1: what the week's task memories and stats show."""

    patterns: list[str] = Field(min_length=1, max_length=5)  # concrete, with the numbers
    strongest_day: str | None = None  # the weekday that stood out, if one did
    friction: str | None = Field(None, max_length=300)  # the main source of friction, if any


class WeeklyInsight(BaseModel):
    """weekly_insights step 2: actionable insights from the patterns and the DCI."""

    headline: str = Field(min_length=1, max_length=160)  # the week in one line
    insights: list[str] = Field(min_length=2, max_length=4, description="Concrete, doable next-week actions")
    encouragement: str = Field(min_length=1, max_length=300)  # a closing line, never shaming


# --- graph state -------------------------------------------------------------------------------


class InsightView(TypedDict):
    """One stored insight as the graph returns it (`InsightStore` rows without `created_at`)."""

    id: str  # insights.id: stable_id(user, week)
    week: str  # ISO week, e.g. "2026-W48"
    text: str  # headline, insights and encouragement as one text
    dci: float  # the DCI at the window's end
    stats: Json  # the week's numbers, the DCI's terms, the patterns, what degraded
    highlight_reel: Json | None  # set when earned (DCI >= 0.8 or streak >= 7)


class InsightsInput(TypedDict, total=False):
    # ISO week ("2026-W48"); None or absent: the week of the run's clock in the user's timezone.
    week: str | None


class InsightsOutput(TypedDict, total=False):
    insight: InsightView  # the week's insight (new or as stored)
    created: bool  # False: the week's insight existed and was returned as stored (no LLM call)
    degraded: list[str]  # gathering branches that fell back to an empty value
    usage: Json  # {input_tokens, output_tokens, cost_usd, calls} of this run's model calls


class InsightsState(InsightsInput, total=False):
    # outputs (the reducers let parallel branches write them; `resolve_week` resets both)
    insight: InsightView  # see InsightsOutput
    created: bool  # see InsightsOutput
    degraded: Annotated[list[str], operator.add]  # see InsightsOutput
    usage: Annotated[Json, add_usage]  # see InsightsOutput
    # working values
    window: Json  # {"start": iso, "end": iso}
    stored: bool  # resolve_week found a complete insight for the week: nothing is regenerated
    replace: bool  # the stored row was degraded: regenerate it in place
    task_memories: list[Json]  # {id, content, created_at, tags}, newest first
    progress: Json  # state.schemas.Progress.model_dump()
    stats: Json  # InsightStore.week_stats(...)
    patterns: Json  # WeeklyPatterns.model_dump()
    draft: Json  # WeeklyInsight.model_dump()
    memory_id: str  # the personal memory store_insight wrote (or merged into)
