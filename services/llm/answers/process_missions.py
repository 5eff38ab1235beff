"""Offline answer for process_missions' `MissionPrep`: a deterministic first step and line of
encouragement built from the mission block of the prompt (title, minutes, energy level)."""

from __future__ import annotations

from langchain_core.messages import BaseMessage

from prompts.process_missions import find_mission
from services.llm.offline import register_answer
from state.process_missions import MissionPrep

MAX_TITLE = 120


def _short(title: str) -> str:
    title = " ".join(title.split()) or "this mission"
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1].rstrip() + "…"


@register_answer(MissionPrep)
def mission_prep(messages: list[BaseMessage]) -> MissionPrep:
    mission = find_mission(messages) or {}
    title = _short(str(mission.get("title") or ""))
    try:
        minutes = int(mission.get("estimated_minutes") or 15)
    except (TypeError, ValueError):
        minutes = 15
    starter = 2 if minutes <= 10 else 5
    if mission.get("energy_level") == "low":
        first_step = f'Take {starter} gentle minutes for "{title}": just get what you need in front of you.'
        encouragement = "Going slowly still counts, and getting started is the hardest part."
    else:
        first_step = f'Set a {starter}-minute timer and do the very first bit of "{title}".'
        encouragement = (
            f"It is only {minutes} minutes in total, and starting is the hardest part. You've got this."
        )
    return MissionPrep(first_step=first_step, encouragement=encouragement)
