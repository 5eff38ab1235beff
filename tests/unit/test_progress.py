"""domain.progress: streaks over local calendar days (timezones, DST) and the DCI formula."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import local_day
from domain.progress import DCI_WEIGHTS, DciInputs, dci, dci_terms, dci_zone, streak_days, streak_from_days

TODAY = date(2026, 3, 10)


def _days(*offsets: int) -> set[date]:
    return {TODAY - timedelta(days=o) for o in offsets}


# --- streak_from_days ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ((), 0),
        ((0,), 1),  # today only
        ((0, 1), 2),  # yesterday + today
        ((1, 2), 2),  # nothing yet today: the streak is not broken until the day is over
        ((1,), 1),
        ((0, 2), 1),  # a gap yesterday breaks it
        ((2, 3, 4), 0),  # nothing today or yesterday
        ((0, 1, 2, 4, 5, 6, 7), 3),  # only the run ending today counts
        ((-1,), 0),  # a day in the future is not a streak
        ((-1, 0, 1), 2),  # ... and does not extend one
        (tuple(range(100)), 100),
    ],
)
def test_streak_from_days(offsets: tuple[int, ...], expected: int) -> None:
    assert streak_from_days(_days(*offsets), today=TODAY) == expected


# --- streak_days (aware timestamps, user time zone) -------------------------------------------


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_streak_days_empty() -> None:
    assert streak_days([], now=_utc(2026, 3, 10, 12), tz="UTC") == 0


def test_streak_days_counts_several_completions_on_one_day_once() -> None:
    done = [_utc(2026, 3, 10, h) for h in (1, 5, 9)] + [_utc(2026, 3, 9, 23, 59)]
    assert streak_days(done, now=_utc(2026, 3, 10, 12), tz="UTC") == 2


def test_streak_days_accepts_any_iterable() -> None:
    done = (_utc(2026, 3, d, 12) for d in (8, 9, 10))
    assert streak_days(done, now=_utc(2026, 3, 10, 13), tz="UTC") == 3


def test_streak_days_day_boundary_los_angeles_vs_utc() -> None:
    # Two UTC days (03-01 and 03-02) but both 2026-03-01 afternoon in Los Angeles (PST, UTC-8).
    done = [_utc(2026, 3, 1, 23, 30), _utc(2026, 3, 2, 0, 30)]
    now = _utc(2026, 3, 2, 1, 0)  # 2026-03-01 17:00 in LA, 2026-03-02 in UTC
    assert {local_day(d, "America/Los_Angeles") for d in done} == {date(2026, 3, 1)}
    assert streak_days(done, now=now, tz="America/Los_Angeles") == 1
    assert streak_days(done, now=now, tz="UTC") == 2


def test_streak_days_day_boundary_auckland_vs_utc() -> None:
    # Auckland is on NZDT (UTC+13) in March: 10:30Z is 23:30 on 03-01, 11:30Z is 00:30 on 03-02.
    done = [_utc(2026, 3, 1, 10, 30), _utc(2026, 3, 1, 11, 30)]
    now = _utc(2026, 3, 1, 12, 0)  # 2026-03-02 01:00 in Auckland, still 03-01 in UTC
    assert [local_day(d, "Pacific/Auckland") for d in done] == [date(2026, 3, 1), date(2026, 3, 2)]
    assert streak_days(done, now=now, tz="Pacific/Auckland") == 2
    assert streak_days(done, now=now, tz="UTC") == 1


def test_streak_days_input_offset_does_not_matter() -> None:
    # The same instants expressed in another offset give the same local days.
    tz = ZoneInfo("Asia/Tokyo")
    done_utc = [_utc(2026, 3, 8, 20), _utc(2026, 3, 9, 20)]
    done_tokyo = [d.astimezone(tz) for d in done_utc]
    now = _utc(2026, 3, 9, 21)
    for zone in ("UTC", "Asia/Tokyo", "America/New_York"):
        assert streak_days(done_utc, now=now, tz=zone) == streak_days(done_tokyo, now=now, tz=zone)


@pytest.mark.parametrize(
    ("first_day", "label"),
    [(date(2026, 3, 6), "spring-forward 2026-03-08"), (date(2026, 10, 30), "fall-back 2026-11-01")],
)
@pytest.mark.parametrize(("hour", "minute"), [(0, 30), (12, 30), (23, 30)])
def test_streak_days_across_dst(first_day: date, label: str, hour: int, minute: int) -> None:
    ny = ZoneInfo("America/New_York")
    days = [first_day + timedelta(days=i) for i in range(5)]
    done = [datetime(d.year, d.month, d.day, hour, minute, tzinfo=ny) for d in days]
    # Stored as UTC, as the database would return them.
    done = [d.astimezone(UTC) for d in done]
    last = days[-1]
    now = datetime(last.year, last.month, last.day, 23, 45, tzinfo=ny).astimezone(UTC)
    assert streak_days(done, now=now, tz="America/New_York") == 5, label
    # Next local morning: nothing yet today, streak still 5; the morning after that: broken.
    assert streak_days(done, now=now + timedelta(hours=9), tz="America/New_York") == 5, label
    assert streak_days(done, now=now + timedelta(hours=33), tz="America/New_York") == 0, label


# --- DCI ----------------------------------------------------------------------------------------


def test_dci_all_zero_inputs() -> None:
    terms = dci_terms(DciInputs())
    assert terms == {"streak": 0.0, "completion": 0.0, "engagement": 0.0, "response": 0.0}
    assert dci(DciInputs()) == 0.0


def test_dci_terms_empty_denominators_count_zero() -> None:
    # Skips with no completions, sends with no acts: 0, not a ZeroDivisionError or NaN.
    t = dci_terms(DciInputs(skipped=3, nudges_sent=0, nudges_acted=0))
    assert t["completion"] == 0.0 and t["response"] == 0.0


@pytest.mark.parametrize(
    ("inputs", "term", "expected"),
    [
        (DciInputs(streak_days=45), "streak", 1.0),
        (DciInputs(streak_days=30), "streak", 1.0),
        (DciInputs(streak_days=15), "streak", 0.5),
        (DciInputs(streak_days=-3), "streak", 0.0),
        (DciInputs(avg_session_minutes=90, missions_per_active_goal=10), "engagement", 1.0),
        (DciInputs(avg_session_minutes=45, missions_per_active_goal=5), "engagement", 1.0),
        (DciInputs(avg_session_minutes=90, missions_per_active_goal=0), "engagement", 0.0),
        (DciInputs(avg_session_minutes=-10, missions_per_active_goal=5), "engagement", 0.0),
        (DciInputs(completed=5, skipped=0), "completion", 1.0),
        (DciInputs(completed=0, skipped=5), "completion", 0.0),
        (DciInputs(nudges_sent=2, nudges_acted=5), "response", 1.0),  # over-counted acts clamp
        (DciInputs(nudges_sent=4, nudges_acted=1), "response", 0.25),
    ],
)
def test_dci_terms_clamped(inputs: DciInputs, term: str, expected: float) -> None:
    terms = dci_terms(inputs)
    assert terms[term] == pytest.approx(expected)
    assert all(0.0 <= v <= 1.0 for v in terms.values())


def test_dci_worked_example() -> None:
    x = DciInputs(
        streak_days=15,
        completed=6,
        skipped=2,
        avg_session_minutes=30,
        missions_per_active_goal=2.5,
        nudges_sent=4,
        nudges_acted=1,
    )
    # streak      15/30              = 0.5     x 0.35 = 0.175
    # completion  6/(6+2)            = 0.75    x 0.35 = 0.2625
    # engagement  (30/45)*(2.5/5)    = 1/3     x 0.20 = 0.0666667
    # response    1/4                = 0.25    x 0.10 = 0.025
    # total                                            = 0.5291667 -> rounded to 4 dp 0.5292
    assert dci_terms(x) == pytest.approx(
        {"streak": 0.5, "completion": 0.75, "engagement": 1 / 3, "response": 0.25}
    )
    assert dci(x) == 0.5292


def test_dci_weights_sum_to_one_and_max_inputs_give_one() -> None:
    assert sum(DCI_WEIGHTS.values()) == pytest.approx(1.0)
    best = DciInputs(
        streak_days=100,
        completed=10,
        avg_session_minutes=200,
        missions_per_active_goal=50,
        nudges_sent=3,
        nudges_acted=3,
    )
    assert dci(best) == 1.0


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        (DciInputs(streak_days=30), 0.35),
        (DciInputs(completed=1), 0.35),
        (DciInputs(avg_session_minutes=45, missions_per_active_goal=5), 0.2),
        (DciInputs(nudges_sent=1, nudges_acted=1), 0.1),
    ],
)
def test_dci_each_weight(inputs: DciInputs, expected: float) -> None:
    assert dci(inputs) == expected


@pytest.mark.parametrize(
    ("value", "zone"),
    [
        (0.0, "red"),
        (0.3299, "red"),
        (0.33, "yellow"),
        (0.5, "yellow"),
        (0.66, "yellow"),
        (0.6601, "green"),
        (1.0, "green"),
    ],
)
def test_dci_zone(value: float, zone: str) -> None:
    assert dci_zone(value) == zone
