"""The narrative's pure logic: hidden-quest unlocks at their thresholds, beat selection
(precedence and trigger keys), the triggers built from progress counts, the "nothing new"
rule, and the usage reducer the parallel model calls write through."""

from __future__ import annotations

from typing import Any

import pytest

from domain.narrative import (
    HIDDEN_QUESTS,
    QuestTrigger,
    Triggers,
    build_triggers,
    check_unlocks,
    milestone_key,
    nothing_new,
    select_beat,
    triggers_json,
    triggers_of,
)
from state.reducers import add_usage, empty_usage, usage_entry
from state.schemas import Usage


def keys(quests: list[QuestTrigger]) -> list[str]:
    return [q.key for q in quests]


# --- hidden quests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("streak", "expected"),
    [
        (0, []),
        (6, []),
        (7, ["streak_7"]),
        (13, ["streak_7"]),
        (14, ["streak_7", "streak_14"]),
        (29, ["streak_7", "streak_14"]),
        (30, ["streak_7", "streak_14", "streak_30"]),
    ],
)
def test_streak_quests_unlock_exactly_at_their_threshold(streak: int, expected: list[str]) -> None:
    assert keys(check_unlocks({"streak_days": streak}, set())) == expected


@pytest.mark.parametrize(
    ("missions", "expected"),
    [
        (9, []),
        (10, ["missions_10"]),
        (49, ["missions_10"]),
        (50, ["missions_10", "missions_50"]),
        (99, ["missions_10", "missions_50"]),
        (100, ["missions_10", "missions_50", "missions_100"]),
    ],
)
def test_mission_quests_unlock_exactly_at_their_threshold(missions: int, expected: list[str]) -> None:
    assert keys(check_unlocks({"missions_completed": missions}, set())) == expected


def test_first_goal_unlocks_with_the_first_completed_goal() -> None:
    assert keys(check_unlocks({"goals_completed": 0}, set())) == []
    assert keys(check_unlocks({"goals_completed": 1}, set())) == ["first_goal"]
    assert keys(check_unlocks({"goals_completed": 3}, set())) == ["first_goal"]


def test_an_unlocked_quest_is_never_unlocked_again() -> None:
    stats = {"streak_days": 30, "missions_completed": 100, "goals_completed": 1}
    already = {"streak_7", "streak_14", "missions_10", "missions_50", "first_goal"}
    assert keys(check_unlocks(stats, already)) == ["streak_30", "missions_100"]
    assert check_unlocks(stats, {q.key for q in HIDDEN_QUESTS}) == []


def test_quests_are_data_a_new_row_is_a_new_quest() -> None:
    extra = (*HIDDEN_QUESTS, QuestTrigger("streak_3", "streak_days", 3, "Kindling", "Three days."))
    assert keys(check_unlocks({"streak_days": 3}, set(), extra)) == ["streak_3"]
    assert keys(check_unlocks({"streak_days": 3}, set())) == []


# --- beat selection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        # a completed milestone wins over everything
        (Triggers(2, ("streak_7",), 12, 5), ("milestone", "milestone:2")),
        # then a new unlock (keys sorted: the same set is the same trigger in any order)
        (
            Triggers(None, ("streak_7", "missions_10"), 10, 5),
            ("hidden_quest_unlock", "unlock:missions_10,streak_7"),
        ),
        (
            Triggers(None, ("missions_10", "streak_7"), 10, 0),
            ("hidden_quest_unlock", "unlock:missions_10,streak_7"),
        ),
        # then a rough patch: 3 skips or more
        (Triggers(None, (), 4, 3), ("character_moment", "setback:4")),
        (Triggers(None, (), 4, 2), ("progression", "progress:4")),
        (Triggers(None, (), 0, 0), ("progression", "progress:0")),
    ],
)
def test_select_beat_precedence_and_keys(triggers: Triggers, expected: tuple[str, str]) -> None:
    assert select_beat(triggers) == expected


def test_milestone_key_is_the_domain_format() -> None:
    assert milestone_key(3) == select_beat(Triggers(3, ("streak_7",), 9, 9))[1] == "milestone:3"


# --- triggers from progress ------------------------------------------------------------------------------


