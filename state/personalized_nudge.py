"""State of the personalized_nudge workflow (seed: "Epic 2 + Epic 7: Personalized Nudge with Memory"),
the user's nudge preferences, and the stored nudge.

Graph state is plain JSON (preferences, nudge, usage as dicts; dates as ISO strings), so a
checkpointed run (`run:<id>` threads) needs nothing added to the strict msgpack allow-list."""

from __future__ import annotations

import datetime as dt
import operator
import re
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from domain.nudges import DEFAULT_QUIET_HOURS, Channel
from state.schemas import Usage

CHANNELS: Final[tuple[Channel, ...]] = ("in_app", "email", "sms")
TONES: Final[tuple[str, ...]] = ("encouraging", "gentle", "playful", "direct", "calm")
DEFAULT_TONE: Final = "encouraging"
DEFAULT_MAX_PER_DAY: Final = 2
NudgeStatus = Literal["scheduled", "sending", "sent", "cancelled", "failed"]
# The nudge as the graph returns it (GET /api/v1/nudges shows the whole row).
NUDGE_OUTPUT_FIELDS: Final = frozenset(
    {"id", "channel", "message", "subject", "send_at", "status", "sequence_index"}
)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class NudgePreferences(BaseModel):
    """`users.preferences` merged over the defaults (DOMAIN.md). Keys: `channels` (opted in;
    in_app is always allowed), `quiet_hours` (["HH:MM", "HH:MM"] local, or null for none),
    `nudge_tone`, `max_per_day`. `memories`: how the user likes to be encouraged, from their
    personal memories (data for the prompt, never instructions)."""

    model_config = ConfigDict(frozen=True)

    channels: list[Channel] = Field(default_factory=lambda: ["in_app"])
    quiet_hours: tuple[str, str] | None = DEFAULT_QUIET_HOURS
    nudge_tone: str = DEFAULT_TONE
    max_per_day: int = Field(DEFAULT_MAX_PER_DAY, ge=0)
    memories: list[str] = Field(default_factory=list)

    @classmethod
    def from_raw(cls, raw: Any, memories: list[str] | None = None) -> NudgePreferences:
        """Lenient: a value of the wrong shape (user-edited JSON) keeps its default instead of
        failing the run. Unknown channels and tones are dropped: the tone reaches the prompt, so
        only the known ones may."""
        raw = raw if isinstance(raw, dict) else {}
        fields: dict[str, Any] = {"memories": list(memories or [])}
        channels = raw.get("channels")
        if isinstance(channels, list):
            fields["channels"] = [c for c in CHANNELS if c in channels]
        if "quiet_hours" in raw:
            qh = raw["quiet_hours"]
            if qh is None:
                fields["quiet_hours"] = None
            elif (
                isinstance(qh, (list, tuple))
                and len(qh) == 2
                and all(isinstance(t, str) and _HHMM.match(t) for t in qh)
            ):
                fields["quiet_hours"] = (qh[0], qh[1])
        tone = raw.get("nudge_tone")
        if isinstance(tone, str) and tone.strip().lower() in TONES:
            fields["nudge_tone"] = tone.strip().lower()
        cap = raw.get("max_per_day")
        if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 0:
            fields["max_per_day"] = cap
        return cls(**fields)


class Nudge(BaseModel):
    """A row of `nudges`."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    channel: Channel
    message: str
    subject: str | None = None
    send_at: dt.datetime
    status: NudgeStatus = "scheduled"
    sequence_index: int = Field(ge=1, le=3)
    streak_start: dt.date
    created_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None

    def output(self) -> dict[str, Any]:
        """The graph's narrow view of the nudge (JSON types)."""
        return self.model_dump(mode="json", include=set(NUDGE_OUTPUT_FIELDS))


def add_usage(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return (Usage(**(left or {})) + Usage(**(right or {}))).model_dump()


class NudgeInput(TypedDict, total=False):
    """Nothing: the user is the run's context user, the clock the run's clock."""


class NudgeOutput(TypedDict, total=False):
    scheduled: bool  # a nudge exists for today (just created, or created by an earlier run)
    reason: str  # why (not) scheduled, with the numbers it was decided on
    nudge: dict[str, Any] | None  # `Nudge.output()`: id, channel, message, subject, send_at ...
    days_inactive: int
    created: bool  # this run inserted the nudge (False: it already existed, or none)
    degraded: list[str]  # nodes that fell back to a default value
    usage: dict[str, Any]  # `Usage` of this run's model calls: tokens, cost, calls


class NudgeState(NudgeInput, total=False):
    scheduled: bool
    reason: str
    nudge: dict[str, Any] | None
    days_inactive: int
    created: bool
    # Written by the parallel loaders' fallbacks and by both model calls, hence reducers.
    degraded: Annotated[list[str], operator.add]
    usage: Annotated[dict[str, Any], add_usage]
    # load_preferences: `NudgePreferences.model_dump(mode="json")`
    preferences: dict[str, Any]
    # load_active_goals: up to three titles, newest first
    goals: list[str]
    # load_inactivity
    timezone: str
    last_active: str | None  # ISO datetime
    streak_start: str  # ISO date: the local day after the last activity
    local_date: str  # ISO date: today in the user's timezone (the idempotency day)
    sent_in_streak: int
    sent_today: int
    existing: dict[str, Any] | None  # today's nudge if one is already stored (`Nudge.output()`)
    # check_eligibility: go on to write a nudge (else the run ends with `reason`)
    eligible: bool
    # the pipeline
    channel: Channel
    draft: dict[str, Any]  # NudgeDraft.model_dump()
    draft_source: Literal["model", "rewrite", "template"]
    shaming: str | None  # the phrase found in the first draft, if any
