"""Offline answer for adaptive_mission's challenge path: a stretching mission toward the goal
named on the prompt's `Goal: ...` line (high energy, 30-90 minutes)."""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage

from prompts.adaptive_mission import goal_from_prompt, template_challenge
from services.llm.offline import register_answer
from state.adaptive_mission import ChallengeDraft


@register_answer(ChallengeDraft)
def challenge_draft(messages: list[BaseMessage]) -> ChallengeDraft:
    title = next(
        (t for m in messages if isinstance(m, HumanMessage) and (t := goal_from_prompt(m.text))),
        None,
    )
    return template_challenge(title)
