"""The one registry of workflows: the API, the worker and `langgraph.json` all read it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph

from core.settings import Settings
from graphs import (
    adaptive_mission,
    chat,
    goal_creation,
    goal_decomposition,
    narrative_beat,
    nightly_maintenance,
    personalized_nudge,
    process_missions,
    weekly_insights,
    weekly_quests,
)
from nodes.adaptive_mission import AdaptiveMissionServices
from nodes.chat import ChatServices
from nodes.goal_creation import GoalCreationServices
from nodes.goal_decomposition import GoalDecompositionServices
from nodes.narrative_beat import NarrativeBeatServices
from nodes.nightly_maintenance import NightlyMaintenanceServices
from nodes.personalized_nudge import PersonalizedNudgeServices
from nodes.process_missions import ProcessMissionsServices
from nodes.weekly_insights import WeeklyInsightsServices
from nodes.weekly_quests import WeeklyQuestsServices
from services.container import Services
from services.runs import RunRecord

Graph = CompiledStateGraph[Any, Any, Any, Any]


class Builder(Protocol):
    """A workflow's `build`: its graph, uncompiled (settings default to `get_settings()`)."""

    def __call__(self, settings: Settings | None = None) -> StateGraph[Any, Any, Any, Any]: ...


@dataclass(frozen=True)
class Settlement:
    """What a workflow's `settle` hook gets when one of its runs did not end in success:
    `outcome` is error, timeout, interrupted, rollback, or crashed (its process stopped)."""

    run: RunRecord
    outcome: str
    services: Services
    graph: Graph
    forget_checkpoints: Callable[[], Awaitable[int]]  # delete what this run wrote to its thread


@dataclass(frozen=True)
class Workflow:
    name: str
    build: Builder
    module: str  # where `graph` (the checkpointer-less compile for Studio) lives
    description: str
    # Per-run config the workflow needs (e.g. its concurrency limit as `max_concurrency`).
    run_config: Callable[[Settings], RunnableConfig] | None = None
    # Run-engine hooks: the input as stored at submit (e.g. message ids fixed once), the input
    # given to the graph at each attempt, and how a run that did not succeed leaves its thread
    # (returns the final status and output).
    normalize_input: Callable[[Any], Any] | None = None
    prepare_input: Callable[[Any], Any] | None = None
    settle: Callable[[Settlement], Awaitable[tuple[str, Any]]] | None = None


WORKFLOWS: dict[str, Workflow] = {
    w.name: w
    for w in (
        Workflow(
            "chat",
            chat.build,
            "graphs/chat.py",
            "Eliza's chat turn (fan-out, fan-in)",
            normalize_input=chat.normalize_input,
            prepare_input=chat.prepare_input,
            settle=chat.settle_turn,
        ),
        Workflow(
            "goal_creation",
            goal_creation.build,
            "graphs/goal_creation.py",
            "Create a goal with memory, then start its decomposition",
        ),
        Workflow(
            "goal_decomposition",
            goal_decomposition.build,
            "graphs/goal_decomposition.py",
            "Goal → milestones → missions (waterfall, per-milestone fan-out)",
            goal_decomposition.run_config,
        ),
        Workflow(
            "adaptive_mission",
            adaptive_mission.build,
            "graphs/adaptive_mission.py",
            "The next mission from emotion, energy and the day's completions",
        ),
        Workflow(
            "process_missions",
            process_missions.build,
            "graphs/process_missions.py",
            "Prepare many missions concurrently under a limit, failures isolated",
            process_missions.run_config,
        ),
        Workflow(
            "narrative_beat",
            narrative_beat.build,
            "graphs/narrative_beat.py",
            "A story beat from progress and memories; story and teaser in parallel",
        ),
        Workflow(
            "weekly_insights",
            weekly_insights.build,
            "graphs/weekly_insights.py",
            "The week's patterns and insights; a highlight reel when earned",
        ),
        Workflow(
            "personalized_nudge",
            personalized_nudge.build,
            "graphs/personalized_nudge.py",
            "A kind, well-timed nudge for a user who drifted",
        ),
        Workflow(
            "weekly_quests",
            weekly_quests.build,
            "graphs/weekly_quests.py",
            "Weekly quests for one user (background job)",
        ),
        Workflow(
            "nightly_maintenance",
            nightly_maintenance.build,
            "graphs/nightly_maintenance.py",
            "Prune, consolidate, DCI, hidden quests in parallel (background job)",
        ),
    )
}


def compile_workflow(name: str, settings: Settings, checkpointer: BaseCheckpointSaver[Any] | None) -> Graph:
    """A workflow compiled for a host, with its run config (e.g. its concurrency limit) bound,
    so the limit holds wherever the graph runs."""
    w = WORKFLOWS[name]
    compiled = w.build(settings).compile(checkpointer=checkpointer, name=name)
    return compiled.with_config(w.run_config(settings)) if w.run_config else compiled


def compile_all(settings: Settings, checkpointer: BaseCheckpointSaver[Any] | None) -> dict[str, Graph]:
    """Every workflow compiled once for a host process (API or worker)."""
    return {name: compile_workflow(name, settings, checkpointer) for name in WORKFLOWS}


def langgraph_json_graphs() -> dict[str, str]:
    return {name: f"./{w.module}:graph" for name, w in WORKFLOWS.items()}


class WorkflowServices(
    ChatServices,
    GoalCreationServices,
    GoalDecompositionServices,
    AdaptiveMissionServices,
    ProcessMissionsServices,
    NarrativeBeatServices,
    WeeklyInsightsServices,
    PersonalizedNudgeServices,
    WeeklyQuestsServices,
    NightlyMaintenanceServices,
    Protocol,
):
    """Every workflow's services protocol at once: what a container must meet for the engine to
    hand it to any graph's nodes (the process's below; the tests' fakes in tests/support)."""


def _services_fit_every_workflow(s: Services) -> WorkflowServices:
    """Never called: mypy checks here that the process's container meets every workflow's
    services protocol (the nodes' `Runtime[Context[...Services]]`)."""
    return s