def progress(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "goal_missions_total": 12,
        "goal_missions_completed": 7,
        "recent_skips": 1,
        "missions_completed": 7,
        "goals_completed": 0,
        "streak_days": 3,
        "milestones": [
            {"sequence": 1, "title": "Chords", "missions": 4, "completed": 4},
            {"sequence": 2, "title": "Songs", "missions": 4, "completed": 4},
            {"sequence": 3, "title": "Stage", "missions": 4, "completed": 3},
        ],
        "unlocked": [],
        "beat_keys": [],
        "last_beat_id": None,
        "activity_since_last_beat": 0,
    }
    return base | overrides


def test_the_lowest_completed_milestone_without_a_beat_is_the_trigger() -> None:
    assert build_triggers(progress()).milestone_completed == 1
    assert build_triggers(progress(beat_keys=["milestone:1"])).milestone_completed == 2
    # milestone 3 has one mission left: not complete
    assert build_triggers(progress(beat_keys=["milestone:1", "milestone:2"])).milestone_completed is None


def test_a_milestone_without_missions_is_not_completed() -> None:
    empty = [{"sequence": 1, "title": "Later", "missions": 0, "completed": 0}]
    assert build_triggers(progress(milestones=empty)).milestone_completed is None


def test_new_unlocks_use_user_wide_stats_and_skip_what_is_unlocked() -> None:
    t = build_triggers(progress(streak_days=7, missions_completed=10))
    assert t.new_unlocks == ("streak_7", "missions_10")
    t = build_triggers(progress(streak_days=7, missions_completed=10, unlocked=["streak_7"]))
    assert t.new_unlocks == ("missions_10",)
    assert build_triggers(progress(streak_days=6, missions_completed=9)).new_unlocks == ()


def test_goal_counts_are_carried_into_the_triggers() -> None:
    t = build_triggers(progress(goal_missions_completed=5, recent_skips=4))
    assert (t.goal_missions_completed, t.recent_skips) == (5, 4)


def test_no_progress_means_a_plain_progression() -> None:
    t = build_triggers(None)
    assert t == Triggers(None, (), 0, 0)
    assert select_beat(t) == ("progression", "progress:0")


def test_triggers_round_trip_through_json_state() -> None:
    t = Triggers(2, ("streak_7", "missions_10"), 9, 1)
    data = triggers_json(t)
    assert data["new_unlocks"] == ["streak_7", "missions_10"]
    assert triggers_of(data) == t


@pytest.mark.parametrize(
    ("beat_type", "overrides", "expected"),
    [
        ("progression", {"last_beat_id": "b1", "activity_since_last_beat": 0}, True),
        ("character_moment", {"last_beat_id": "b1", "activity_since_last_beat": 0}, True),
        ("progression", {"last_beat_id": "b1", "activity_since_last_beat": 1}, False),
        ("progression", {"last_beat_id": None, "activity_since_last_beat": 0}, False),  # first beat
        ("milestone", {"last_beat_id": "b1", "activity_since_last_beat": 0}, False),
        ("hidden_quest_unlock", {"last_beat_id": "b1", "activity_since_last_beat": 0}, False),
    ],
)
def test_nothing_new_only_without_activity_since_the_last_beat(
    beat_type: str, overrides: dict[str, Any], expected: bool
) -> None:
    assert nothing_new(beat_type, progress(**overrides)) is expected


def test_nothing_new_is_false_without_progress() -> None:
    assert nothing_new("progression", None) is False


# --- usage reducer ---------------------------------------------------------------------------------------


def test_usage_accumulates_totals_and_per_site() -> None:
    story = usage_entry(
        "narrative.story", Usage(input_tokens=100, output_tokens=400, cost_usd=0.00425, calls=1)
    )
    retry = usage_entry(
        "narrative.story", Usage(input_tokens=150, output_tokens=390, cost_usd=0.004275, calls=1)
    )
    teaser = usage_entry(
        "narrative.teaser", Usage(input_tokens=40, output_tokens=20, cost_usd=0.000018, calls=1)
    )
    total = add_usage(add_usage(add_usage(empty_usage(), story), teaser), retry)
    assert total["input_tokens"] == 290 and total["output_tokens"] == 810 and total["calls"] == 3
    assert total["cost_usd"] == pytest.approx(0.008543)
    assert total["by_site"]["narrative.story"] == {
        "input_tokens": 250,
        "output_tokens": 790,
        "cost_usd": pytest.approx(0.008525),
        "calls": 2,
    }
    assert total["by_site"]["narrative.teaser"]["calls"] == 1
    # order of the parallel writes does not matter
    assert add_usage(teaser, story) == add_usage(story, teaser)
    assert add_usage(None, None) == empty_usage()
