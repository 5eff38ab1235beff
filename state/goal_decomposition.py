"""State of the goal_decomposition workflow (seed Pattern 2, sequential pipeline).

Values in this state are plain JSON-ready data (`model_dump(mode="json")` of the `state.goals`
models), never the pydantic objects themselves: checkpoints are deserialised with a strict
allow-list (`services.container.CHECKPOINT_TYPES`), and a dict round-trips through it unchanged,
so a resumed run sees exactly what the interrupted one wrote. Nodes re-validate with the models
where they need them (`goal_of`, `milestone_drafts`, `mission_drafts`).
"""

from __future__ import annotations

from typing import Annotated, Any

from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.goals import Goal, MilestoneDraft, MissionDraft

Json = dict[str, Any]


def merge_by_sequence(
    left: dict[int, list[Json]] | None, right: dict[int, list[Json]] | None
) -> dict[int, list[Json]]:
    """Reducer of the per-milestone results written by the parallel `plan_missions` tasks.
    Keyed by milestone sequence: a task that runs again (retry, resumed run) replaces its own
    entry instead of adding a second one."""
    return {**(left or {}), **(right or {})}


class DecompositionInput(TypedDict):
    goal_id: str


class DecompositionOutput(TypedDict, total=False):
    goal_id: str
    created: bool  # False when the goal already had a plan (nothing was generated or stored)
    milestones: int
    missions: int
    plan: Json  # `Goals.plan(goal_id)`: the stored milestones with their missions
    complexity: str | None  # GoalAnalysis.complexity; None when no new plan was made


class DecompositionState(DecompositionInput, total=False):
    # outputs
    created: bool
    milestones: int
    missions: int
    plan: Json
    complexity: str | None
    # working values
    goal: Json  # Goal
    has_plan: bool  # set by load_goal on every run: the goal already has milestones
    analysis: Json  # GoalAnalysis
    milestone_plan: list[Json]  # MilestoneDraft, in sequence order (sequence = index + 1)
    mission_plans: Annotated[dict[int, list[Json]], merge_by_sequence]  # sequence -> MissionDraft


class MilestoneTask(TypedDict):
    """What one `plan_missions` task receives through `Send`."""

    goal: Json
    analysis: Json
    sequence: int  # 1-based
    total: int  # how many milestones the plan has
    milestone: Json  # MilestoneDraft
    others: list[str]  # titles of the plan's milestones, in order (context for the model)


def goal_of(data: Json) -> Goal:
    return Goal.model_validate(data)


def milestone_drafts(state: DecompositionState) -> list[MilestoneDraft]:
    return [MilestoneDraft.model_validate(m) for m in state.get("milestone_plan") or []]


def mission_drafts(state: DecompositionState, count: int) -> list[list[MissionDraft]]:
    """The missions of milestones 1..count, in sequence order. Raises if one is missing (a
    pipeline bug: the fan-in runs only after every `plan_missions` task wrote its entry)."""
    plans = state.get("mission_plans") or {}
    missing = [i for i in range(1, count + 1) if i not in plans]
    if missing:
        raise RuntimeError(f"missions missing for milestone(s) {missing}")
    return [[MissionDraft.model_validate(d) for d in plans[i]] for i in range(1, count + 1)]
