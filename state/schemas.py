"""Pydantic models shared by graphs, services and the API: structured LLM output and the small
value objects that travel in graph state. Nothing here does I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EMOTIONS: tuple[str, ...] = ("joy", "love", "surprise", "sadness", "anger", "fear", "neutral")
Tier = Literal["personal", "project", "task"]
TIERS: tuple[Tier, ...] = ("personal", "project", "task")


class Emotion(BaseModel):
    """Scores over the seven labels; `dominant` is the highest (neutral when there is no signal)."""

    model_config = ConfigDict(frozen=True)

    dominant: str = "neutral"
    scores: dict[str, float] = Field(default_factory=lambda: {"neutral": 1.0})

    @classmethod
    def from_scores(cls, scores: dict[str, float]) -> Emotion:
        clean = {k: round(min(1.0, max(0.0, float(scores.get(k, 0.0)))), 4) for k in EMOTIONS}
        if not any(clean.values()):
            return cls()
        return cls(dominant=max(EMOTIONS, key=lambda k: clean[k]), scores=clean)

    def score(self, label: str) -> float:
        return self.scores.get(label, 0.0)


class EmotionScores(BaseModel):
    """LLM-facing emotion scores, each in [0, 1]."""

    joy: float = Field(0.0, ge=0, le=1)
    love: float = Field(0.0, ge=0, le=1)
    surprise: float = Field(0.0, ge=0, le=1)
    sadness: float = Field(0.0, ge=0, le=1)
    anger: float = Field(0.0, ge=0, le=1)
    fear: float = Field(0.0, ge=0, le=1)
    neutral: float = Field(0.0, ge=0, le=1)


class TurnAnalysis(BaseModel):
    """One structured call per chat turn: how the user feels, and whether they told Eliza
    something durable about themselves (batched, per the seed's cost pattern)."""

    emotion: EmotionScores = Field(description="Emotion scores of the user's message, 0-1 each")
    durable_fact: str | None = Field(
        None,
        description=(
            "A lasting fact, preference or stressor the user stated about themselves, "
            "rephrased in the third person ('The user ...'); null when there is none"
        ),
    )
    fact_kind: Literal["fact", "preference", "stressor"] | None = None


class MemoryHit(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    tier: Tier
    content: str
    score: float
    similarity: float = 0.0


class Progress(BaseModel):
    """The last `window_days` of a user's progress, with the DCI and its four terms."""

    model_config = ConfigDict(frozen=True)

    window_days: int = 7
    completed: int = 0
    skipped: int = 0
    streak_days: int = 0
    dci: float = 0.0
    zone: Literal["red", "yellow", "green"] = "red"
    terms: dict[str, float] = Field(default_factory=dict)


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            calls=self.calls + other.calls,
        )
