"""State of the personalized_nudge workflow (seed: "Epic 2 + Epic 7: Personalized Nudge with
Memory"), and the one model it asks the LLM for (message, subject and tiny step together).

Graph state is plain JSON (preferences, nudge, usage as dicts; dates as ISO strings), so a
checkpointed run (`run:<id>` threads) needs nothing added to the strict msgpack allow-list. The
nudge and the preferences themselves are entities: `state/nudges.py`."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from domain.nudges import Channel
from state.reducers import add_usage


class NudgeDraft(BaseModel):
    """personalized_nudge: everything the nudge needs from one call (seed: batch small outputs)."""

    message: str = Field(min_length=1, max_length=320, description="Warm, never shaming")
    subject: str = Field(min_length=1, max_length=80, description="Email subject / push title")
    suggested_step: str = Field(min_length=1, max_length=160, description="One tiny step to restart")


class NudgeInput(TypedDict, total=False):
    """Nothing: the user is the run's context user, the clock the run's clock."""


class NudgeOutput(TypedDict, total=False):
    scheduled: bool  # a nudge exists for today (just created, or created by an earlier run)
    reason: str  # why (not) scheduled, with the numbers it was decided on
    nudge: dict[str, Any] | None  # `Nudge.output()`: id, channel, message, subject, send_at ...
    days_inactive: int  # whole local days since the user's last activity
    created: bool  # this run inserted the nudge (False: it already existed, or none)
    degraded: list[str]  # nodes that fell back to a default value
    usage: dict[str, Any]  # `Usage` of this run's model calls: tokens, cost, calls


class NudgeState(NudgeInput, total=False):
    scheduled: bool  # see NudgeOutput
    reason: str  # see NudgeOutput
    nudge: dict[str, Any] | None  # see NudgeOutput
    days_inactive: int  # see NudgeOutput
    created: bool  # see NudgeOutput
    # Written by the parallel loaders' fallbacks and by both model calls, hence reducers.
    degraded: Annotated[list[str], operator.add]
    usage: Annotated[dict[str, Any], add_usage]  # see NudgeOutput
    # load_preferences: `NudgePreferences.model_dump(mode="json")`
    preferences: dict[str, Any]
    # load_active_goals: up to three titles, newest first
    goals: list[str]
    # load_inactivity
    timezone: str  # the user's stored timezone (the run's when that one is unusable)
    last_active: str | None  # ISO datetime
    streak_start: str  # ISO date: the local day after the last activity
    local_date: str  # ISO date: today in the user's timezone (the idempotency day)
    sent_in_streak: int  # nudges already stored in this inactive streak
    sent_today: int  # nudges already stored today (local day)
    existing: dict[str, Any] | None  # today's nudge if one is already stored (`Nudge.output()`)
    # check_eligibility: go on to write a nudge (else the run ends with `reason`)
    eligible: bool
    # the pipeline
    channel: Channel  # in_app, email or sms (domain.nudges.nudge_channel)
    draft: dict[str, Any]  # NudgeDraft.model_dump()
    draft_source: Literal[
        "model", "rewrite", "template"
    ]  # who wrote the stored text: the model, its rewrite, or the safe template
    shaming: str | None  # the phrase found in the first draft, if any
