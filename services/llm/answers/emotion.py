"""Offline answer for plain emotion scoring (goal descriptions, a stated feeling)."""

from __future__ import annotations

from langchain_core.messages import BaseMessage

from services.llm.lexicon import score_emotions
from services.llm.offline import last_human_text, register_answer
from state.schemas import EmotionScores


@register_answer(EmotionScores)
def emotion_scores(messages: list[BaseMessage]) -> EmotionScores:
    return EmotionScores(**score_emotions(last_human_text(messages)))
