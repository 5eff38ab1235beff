"""Narrative triggers, beat selection, hidden quests and the weekly highlight reel (DOMAIN.md).
Quest triggers are data. Pure functions, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from domain.calendar import WEEKDAYS

BeatType = Literal["progression", "character_moment", "hidden_quest_unlock", "milestone"]


@dataclass(frozen=True)
class QuestTrigger:
    key: str
    metric: Literal["streak_days", "missions_completed", "goals_completed"]
    threshold: int
    title: str
    description: str


# Hidden quests (DOMAIN.md examples): data, not code. Add a row to add a quest.
HIDDEN_QUESTS: tuple[QuestTrigger, ...] = (
    QuestTrigger("streak_7", "streak_days", 7, "The Steady Flame", "Seven days in a row."),
    QuestTrigger("streak_14", "streak_days", 14, "The Long Road", "Fourteen days in a row."),
    QuestTrigger("streak_30", "streak_days", 30, "The Unbroken Month", "Thirty days in a row."),
    QuestTrigger("missions_10", "missions_completed", 10, "Ten Small Victories", "Ten missions done."),
    QuestTrigger("missions_50", "missions_completed", 50, "The Fifty Steps", "Fifty missions done."),
    QuestTrigger(
        "missions_100", "missions_completed", 100, "The Hundredfold Path", "A hundred missions done."
    ),
    QuestTrigger("first_goal", "goals_completed", 1, "The First Summit", "Your first goal completed."),
)


def check_unlocks(
    stats: Mapping[str, int], unlocked: Collection[str], quests: tuple[QuestTrigger, ...] = HIDDEN_QUESTS
) -> list[QuestTrigger]:
    """Quests whose threshold the stats now meet and that are not unlocked yet."""
    return [q for q in quests if q.key not in unlocked and stats.get(q.metric, 0) >= q.threshold]


@dataclass(frozen=True)
class Triggers:
    """What happened since the last beat of this goal."""

    milestone_completed: int | None  # sequence of a milestone whose missions are all done
    new_unlocks: tuple[str, ...]
    goal_missions_completed: int
    recent_skips: int


def select_beat(t: Triggers) -> tuple[BeatType, str]:
    """(beat type, trigger key). Precedence: a completed milestone, then a new hidden-quest
    unlock, then a character moment after a rough patch (3+ skips), else progression. The key
    makes a beat unique per trigger: the same trigger never yields a second beat."""
    if t.milestone_completed is not None:
        return "milestone", f"milestone:{t.milestone_completed}"
    if t.new_unlocks:
        return "hidden_quest_unlock", "unlock:" + ",".join(sorted(t.new_unlocks))
    if t.recent_skips >= 3:
        return "character_moment", f"setback:{t.goal_missions_completed}"
    return "progression", f"progress:{t.goal_missions_completed}"


# A week earns a highlight reel with a DCI of 0.8+ or a streak of 7+ days (DOMAIN.md).
REEL_DCI = 0.8
REEL_STREAK_DAYS = 7
REEL_MISSIONS = 3  # top missions shown in a highlight reel
_DAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)


def highlight_reel_due(dci: float, streak_days: int) -> bool:
    """Weekly insights build a highlight reel when DCI >= 0.8 or the streak is 7+ days."""
    return dci >= REEL_DCI or streak_days >= REEL_STREAK_DAYS


def build_highlight_reel(dci: float, stats: Mapping[str, Any]) -> dict[str, Any]:
    """The week's highlight reel, from its numbers alone (no model call): why it was earned,
    the DCI and streak, the best weekday, the most completed missions, and one line per
    highlight for the app to show."""
    streak = int(stats.get("streak_days") or 0)
    completed, minutes = int(stats.get("completed") or 0), int(stats.get("minutes") or 0)
    best = stats.get("best_weekday")
    top = list(stats.get("top_missions") or [])[:REEL_MISSIONS]
    reasons = [r for r, hit in (("dci", dci >= REEL_DCI), ("streak", streak >= REEL_STREAK_DAYS)) if hit]
    moments: list[str] = []
    if streak >= REEL_STREAK_DAYS:
        moments.append(f"A {streak}-day streak: you showed up every day.")
    if dci >= REEL_DCI:
        moments.append(f"DCI {dci:.2f}: one of your most consistent weeks.")
    if completed:
        moments.append(f"{completed} missions completed, {minutes} focused minutes.")
    if best:
        count = int((stats.get("by_weekday") or {}).get(best, 0))
        moments.append(f"Best day: {_DAY_NAMES.get(best, best)} ({count} missions).")
    moments += [f"Top mission: {m['title']} ({m['count']}x)." for m in top]
    return {
        "title": "Your week in highlights",
        "reasons": reasons,
        "dci": dci,
        "zone": stats.get("zone"),
        "streak_days": streak,
        "completed": completed,
        "minutes": minutes,
        "best_weekday": best,
        "top_missions": top,
        "moments": moments,
    }


# --- what happened on a goal since its last beat (narrative_beat) -------------------------------


def milestone_key(sequence: int) -> str:
    """The trigger key `select_beat` gives a completed milestone (one format, the domain's)."""
    return select_beat(Triggers(sequence, (), 0, 0))[1]


def unlock_stats(progress: Mapping[str, Any]) -> dict[str, int]:
    """What the hidden-quest thresholds are measured on (user-wide)."""
    return {
        "streak_days": int(progress.get("streak_days") or 0),
        "missions_completed": int(progress.get("missions_completed") or 0),
        "goals_completed": int(progress.get("goals_completed") or 0),
    }


def build_triggers(progress: Mapping[str, Any] | None) -> Triggers:
    """What happened since the goal's last beats: the lowest-sequence milestone whose missions
    (at least one) are all completed and that has no beat yet, the hidden quests the stats now
    reach that are not unlocked yet, and the goal's completions and recent skips. No progress
    (its branch degraded) means no trigger but plain progression."""
    p = progress or {}
    has_beat = set(p.get("beat_keys") or [])
    done = sorted(
        int(m["sequence"])
        for m in p.get("milestones") or []
        if 0 < m["missions"] <= m["completed"] and milestone_key(m["sequence"]) not in has_beat
    )
    unlocks = check_unlocks(unlock_stats(p), set(p.get("unlocked") or []))
    return Triggers(
        milestone_completed=done[0] if done else None,
        new_unlocks=tuple(q.key for q in unlocks),
        goal_missions_completed=int(p.get("goal_missions_completed") or 0),
        recent_skips=int(p.get("recent_skips") or 0),
    )


def triggers_json(t: Triggers) -> dict[str, Any]:
    return {**dataclasses.asdict(t), "new_unlocks": list(t.new_unlocks)}


def triggers_of(data: Mapping[str, Any]) -> Triggers:
    return Triggers(**{**data, "new_unlocks": tuple(data["new_unlocks"])})


def nothing_new(beat_type: str, progress: Mapping[str, Any] | None) -> bool:
    """A progression or character beat needs activity on the goal since its last beat: without
    a completion or skip since then, the beat would retell what the last one told (e.g. a
    progression beat right after a milestone beat at the same count), so there is no trigger.
    Milestones and unlocks are new by construction (they exclude what already has a beat)."""
    p = progress or {}
    return (
        beat_type in ("progression", "character_moment")
        and p.get("last_beat_id") is not None
        and int(p.get("activity_since_last_beat") or 0) == 0
    )
