"""Offline answers for weekly_insights: patterns and insight computed from the `<week_data>` block
of the prompt (the same numbers and notes a real model is given), so they are deterministic and
follow the data."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from prompts.weekly_insights import insight_from_data, parse_week_data, patterns_from_data
from services.llm.offline import register_answer
from state.weekly_insights import WeeklyInsight, WeeklyPatterns


def _week_data(messages: list[BaseMessage]) -> dict[str, Any]:
    """The latest human message's data block (a validation-feedback message has none)."""
    for m in reversed(messages):
        if isinstance(m, HumanMessage) and (data := parse_week_data(m.text)) is not None:
            return data
    return {}


@register_answer(WeeklyPatterns)
def weekly_patterns(messages: list[BaseMessage]) -> WeeklyPatterns:
    return patterns_from_data(_week_data(messages))


@register_answer(WeeklyInsight)
def weekly_insight(messages: list[BaseMessage]) -> WeeklyInsight:
    return insight_from_data(_week_data(messages))
