"""Offline answers to the structured schemas of each workflow (registered on import).

Each module registers its schemas with `services.llm.offline.register_answer`; the offline
model imports this package so every schema the graphs use has an answer."""

from services.llm.answers import (  # noqa: F401
    adaptive_mission,
    emotion,
    goal_decomposition,
    narrative_beat,
    personalized_nudge,
    process_missions,
    weekly_insights,
    weekly_quests,
)
