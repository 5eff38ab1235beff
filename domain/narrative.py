"""Narrative triggers, beat selection and hidden quests (DOMAIN.md). Quest triggers are data.
Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

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


def highlight_reel_due(dci: float, streak_days: int) -> bool:
    """Weekly insights build a highlight reel when DCI >= 0.8 or the streak is 7+ days."""
    return dci >= 0.8 or streak_days >= 7
