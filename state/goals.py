"""The goal and mission entities (rows of `goals` and `missions`), as services return them and
workflows carry them. The models the workflows ask the LLM for live in each workflow's own state
module (e.g. `state.goal_decomposition.MilestonePlan`)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.missions import Energy

ValueCategory = Literal["health", "craft", "growth", "connection"]
GoalStatus = Literal["active", "paused", "completed", "archived"]
MissionStatus = Literal["pending", "in_progress", "completed", "deferred", "archived"]
MissionKind = Literal["regular", "self_care", "challenge", "celebration", "quest"]


class Goal(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # goals.id (a UUID, as text)
    user_id: str  # the owner (users.id)
    title: str  # 1-200 characters
    description: str = ""  # <= 2000 characters
    value_category: ValueCategory  # health, craft, growth or connection
    target_date: dt.date | None = None  # when the user wants it done, if they said
    status: GoalStatus = "active"  # active, paused, completed or archived
    emotional_driver: str | None = None  # the dominant emotion when the goal was created
    created_at: dt.datetime | None = None  # when the goal was created


class Mission(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # missions.id
    goal_id: str | None = None  # the goal it serves (None: a self-care or celebration mission)
    milestone_id: str | None = None  # its milestone in the goal's plan, if it came from one
    title: str  # what to do, in a few words
    description: str = ""  # how, and why it helps
    estimated_minutes: int  # 5-120
    energy_level: Energy  # low, medium or high
    value_category: str | None = None  # the goal's category (or the path's: health for self-care)
    priority_score: float = 0.0  # domain.missions.priority_score: higher comes first
    status: MissionStatus = "pending"  # pending, in_progress, completed, deferred or archived
    kind: MissionKind = "regular"  # regular, self_care, challenge, celebration or quest
    first_step: str | None = None  # process_missions' small concrete first step, once prepared
    created_at: dt.datetime | None = None  # when the mission was created
    completed_at: dt.datetime | None = None  # when it was completed
