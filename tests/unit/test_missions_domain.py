"""domain.missions, pure: adaptive-path routing at and around each threshold and in the seed's
order of precedence, the energy estimate's edges, and the priority triad."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from domain.missions import (
    CELEBRATION_COMPLETIONS,
    JOY_CHALLENGE,
    SADNESS_SELF_CARE,
    Energy,
    choose_path,
    energy_level,
    priority_triad,
)

# --- choose_path: each threshold, at and just past it ---------------------------------------------


def test_thresholds_are_the_documented_ones() -> None:
    assert (SADNESS_SELF_CARE, JOY_CHALLENGE, CELEBRATION_COMPLETIONS) == (0.7, 0.8, 3)


@pytest.mark.parametrize(
    ("sadness", "expected"),
    [
        (0.0, "triad"),
        (0.69, "triad"),
        (0.70, "triad"),
        (0.7001, "self_care"),
        (0.71, "self_care"),
        (1.0, "self_care"),
    ],
)
def test_sadness_above_0_7_means_self_care(sadness: float, expected: str) -> None:
    assert choose_path({"sadness": sadness}, "medium", 0)[0] == expected


@pytest.mark.parametrize(
    ("joy", "energy", "expected"),
    [
        (0.80, "high", "triad"),
        (0.8001, "high", "challenge"),
        (0.81, "high", "challenge"),
        (1.0, "high", "challenge"),
        (0.81, "medium", "triad"),  # joy alone is not enough: energy must be high
        (0.99, "medium", "triad"),
    ],
)
def test_joy_above_0_8_with_high_energy_means_challenge(joy: float, energy: Energy, expected: str) -> None:
    assert choose_path({"joy": joy}, energy, 0)[0] == expected


@pytest.mark.parametrize(
    ("completed", "expected"), [(0, "triad"), (2, "triad"), (3, "celebration"), (7, "celebration")]
)
def test_three_completions_in_a_day_means_celebration(completed: int, expected: str) -> None:
    assert choose_path({"neutral": 1.0}, "medium", completed)[0] == expected


def test_low_energy_alone_means_self_care() -> None:
    path, reason = choose_path({"neutral": 1.0}, "low", 0)
    assert path == "self_care"
    assert "energy is low" in reason


def test_no_scores_at_all_is_the_triad() -> None:
    assert choose_path({}, "medium", 0)[0] == "triad"


# --- choose_path: order of precedence --------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "energy", "completed", "expected"),
    [
        ({"sadness": 0.75}, "medium", 3, "self_care"),  # sad beats a productive day
        ({"sadness": 0.75, "joy": 0.9}, "high", 3, "self_care"),  # sad beats energized
        ({"joy": 0.9}, "high", 3, "challenge"),  # energized beats a productive day
        ({"joy": 0.9}, "low", 0, "self_care"),  # low energy beats joy
        ({"joy": 0.9}, "low", 5, "self_care"),
        ({"joy": 0.9}, "medium", 3, "celebration"),  # joy without high energy: next rule
        ({"sadness": 0.7, "joy": 0.8}, "high", 2, "triad"),  # every value exactly at its threshold
    ],
)
def test_order_of_precedence(scores: dict[str, float], energy: Energy, completed: int, expected: str) -> None:
    assert choose_path(scores, energy, completed)[0] == expected


def test_reasons_name_the_numbers_they_were_decided_on() -> None:
    assert "sadness 0.85 > 0.7" in choose_path({"sadness": 0.85}, "high", 0)[1]
    assert "joy 0.93 > 0.8" in choose_path({"joy": 0.93}, "high", 0)[1]
    assert choose_path({}, "medium", 4)[1].startswith("4 missions completed")


# --- energy_level -------------------------------------------------------------------------------------


def _energy(minutes: float = 0, completed: int = 0, **scores: float) -> str:
    return energy_level(scores or None, minutes_today=minutes, completed_today=completed)


def test_no_emotion_is_neutral_medium() -> None:
    assert _energy() == "medium"
    assert energy_level({}, minutes_today=0, completed_today=0) == "medium"


def test_score_boundaries_are_exclusive() -> None:
    # 0.5 + 0.5 * (0 - 0.3) = 0.35: not below 0.35, so medium; a hair sadder is low.
    assert _energy(sadness=0.3) == "medium"
    assert _energy(sadness=0.31) == "low"
    # 0.5 + 0.5 * 0.3 = 0.65: not above 0.65, so medium; a hair happier is high.
    assert _energy(joy=0.3) == "medium"
    assert _energy(joy=0.31) == "high"


def test_love_and_surprise_count_half_and_anger_half() -> None:
    assert _energy(love=0.62) == "high"  # positive 0.31
    assert _energy(love=0.6) == "medium"  # positive 0.30 -> 0.65
    assert _energy(anger=0.62) == "low"  # negative 0.31
    assert _energy(fear=0.31) == "low"  # fear counts fully


def test_fatigue_after_60_and_120_focused_minutes() -> None:
    # joy 0.4 -> 0.7 (high); -0.1 from 60 focused minutes -> 0.6 (medium)
    assert _energy(59, joy=0.4) == "high"
    assert _energy(60, joy=0.4) == "medium"
    # joy 0.8 -> 0.9; -0.1 until 119 min -> 0.8 (high); -0.25 from 120 min -> 0.65 (medium)
    assert _energy(119, joy=0.8) == "high"
    assert _energy(120, joy=0.8) == "medium"
    # neutral 0.5: -0.1 -> 0.4 (medium); -0.25 -> 0.25 (low)
    assert _energy(119) == "medium"
    assert _energy(120) == "low"


def test_momentum_for_one_or_two_completions_only() -> None:
    # joy 0.2 -> 0.6 (medium); +0.1 momentum -> 0.7 (high)
    assert _energy(joy=0.2, completed=0) == "medium"
    assert _energy(joy=0.2, completed=1) == "high"
    assert _energy(joy=0.2, completed=2) == "high"
    assert _energy(joy=0.2, completed=3) == "medium"  # a busy day earns no momentum bonus


def test_scores_and_result_are_clamped() -> None:
    assert _energy(sadness=1.0, fear=1.0, anger=1.0) == "low"
    assert _energy(sadness=1.0, fear=1.0, completed=1) == "low"  # 0 + 0.1: still low
    assert _energy(joy=1.0, love=1.0, surprise=1.0, minutes=60) == "high"  # positive clamped: 1 - 0.1


# --- priority_triad ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class M:
    name: str
    energy_level: str
    priority_score: float
    status: str = "pending"


def test_one_per_level_in_high_medium_low_order() -> None:
    missions = [M("l", "low", 0.5), M("h", "high", 0.4), M("m", "medium", 0.6)]
    assert [m.name for m in priority_triad(missions)] == ["h", "m", "l"]


def test_each_level_keeps_its_highest_priority() -> None:
    missions = [
        M("h1", "high", 0.2),
        M("h2", "high", 0.9),
        M("h3", "high", 0.5),
        M("m1", "medium", 0.7),
        M("m2", "medium", 0.3),
        M("l1", "low", 0.1),
        M("l2", "low", 0.11),
    ]
    assert [m.name for m in priority_triad(missions)] == ["h2", "m1", "l2"]


def test_non_pending_missions_are_ignored() -> None:
    missions = [
        M("done", "high", 1.0, "completed"),
        M("busy", "high", 0.95, "in_progress"),
        M("later", "medium", 0.99, "deferred"),
        M("gone", "low", 0.99, "archived"),
        M("h", "high", 0.1),
        M("m", "medium", 0.1),
        M("l", "low", 0.1),
    ]
    assert [m.name for m in priority_triad(missions)] == ["h", "m", "l"]


def test_a_level_without_pending_missions_is_left_out() -> None:
    missions = [M("h", "high", 0.3), M("l", "low", 0.2), M("m-done", "medium", 0.9, "completed")]
    assert [m.name for m in priority_triad(missions)] == ["h", "l"]
    assert priority_triad([]) == []
