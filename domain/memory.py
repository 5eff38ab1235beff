"""Memory ranking (DOMAIN.md): similarity x recency boost x frequency boost, pure functions.

recency_boost   = floor + (1 - floor) * 0.5 ** (age_days / half_life_days)
                  (1.0 for a memory touched now, never below `floor`)
frequency_boost = min(cap, 1 + weight * ln(1 + access_count))
The constants are settings (MEMORY_RECENCY_HALF_LIFE_DAYS, MEMORY_RECENCY_FLOOR,
MEMORY_FREQUENCY_WEIGHT, MEMORY_FREQUENCY_CAP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RankingParams:
    half_life_days: float = 14.0
    recency_floor: float = 0.5
    frequency_weight: float = 0.1
    frequency_cap: float = 1.5


def recency_boost(last_seen: datetime, now: datetime, p: RankingParams) -> float:
    age_days = max(0.0, (now - last_seen).total_seconds() / 86400)
    return p.recency_floor + (1 - p.recency_floor) * float(0.5 ** (age_days / p.half_life_days))


def frequency_boost(access_count: int, p: RankingParams) -> float:
    return min(p.frequency_cap, 1 + p.frequency_weight * math.log1p(max(0, access_count)))


def rank_score(
    similarity: float, last_seen: datetime, access_count: int, now: datetime, p: RankingParams
) -> float:
    return similarity * recency_boost(last_seen, now, p) * frequency_boost(access_count, p)


def cosine_similarity_from_distance(distance: float) -> float:
    """pgvector's `<=>` is cosine distance (1 - cosine similarity)."""
    return 1.0 - distance
