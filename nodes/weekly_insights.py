"""Nodes of weekly_insights (seed: "Epic 2 + Epic 5: Progress Insights with Memory").

resolve_week picks and validates the week and looks for its stored insight; when there is none,
three independent reads run in parallel (task memories, DCI, completion stats), then two cheap
model calls in sequence (patterns, then the insight), then one idempotent write (the row, and a
personal memory), then the highlight reel when `highlight_reel_due`. Each node returns only the
keys it changed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from core.errors import NotFound
from core.settings import Settings
from domain.calendar import WEEKDAYS, insight_window, week_of
from domain.ids import stable_id
from domain.narrative import build_highlight_reel, highlight_reel_due
from nodes.context import Context
from nodes.kit import Update, observed
from nodes.ports import InsightsPort, LlmPort, MemoryPort, ProgressPort
from prompts.weekly_insights import insight_memory, insight_messages, insight_text, patterns_messages
from state.reducers import empty_usage
from state.schemas import Progress
from state.weekly_insights import InsightsState, InsightView, WeeklyInsight, WeeklyPatterns

GRAPH = "weekly_insights"
INSIGHT_TAGS = ["insight", "weekly_summary", "analytics"]


class WeeklyInsightsServices(Protocol):
    """What weekly_insights' nodes use of the services."""

    @property
    def settings(self) -> Settings: ...
    @property
    def llm(self) -> LlmPort: ...
    @property
    def memory(self) -> MemoryPort: ...
    @property
    def progress(self) -> ProgressPort: ...
    @property
    def insights(self) -> InsightsPort: ...


InsightsRuntime = Runtime[Context[WeeklyInsightsServices]]


def insight_id(user_id: uuid.UUID, week: str) -> uuid.UUID:
    return stable_id(user_id, week)


def memory_id(user_id: uuid.UUID, week: str) -> uuid.UUID:
    return stable_id(user_id, week, "weekly_insight_memory")


def view(row: dict[str, Any]) -> InsightView:
    """A stored row as the graph returns it (plain JSON, no `created_at`)."""
    return {
        "id": str(row["id"]),
        "week": row["week"],
        "text": row["text"],
        "dci": float(row["dci"]),
        "stats": dict(row.get("stats") or {}),
        "highlight_reel": row.get("highlight_reel"),
    }


def reel_missing(insight: InsightView) -> bool:
    """The insight qualifies for a highlight reel (DCI >= 0.8 or streak >= 7) and has none."""
    due = highlight_reel_due(insight["dci"], int(insight["stats"].get("streak_days") or 0))
    return due and insight.get("highlight_reel") is None


def _week(state: InsightsState) -> str:
    week = state.get("week")
    if week is None:  # resolve_week, the first node, always sets it
        raise RuntimeError("weekly_insights: the week was not resolved")
    return week


def _window(state: InsightsState) -> tuple[datetime, datetime]:
    w = state["window"]
    return datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])


# --- resolve the week -----------------------------------------------------------------------------


@observed(GRAPH)
async def resolve_week(state: InsightsState, runtime: InsightsRuntime) -> Update:
    """The week (given, else the run clock's ISO week in the user's timezone; malformed or not
    yet started: `Invalid`), its read window, and its stored insight. A complete stored insight
    is returned as it is (`created: False`, no model call); a degraded one is regenerated.
    Resets this run's `degraded` and `usage` (a thread may carry a previous run's)."""
    ctx = runtime.context
    svc = ctx.services
    week = state.get("week")
    if week is None:
        week = week_of(ctx.now, ctx.timezone)
    start, end = insight_window(week, ctx.timezone, ctx.now, svc.settings.dci_window_days)
    existing = await svc.insights.get(ctx.user_id, week)
    degraded = bool(existing and (existing.get("stats") or {}).get("degraded"))
    update: dict[str, Any] = {
        "week": week,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "stored": existing is not None and not degraded,
        "replace": degraded,
        "degraded": Overwrite([]),
        "usage": Overwrite(empty_usage()),
    }
    if existing is not None and not degraded:
        update |= {"insight": view(existing), "created": False}
    return update


# --- the three reads (parallel) ---------------------------------------------------------------------


