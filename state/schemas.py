"""Values shared by workflows, services and the API: the emotion scores (what three workflows ask
the model for), a recalled memory, progress with its DCI, and model usage. Nothing here does I/O.
Chat checkpoints hold these models: a class moved out of this module would no longer load from
an existing thread (the checkpointer's allow-list names each class by module)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EMOTIONS: tuple[str, ...] = ("joy", "love", "surprise", "sadness", "anger", "fear", "neutral")
Tier = Literal["personal", "project", "task"]
TIERS: tuple[Tier, ...] = ("personal", "project", "task")


class Emotion(BaseModel):
    """Scores over the seven labels; `dominant` is the highest (neutral when there is no signal)."""

    model_config = ConfigDict(frozen=True)

    dominant: str = "neutral"  # the highest-scoring label ("neutral" when nothing scores)
    # label -> score in [0, 1], rounded to 4 places
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

    # The seven labels of DOMAIN.md. (A model's docstring reaches the model; comments do not.)
    joy: float = Field(0.0, ge=0, le=1)  # > 0.8 with high energy: a challenge mission
    love: float = Field(0.0, ge=0, le=1)  # warmth towards someone or something
    surprise: float = Field(0.0, ge=0, le=1)  # the unexpected, good or bad
    sadness: float = Field(0.0, ge=0, le=1)  # > 0.7: a self-care mission
    anger: float = Field(0.0, ge=0, le=1)  # frustration
    fear: float = Field(0.0, ge=0, le=1)  # worry, anxiety
    neutral: float = Field(0.0, ge=0, le=1)  # plain factual text


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
    # What kind of durable fact it is (None without one).
    fact_kind: Literal["fact", "preference", "stressor"] | None = None


class MemoryHit(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # memories.id
    tier: Tier  # personal, project or task
    content: str  # the memory's text
    score: float  # similarity x recency boost x frequency boost (domain/memory.py)
    similarity: float = 0.0  # cosine similarity to the query


class Progress(BaseModel):
    """The last `window_days` of a user's progress, with the DCI and its four terms."""

    model_config = ConfigDict(frozen=True)

    window_days: int = 7  # the DCI window (DCI_WINDOW_DAYS)
    completed: int = 0  # missions completed in the window
    skipped: int = 0  # missions skipped in the window
    streak_days: int = 0  # consecutive local days with a completion
    dci: float = 0.0  # Daily Consistency Index, 0-1
    zone: Literal["red", "yellow", "green"] = "red"  # < 0.33 red, 0.33-0.66 yellow, > 0.66 green
    terms: dict[str, float] = Field(default_factory=dict)  # the DCI's four weighted terms, by name


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0  # prompt tokens
    output_tokens: int = 0  # completion tokens
    cost_usd: float = 0.0  # priced with MODEL_PRICES
    calls: int = 0  # model calls counted

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            calls=self.calls + other.calls,
        )
