"""Structured LLM output of the narrative, insight and nudge workflows."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


class StoryBeat(BaseModel):
    """narrative_beat's story (premium model): 200-400 words, woven from the user's memories."""

    title: str = Field(min_length=1, max_length=120)
    text: str = Field(description="The story beat, 200-400 words")

    @field_validator("text")
    @classmethod
    def _length(cls, v: str) -> str:
        words = len(v.split())
        if not 200 <= words <= 400:
            raise ValueError(f"text must be 200-400 words, got {words}")
        return v


class BeatTeaser(BaseModel):
    """narrative_beat's in-app teaser (cheap model), written in parallel with the story."""

    teaser: str = Field(min_length=1, max_length=160)


class WeeklyPatterns(BaseModel):
    """weekly_insights step 1: what the week's task memories and stats show."""

    patterns: list[str] = Field(min_length=1, max_length=5)
    strongest_day: str | None = None
    friction: str | None = Field(None, max_length=300)


class WeeklyInsight(BaseModel):
    """weekly_insights step 2: actionable insights from the patterns and the DCI."""

    headline: str = Field(min_length=1, max_length=160)
    insights: list[str] = Field(min_length=2, max_length=4, description="Concrete, doable next-week actions")
    encouragement: str = Field(min_length=1, max_length=300)


class NudgeDraft(BaseModel):
    """personalized_nudge: everything the nudge needs from one call (seed: batch small outputs)."""

    message: str = Field(min_length=1, max_length=320, description="Warm, never shaming")
    subject: str = Field(min_length=1, max_length=80, description="Email subject / push title")
    suggested_step: str = Field(min_length=1, max_length=160, description="One tiny step to restart")
