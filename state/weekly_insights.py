"""State of the weekly_insights workflow (seed: "Epic 2 + Epic 5: Progress Insights with Memory"),
and the ISO-week helpers it (and the insights routes) use.

Every value in this state is plain JSON (dicts, lists, str, numbers, None; times as ISO strings):
a checkpointed run needs no entry on the strict msgpack allow-list, and a run's result can be
stored on its `runs` row as it is.
"""

from __future__ import annotations

import operator
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from core.errors import Invalid

Json = dict[str, Any]

# --- ISO weeks -------------------------------------------------------------------------------------

WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def parse_week(week: str) -> date:
    """The Monday of an ISO week written `YYYY-Www` (e.g. "2026-W48"). Anything else, or a week
    the year does not have (W53 of a 52-week year, W00), raises `Invalid`."""
    m = WEEK_RE.fullmatch(week) if isinstance(week, str) else None
    if m is None:
        raise Invalid(f"week must look like 2026-W48, got {week!r}")
    try:
        return date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError as err:
        raise Invalid(f"{week} is not an ISO week") from err


def week_of(at: datetime, tz: str) -> str:
    """The ISO week (`YYYY-Www`) of an aware timestamp, in the user's timezone."""
    year, week, _ = at.astimezone(ZoneInfo(tz)).isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(week: str, tz: str) -> tuple[datetime, datetime]:
    """[local Monday 00:00, next local Monday 00:00) of the week, as aware datetimes."""
    monday = parse_week(week)
    zone = ZoneInfo(tz)
    return (
        datetime.combine(monday, time(0), tzinfo=zone),
        datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone),
    )


def insight_window(week: str, tz: str, now: datetime, days: int = 7) -> tuple[datetime, datetime]:
    """The [start, end) the week's insight reads. A finished week: the whole week (local Monday
    to Monday). The week in progress: the last `days` days up to `now` (the seed's "last 7
    days"). A week that has not started raises `Invalid`."""
    start, end = week_bounds(week, tz)
    if start > now:
        raise Invalid(f"{week} has not started yet")
    if end <= now:
        return start, end
    return now - timedelta(days=days), now


# --- graph state -----------------------------------------------------------------------------------


def add_usage(left: Json | None, right: Json | None) -> Json:
    """Reducer of `usage`: token, cost and call counts summed."""
    a, b = left or {}, right or {}
    return {
        "input_tokens": int(a.get("input_tokens", 0)) + int(b.get("input_tokens", 0)),
        "output_tokens": int(a.get("output_tokens", 0)) + int(b.get("output_tokens", 0)),
        "cost_usd": round(float(a.get("cost_usd", 0.0)) + float(b.get("cost_usd", 0.0)), 8),
        "calls": int(a.get("calls", 0)) + int(b.get("calls", 0)),
    }


NO_USAGE: Json = add_usage(None, None)


class InsightView(TypedDict):
    """One stored insight as the graph returns it (`InsightStore` rows without `created_at`)."""

    id: str
    week: str
    text: str
    dci: float
    stats: Json
    highlight_reel: Json | None


class InsightsInput(TypedDict, total=False):
    # ISO week ("2026-W48"); None or absent: the week of the run's clock in the user's timezone.
    week: str | None


class InsightsOutput(TypedDict, total=False):
    insight: InsightView
    created: bool  # False: the week's insight existed and was returned as stored (no LLM call)
    degraded: list[str]  # gathering branches that fell back to an empty value
    usage: Json  # {input_tokens, output_tokens, cost_usd, calls} of this run's model calls


class InsightsState(InsightsInput, total=False):
    # outputs (the reducers let parallel branches write them; `resolve_week` resets both)
    insight: InsightView
    created: bool
    degraded: Annotated[list[str], operator.add]
    usage: Annotated[Json, add_usage]
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
