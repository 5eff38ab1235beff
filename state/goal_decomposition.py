"""State of the goal_decomposition workflow (seed Pattern 2, sequential pipeline), and the models
it asks the LLM for (analysis, milestone plan, mission plan).

Values in this state are plain JSON-ready data (`model_dump(mode="json")` of the models), never
the pydantic objects themselves: checkpoints are deserialised with a strict allow-list
(`services.container.CHECKPOINT_TYPES`), and a dict round-trips through it unchanged, so a
resumed run sees exactly what the interrupted one wrote. Nodes re-validate with the models where
they need them (`goal_of`, `milestone_drafts`, `mission_drafts`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from domain.missions import Energy
from state.goals import Goal
from state.reducers import merge_keyed

Json = dict[str, Any]


# --- structured LLM output -------------------------------------------------------------------


class GoalAnalysis(BaseModel):
    """Step 2 of the decomposition: how big the goal is."""

    complexity: Literal["low", "medium", "high"]  # drives the plan's size
    estimated_weeks: int = Field(ge=1, le=104)  # rough duration of the whole goal
    milestone_count: int = Field(ge=3, le=7, description="How many milestones, 3-7")
    themes: list[str] = Field(default_factory=list, max_length=8)  # what the plan should cover
    rationale: str = Field(max_length=600)  # why this size, in the model's words


class MilestoneDraft(BaseModel):
    title: str = Field(min_length=1, max_length=200)  # the milestone, in a few words
    description: str = Field("", max_length=1000)  # what reaching it means


class MilestonePlan(BaseModel):
    milestones: list[MilestoneDraft] = Field(min_length=3, max_length=7)  # in order


class MissionDraft(BaseModel):
    title: str = Field(min_length=1, max_length=200)  # what to do, in a few words
    description: str = Field("", max_length=1000)  # how, and why it helps
    estimated_minutes: int = Field(ge=5, le=120)  # the domain's mission length
    energy_level: Energy  # low, medium or high


class MissionPlan(BaseModel):
    missions: list[MissionDraft] = Field(min_length=1, max_length=5)  # one milestone's missions


# --- graph state -------------------------------------------------------------------------------


class DecompositionInput(TypedDict):
    goal_id: str  # the goal to plan; the user is the run's context user (someone else's: NotFound)


class DecompositionOutput(TypedDict, total=False):
    goal_id: str  # the goal planned
    created: bool  # False when the goal already had a plan (nothing was generated or stored)
    milestones: int  # milestones in the stored plan
    missions: int  # missions in the stored plan
    plan: Json  # `Goals.plan(goal_id)`: the stored milestones with their missions
    complexity: str | None  # GoalAnalysis.complexity; None when no new plan was made


class DecompositionState(DecompositionInput, total=False):
    # outputs
    created: bool  # see DecompositionOutput
    milestones: int  # see DecompositionOutput
    missions: int  # see DecompositionOutput
    plan: Json  # see DecompositionOutput
    complexity: str | None  # see DecompositionOutput
    # working values
    goal: Json  # Goal
    has_plan: bool  # set by load_goal on every run: the goal already has milestones
    analysis: Json  # GoalAnalysis
    milestone_plan: list[Json]  # MilestoneDraft, in sequence order (sequence = index + 1)
    mission_plans: Annotated[dict[int, list[Json]], merge_keyed]  # sequence -> its MissionDrafts


class MilestoneTask(TypedDict):
    """What one `plan_missions` task receives through `Send`."""

    goal: Json  # Goal
    analysis: Json  # GoalAnalysis
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
