"""domain.memory: recency and frequency boosts and the combined rank score."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from domain.memory import (
    RankingParams,
    cosine_similarity_from_distance,
    frequency_boost,
    rank_score,
    recency_boost,
)

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
P = RankingParams()
PARAMS = [
    RankingParams(),
    RankingParams(half_life_days=1.0, recency_floor=0.0),
    RankingParams(half_life_days=30.0, recency_floor=0.9),
    RankingParams(half_life_days=7.0, recency_floor=1.0),
]


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.mark.parametrize("p", PARAMS)
def test_recency_boost_shape(p: RankingParams) -> None:
    assert recency_boost(NOW, NOW, p) == pytest.approx(1.0)
    assert recency_boost(_ago(p.half_life_days), NOW, p) == pytest.approx((1 + p.recency_floor) / 2)
    assert recency_boost(_ago(2 * p.half_life_days), NOW, p) == pytest.approx(
        p.recency_floor + (1 - p.recency_floor) / 4
    )
    assert recency_boost(_ago(50 * p.half_life_days), NOW, p) == pytest.approx(p.recency_floor, abs=1e-9)
    ages = [0, 0.001, 0.5, 1, 3, 7, 14, 30, 90, 365, 3650, 100_000]
    boosts = [recency_boost(_ago(a), NOW, p) for a in ages]
    assert all(b >= p.recency_floor for b in boosts)
    assert all(b <= 1.0 for b in boosts)
    assert all(x >= y for x, y in pairwise(boosts))


def test_recency_boost_strictly_decreasing_with_default_floor() -> None:
    boosts = [recency_boost(_ago(a), NOW, P) for a in (0, 1, 7, 14, 60)]
    assert all(x > y for x, y in pairwise(boosts))


@pytest.mark.parametrize("ahead", [timedelta(seconds=1), timedelta(days=1), timedelta(days=400)])
def test_recency_boost_future_last_seen_is_age_zero(ahead: timedelta) -> None:
    assert recency_boost(NOW + ahead, NOW, P) == pytest.approx(1.0)


def test_recency_boost_mixed_offsets() -> None:
    # The same instant written in another offset is age 0, not hours old.
    other = NOW.astimezone(ZoneInfo("Asia/Kolkata"))
    assert recency_boost(other, NOW, P) == pytest.approx(1.0)


@pytest.mark.parametrize(("count", "expected"), [(0, 1.0), (-1, 1.0), (-1000, 1.0)])
def test_frequency_boost_baseline(count: int, expected: float) -> None:
    assert frequency_boost(count, P) == expected


def test_frequency_boost_increases_then_caps() -> None:
    counts = [0, 1, 2, 5, 10, 50, 100]
    boosts = [frequency_boost(c, P) for c in counts]
    assert all(x < y for x, y in pairwise(boosts))
    assert frequency_boost(1, P) == pytest.approx(1 + 0.1 * math.log(2))
    # 1 + 0.1 * ln(1 + n) reaches 1.5 at n = e^5 - 1 ~ 147.4
    assert frequency_boost(147, P) < P.frequency_cap
    for n in (148, 1000, 10**9):
        assert frequency_boost(n, P) == P.frequency_cap


@pytest.mark.parametrize("cap", [1.0, 1.2, 3.0])
def test_frequency_boost_respects_cap(cap: float) -> None:
    p = RankingParams(frequency_cap=cap, frequency_weight=1.0)
    assert all(frequency_boost(n, p) <= cap for n in (0, 1, 10, 10**6))
    assert frequency_boost(10**6, p) == cap


def test_rank_score_is_product() -> None:
    seen = _ago(3)
    assert rank_score(0.7, seen, 4, NOW, P) == pytest.approx(
        0.7 * recency_boost(seen, NOW, P) * frequency_boost(4, P)
    )


@pytest.mark.parametrize(("age", "count"), [(0, 0), (10, 3), (400, 1000)])
def test_rank_score_similarity_orders_at_equal_age_and_count(age: float, count: int) -> None:
    assert rank_score(0.8, _ago(age), count, NOW, P) > rank_score(0.6, _ago(age), count, NOW, P)


@pytest.mark.parametrize("count", [0, 5, 1000])
def test_rank_score_recent_beats_old_at_equal_similarity(count: int) -> None:
    assert rank_score(0.6, _ago(1), count, NOW, P) > rank_score(0.6, _ago(60), count, NOW, P)


def test_rank_score_frequency_can_outrank_similarity_only_up_to_the_cap() -> None:
    seen = _ago(2)
    fresh = rank_score(0.9, seen, 0, NOW, P)
    assert rank_score(0.8, seen, 10**6, NOW, P) > fresh  # 0.8 * 1.5 > 0.9
    assert rank_score(0.59, seen, 10**9, NOW, P) < fresh  # 0.59 * 1.5 < 0.9
    for count in (1, 10, 100, 10**6):
        for sim in (0.1, 0.5, 0.89):
            ratio = rank_score(sim, seen, count, NOW, P) / rank_score(0.9, seen, 0, NOW, P)
            assert ratio <= P.frequency_cap * sim / 0.9 + 1e-12


@pytest.mark.parametrize(("distance", "similarity"), [(0.0, 1.0), (1.0, 0.0), (2.0, -1.0), (0.25, 0.75)])
def test_cosine_similarity_from_distance(distance: float, similarity: float) -> None:
    assert cosine_similarity_from_distance(distance) == pytest.approx(similarity)