@observed(GRAPH)
async def load_task_memories(state: InsightsState, runtime: InsightsRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    start, end = _window(state)
    memories = await svc.insights.task_memories(ctx.user_id, since=start, until=end, now=ctx.now)
    return {"task_memories": memories}


@observed(GRAPH)
async def compute_dci(state: InsightsState, runtime: InsightsRuntime) -> Update:
    """DCI, zone, terms and streak as of the window's end."""
    ctx = runtime.context
    svc = ctx.services
    _, end = _window(state)
    progress = await svc.progress.recent(ctx.user_id, ctx.timezone, end)
    return {"progress": progress.model_dump()}


@observed(GRAPH)
async def completion_stats(state: InsightsState, runtime: InsightsRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    start, end = _window(state)
    stats = await svc.insights.week_stats(ctx.user_id, tz=ctx.timezone, since=start, until=end)
    return {"stats": stats}


def no_task_memories() -> Update:
    return {"task_memories": []}


def no_progress() -> Update:
    return {"progress": Progress().model_dump()}


def empty_stats() -> dict[str, Any]:
    return {
        "completed": 0,
        "skipped": 0,
        "minutes": 0,
        "by_weekday": dict.fromkeys(WEEKDAYS, 0),
        "best_weekday": None,
        "top_missions": [],
    }


def no_stats() -> Update:
    return {"stats": empty_stats()}


# --- the two model calls (sequential) ------------------------------------------------------------


@observed(GRAPH)
async def analyse_patterns(state: InsightsState, runtime: InsightsRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    patterns, usage = await svc.llm.structured(
        WeeklyPatterns,
        patterns_messages(
            week=_week(state),
            stats=state.get("stats") or empty_stats(),
            progress=state.get("progress") or {},
            memories=state.get("task_memories") or [],
        ),
        site="insights.patterns",
        user_id=str(ctx.user_id),
    )
    return {"patterns": patterns.model_dump(), "usage": usage.model_dump()}


@observed(GRAPH)
async def write_insights(state: InsightsState, runtime: InsightsRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    draft, usage = await svc.llm.structured(
        WeeklyInsight,
        insight_messages(week=_week(state), patterns=state["patterns"], progress=state.get("progress") or {}),
        site="insights.write",
        user_id=str(ctx.user_id),
    )
    return {"draft": draft.model_dump(), "usage": usage.model_dump()}


# --- store ----------------------------------------------------------------------------------------


def insight_stats(state: InsightsState) -> dict[str, Any]:
    """What the row's `stats` keeps: the week's numbers, the DCI's streak, zone and terms, the
    window, how many task notes were read, the patterns, and which reads degraded."""
    progress = Progress.model_validate(state.get("progress") or {})
    return {
        **(state.get("stats") or empty_stats()),
        "streak_days": progress.streak_days,
        "zone": progress.zone,
        "terms": progress.terms,
        "window": state["window"],
        "task_memories": len(state.get("task_memories") or []),
        "patterns": (state.get("patterns") or {}).get("patterns", []),
        "degraded": sorted(set(state.get("degraded") or [])),
    }


async def _forget(svc: WeeklyInsightsServices, user: uuid.UUID, mid: uuid.UUID) -> None:
    try:
        await svc.memory.delete(user, mid)
    except NotFound:
        pass


@observed(GRAPH)
async def store_insight(state: InsightsState, runtime: InsightsRuntime) -> Update:
    """The personal memory first, then the row (the row is the commit mark: a run that stops in
    between leaves no row, and its re-run regenerates and rewrites the same memory id). When a
    concurrent run stored the week first, its row wins and the memory is rewritten to match."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    week = _week(state)
    dci = float((state.get("progress") or {}).get("dci") or 0.0)
    text = insight_text(WeeklyInsight.model_validate(state["draft"]))
    mid = memory_id(user, week)

    async def remember(text: str, dci: float) -> str:
        stored_id, _merged = await svc.memory.add(
            user,
            "personal",
            insight_memory(week, text, dci),
            {"dci": dci, "week": week, "tags": INSIGHT_TAGS},
            now=ctx.now,
            memory_id=mid,
        )
        return stored_id

    if state.get("replace"):  # the degraded insight's memory holds its old text and numbers
        await _forget(svc, user, mid)
    stored_mid = await remember(text, dci)
    row, written = await svc.insights.store(
        user, insight_id=insight_id(user, week), week=week, text=text, dci=dci, stats=insight_stats(state)
    )
    if not written and (row["text"] != text or row["dci"] != dci):
        await _forget(svc, user, mid)
        stored_mid = await remember(row["text"], row["dci"])
    return {"insight": view(row), "created": written, "memory_id": stored_mid}


# --- highlight reel -------------------------------------------------------------------------------


@observed(GRAPH)
async def highlight_reel(state: InsightsState, runtime: InsightsRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    insight = state["insight"]
    reel = build_highlight_reel(insight["dci"], insight["stats"])
    row = await svc.insights.set_highlight_reel(ctx.user_id, insight["week"], reel)
    return {"insight": view(row) if row else {**insight, "highlight_reel": reel}}
