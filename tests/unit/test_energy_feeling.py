"""`energy_with_feeling`: a feeling stated now counts for energy (it is the newest emotion), with
the day's activity; without one, or without the day's activity, the assessed level stands."""

from __future__ import annotations

import pytest

from domain.missions import choose_path, energy_level, energy_with_feeling

THRILLED = {"joy": 0.99}


def test_a_stated_feeling_sets_the_energy_of_a_fresh_user() -> None:
    """Nothing recorded (medium) and nothing done today: "thrilled and full of energy" is high,
    and with joy above 0.8 that is the challenge path."""
    energy = energy_with_feeling(THRILLED, assessed="medium", minutes_today=0, completed_today=0)
    assert energy == "high"
    assert choose_path(THRILLED, energy, 0)[0] == "challenge"


def test_the_stated_feeling_replaces_the_recorded_one() -> None:
    recorded_low = energy_level({"sadness": 0.9}, minutes_today=0, completed_today=0)
    assert recorded_low == "low"
    assert energy_with_feeling(THRILLED, assessed=recorded_low, minutes_today=0, completed_today=0) == "high"
    assert energy_with_feeling({"sadness": 0.8}, assessed="high", minutes_today=0, completed_today=0) == "low"


@pytest.mark.parametrize(
    ("minutes", "completed", "expected"), [(150, 0, "medium"), (0, 1, "high"), (60, 0, "high")]
)
def test_the_days_activity_still_counts(minutes: int, completed: int, expected: str) -> None:
    # joy 0.7 -> 0.85; -0.25 after 120 focused minutes -> 0.60 (medium); +0.1 momentum; -0.1 after 60
    assert (
        energy_with_feeling({"joy": 0.7}, assessed="low", minutes_today=minutes, completed_today=completed)
        == expected
    )


@pytest.mark.parametrize("stated", [None, {}])
def test_without_a_stated_feeling_the_assessment_stands(stated: dict | None) -> None:
    for assessed in ("low", "medium", "high"):
        assert energy_with_feeling(stated, assessed=assessed, minutes_today=0, completed_today=0) == assessed


def test_when_the_days_activity_is_unknown_the_fallback_stands() -> None:
    """The energy assessment fell back (medium, no basis): a stated feeling alone does not
    override it, so a failed read never pushes a tired user into a challenge."""
    assert (
        energy_with_feeling(THRILLED, assessed="medium", minutes_today=None, completed_today=None) == "medium"
    )
