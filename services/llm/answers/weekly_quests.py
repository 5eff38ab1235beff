"""Offline answer for weekly quests: built from the goals and patterns in the prompt."""

from __future__ import annotations

from langchain_core.messages import BaseMessage

from domain.missions import Energy
from prompts.weekly_quests import read_quests_data
from services.llm.offline import last_human_text, register_answer
from state.weekly_quests import QuestDraft, QuestPlan


@register_answer(QuestPlan)
def quest_plan(messages: list[BaseMessage]) -> QuestPlan:
    data = read_quests_data(last_human_text(messages))
    goals = data.get("goals") or [{"title": "your growth"}]
    minutes = int((data.get("patterns") or {}).get("avg_minutes") or 25)
    minutes = min(120, max(5, minutes))
    energies: tuple[Energy, ...] = ("medium", "low", "high")
    return QuestPlan(
        quests=[
            QuestDraft(
                title=f"Weekly quest: a focused session on {goal['title']}",
                description="One block of time, one small visible result.",
                estimated_minutes=minutes,
                energy_level=energies[i % 3],
                goal_index=i,
            )
            for i, goal in enumerate(goals[:3])
        ]
    )
