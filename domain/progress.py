"""Streak and DCI (DOMAIN.md): pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from domain.calendar import local_day

Zone = Literal["red", "yellow", "green"]


def streak_days(completions: Iterable[datetime], *, now: datetime, tz: str) -> int:
    """Consecutive local days with at least one completion, ending today, or yesterday when
    nothing is done yet today (a streak is not broken until the day is over)."""
    return streak_from_days({local_day(at, tz) for at in completions}, today=local_day(now, tz))


def streak_from_days(days: set[date], *, today: date) -> int:
    day = today
    if day not in days:
        day -= timedelta(days=1)
    count = 0
    while day in days:
        count += 1
        day -= timedelta(days=1)
    return count


def _ratio(num: float, den: float) -> float:
    return 0.0 if den <= 0 else min(1.0, max(0.0, num / den))


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


@dataclass(frozen=True)
class DciInputs:
    streak_days: int = 0
    completed: int = 0
    skipped: int = 0
    avg_session_minutes: float = 0.0
    missions_per_active_goal: float = 0.0
    nudges_sent: int = 0
    nudges_acted: int = 0


DCI_WEIGHTS = {"streak": 0.35, "completion": 0.35, "engagement": 0.20, "response": 0.10}


def dci_terms(x: DciInputs) -> dict[str, float]:
    """Each DOMAIN.md term in [0, 1] before weighting; an empty denominator counts 0."""
    return {
        "streak": _clamp(x.streak_days / 30),
        "completion": _ratio(x.completed, x.completed + x.skipped),
        "engagement": _clamp((x.avg_session_minutes / 45) * (x.missions_per_active_goal / 5)),
        "response": _ratio(x.nudges_acted, x.nudges_sent),
    }


def dci(x: DciInputs) -> float:
    terms = dci_terms(x)
    return round(sum(DCI_WEIGHTS[k] * v for k, v in terms.items()), 4)


def dci_zone(value: float) -> Zone:
    if value < 0.33:
        return "red"
    return "yellow" if value <= 0.66 else "green"
