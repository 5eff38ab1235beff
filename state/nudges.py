"""The nudge entities: a stored nudge (a row of `nudges`) and a user's nudge preferences
(`users.preferences` merged over the defaults). The personalized_nudge workflow's state is in
`state/personalized_nudge.py`."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.nudges import DEFAULT_QUIET_HOURS, Channel

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


def _in_app_only() -> list[Channel]:
    return ["in_app"]


class NudgePreferences(BaseModel):
    """`users.preferences` merged over the defaults (DOMAIN.md). Keys: `channels` (opted in;
    in_app is always allowed), `quiet_hours` (["HH:MM", "HH:MM"] local, or null for none),
    `nudge_tone`, `max_per_day`. `memories`: how the user likes to be encouraged, from their
    personal memories (data for the prompt, never instructions)."""

    model_config = ConfigDict(frozen=True)

    channels: list[Channel] = Field(default_factory=_in_app_only)
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

    id: str  # nudges.id: derived from the idempotency key (user + local day)
    user_id: str  # who it is for
    channel: Channel  # in_app, email or sms
    message: str  # the text the user reads (never shaming)
    subject: str | None = None  # email subject / push title
    send_at: dt.datetime  # now, or the end of the user's quiet hours
    status: NudgeStatus = "scheduled"  # scheduled, sending, sent, cancelled or failed
    sequence_index: int = Field(ge=1, le=3)  # its place in the inactive streak (at most 3)
    streak_start: dt.date  # the local day the inactive streak began
    created_at: dt.datetime | None = None  # when it was stored
    sent_at: dt.datetime | None = None  # when a sender delivered it

    def output(self) -> dict[str, Any]:
        """The graph's narrow view of the nudge (JSON types)."""
        return self.model_dump(mode="json", include=set(NUDGE_OUTPUT_FIELDS))
