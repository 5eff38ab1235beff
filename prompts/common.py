"""Prompts shared by several workflows."""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

SCORE_EMOTION = """Score the emotions expressed in the user's text from 0 to 1 for each of: joy, \
love, surprise, sadness, anger, fear, neutral. Plain factual text is neutral."""


def emotion_messages(text: str) -> list[BaseMessage]:
    return [SystemMessage(SCORE_EMOTION), HumanMessage(text)]
