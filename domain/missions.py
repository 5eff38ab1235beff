"""Energy level, priority score, the priority triad, adaptive-mission routing, and which goal a
challenge serves (DOMAIN.md): pure functions, no I/O."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, Protocol, TypeVar

Energy = Literal["low", "medium", "high"]
Path = Literal["self_care", "challenge", "celebration", "triad"]

# Adaptive branching thresholds (seed Pattern 3, DOMAIN.md).
SADNESS_SELF_CARE = 0.7
JOY_CHALLENGE = 0.8
CELEBRATION_COMPLETIONS = 3


def energy_level(
    emotion: Mapping[str, float] | None, *, minutes_today: float, completed_today: int
) -> Energy:
    """Energy from the most recent emotion and the day's activity.

    score = 0.5 + 0.5 * (positive - negative), with
      positive = joy + 0.5 * love + 0.5 * surprise, negative = sadness + fear + 0.5 * anger
      (each clamped to [0, 1]); then -0.1 after 60 focused minutes today, -0.25 after 120
      (fatigue), +0.1 for 1-2 missions completed today (momentum); clamped to [0, 1].
    < 0.35 is low, > 0.65 is high, otherwise medium. No emotion counts as neutral (0.5).
    """
    e = emotion or {}
    positive = min(1.0, e.get("joy", 0) + 0.5 * e.get("love", 0) + 0.5 * e.get("surprise", 0))
    negative = min(1.0, e.get("sadness", 0) + e.get("fear", 0) + 0.5 * e.get("anger", 0))
    score = 0.5 + 0.5 * (positive - negative)
    if minutes_today >= 120:
        score -= 0.25
    elif minutes_today >= 60:
        score -= 0.1
    if 1 <= completed_today <= 2:
        score += 0.1
    score = min(1.0, max(0.0, score))
    if score < 0.35:
        return "low"
    return "high" if score > 0.65 else "medium"


def energy_with_feeling(
    stated: Mapping[str, float] | None,
    *,
    assessed: Energy,
    minutes_today: float | None,
    completed_today: int | None,
) -> Energy:
    """The energy a decision is made on. A feeling the user states now ("thrilled and full of
    energy") is the most recent emotion there is: it replaces the recorded one in
    `energy_level`, with the same day's activity (fatigue and momentum still count). Without a
    stated feeling, or when the day's activity is unknown (that assessment fell back), the
    assessed level stands."""
    if not stated or minutes_today is None or completed_today is None:
        return assessed
    return energy_level(stated, minutes_today=minutes_today, completed_today=completed_today)


def priority_score(
    *,
    estimated_minutes: int,
    created_at: dt.datetime,
    now: dt.datetime,
    target_date: dt.date | None,
) -> float:
    """0-1: 0.5 * urgency + 0.3 * waiting + 0.2 * quick_win.

    urgency   = 1 - days_to_target / 90 (clamped; 0.3 when the goal has no target date;
                1 when the target is today or past)
    waiting   = days since the mission was created / 14 (clamped): old missions rise
    quick_win = 1 - (minutes - 5) / 115: shorter missions are easier to start
    """
    if target_date is None:
        urgency = 0.3
    else:
        urgency = min(1.0, max(0.0, 1 - (target_date - now.date()).days / 90))
    waiting = min(1.0, max(0.0, (now - created_at).total_seconds() / 86400 / 14))
    quick_win = min(1.0, max(0.0, 1 - (estimated_minutes - 5) / 115))
    return round(0.5 * urgency + 0.3 * waiting + 0.2 * quick_win, 4)


class HasEnergy(Protocol):
    @property
    def energy_level(self) -> str: ...
    @property
    def priority_score(self) -> float: ...
    @property
    def status(self) -> str: ...


M = TypeVar("M", bound=HasEnergy)


def priority_triad(missions: Iterable[M]) -> list[M]:
    """One high-, one medium- and one low-energy pending mission, each the highest priority of
    its level (in that order); a level with no pending mission is left out."""
    best: dict[str, M] = {}
    for m in missions:
        if m.status != "pending":
            continue
        cur = best.get(m.energy_level)
        if cur is None or m.priority_score > cur.priority_score:
            best[m.energy_level] = m
    return [best[level] for level in ("high", "medium", "low") if level in best]


def choose_path(scores: Mapping[str, float], energy: Energy, completed_last_day: int) -> tuple[Path, str]:
    """The seed's Pattern 3, in its order: self-care, challenge, celebration, triad."""
    sadness, joy = scores.get("sadness", 0.0), scores.get("joy", 0.0)
    if sadness > SADNESS_SELF_CARE or energy == "low":
        why = (
            f"sadness {sadness:.2f} > {SADNESS_SELF_CARE}" if sadness > SADNESS_SELF_CARE else "energy is low"
        )
        return "self_care", f"{why}: a gentle self-care mission first"
    if joy > JOY_CHALLENGE and energy == "high":
        return "challenge", f"joy {joy:.2f} > {JOY_CHALLENGE} and energy is high: time to stretch"
    if completed_last_day >= CELEBRATION_COMPLETIONS:
        return (
            "celebration",
            f"{completed_last_day} missions completed in the last day: celebrate and rest",
        )
    return "triad", "a steady day: one high-, one medium- and one low-energy mission"


def daily_index(user_id: uuid.UUID, day: dt.date, n: int) -> int:
    """A template index fixed for one user and day, varied across days (stable across
    processes, unlike `hash`)."""
    digest = hashlib.sha256(f"{user_id}:{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % n


class GoalLike(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> dt.datetime | None: ...
    @property
    def target_date(self) -> dt.date | None: ...


G = TypeVar("G", bound=GoalLike)


def top_goal(goals: Sequence[G]) -> G | None:
    """The active goal a challenge serves: the nearest target date first (goals without one
    after those with one), then the most recently created."""
    active = [g for g in goals if g.status == "active"]
    if not active:
        return None
    newest_first = sorted(
        active, key=lambda g: g.created_at.timestamp() if g.created_at else 0.0, reverse=True
    )
    return min(newest_first, key=lambda g: (g.target_date is None, g.target_date or dt.date.max))
