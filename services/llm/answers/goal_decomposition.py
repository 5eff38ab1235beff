"""Offline answers of goal_decomposition: GoalAnalysis, MilestonePlan and MissionPlan.

They read the same brief a real model gets (`prompts.goal_decomposition`: one `Field: value` per
line) and build the plan from the goal's own words. Deterministic: the same brief always gets
the same answer.

- GoalAnalysis: milestone_count grows with how much the user wrote (title + description
  words: < 12 -> 3, < 30 -> 4, < 55 -> 5, < 85 -> 6, else 7); complexity low (3),
  medium (4-5) or high (6-7); themes are the goal's first content words.
- MilestonePlan: the brief's milestone count (clamped to 3-7) of seven phases, spread evenly
  from "a clear picture" to "the finish line", each titled after the goal.
- MissionPlan: 4, 2 or 3 missions (milestone 1, 2, 3, 4, ...), energy levels rotating
  low/medium/high from a per-milestone offset (so every plan has all three, the first
  milestone alone does, and it starts with an easy one), minutes from per-level ranges
  (low 10-20, medium 25-45, high 50-90)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal

from langchain_core.messages import BaseMessage, HumanMessage

from domain.missions import Energy
from prompts.goal_decomposition import (
    DESCRIPTION,
    GOAL,
    MILESTONE,
    MILESTONE_COUNT,
    MILESTONE_NUMBER,
    THEMES,
    milestone_number,
    read_brief,
)
from services.llm.offline import last_human_text, register_answer
from state.goal_decomposition import GoalAnalysis, MilestoneDraft, MilestonePlan, MissionDraft, MissionPlan

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP = frozenset(
    "the and for with that this from into want wants would will have has had been being about "
    "some more most very just really able get got make made can could should must need needs "
    "my your our their his her its them they you me we us are was were not but also then than "
    "what when where which who how why all any each every own one two three over under again "
    "none goal goals finally start started".split()
)
_ENERGIES: tuple[Energy, ...] = ("low", "medium", "high")
_MINUTES: dict[str, tuple[int, ...]] = {
    "low": (10, 15, 20),
    "medium": (25, 30, 40, 45),
    "high": (50, 60, 75, 90),
}
_MISSIONS_PER_MILESTONE = (4, 2, 3)
# (title suffix, description) of the seven phases a plan is spread over.
_PHASES: tuple[tuple[str, str], ...] = (
    ("a clear picture", "Decide what done looks like and gather what you need to begin."),
    ("first small wins", "Start small: a few easy sessions that prove it can fit your week."),
    ("a steady routine", "Make it regular, with a rhythm you can keep on busy days too."),
    ("the core skills", "Work on the parts that matter most, one at a time."),
    ("a real test", "Try it for real, somewhere it counts, and learn from how it goes."),
    ("polish and share", "Fix what the test showed and show your progress to someone."),
    ("the finish line", "Complete the last stretch and celebrate reaching the goal."),
)
_TASKS: dict[str, tuple[str, ...]] = {
    "low": (
        "Write down why {goal} matters to you",
        "List three small questions about {goal}",
        "Tidy a space for working on {goal}",
        "Read one short piece that helps with {goal}",
    ),
    "medium": (
        "Spend a focused half hour on {goal}",
        "Practise one part of {goal}",
        "Sketch a simple plan for the next step of {goal}",
        "Review your notes on {goal}",
    ),
    "high": (
        "Do a deep-work session on {goal}",
        "Tackle the hardest part of {goal} so far",
        "Make a first full attempt at {goal}",
        "Push one step past your comfort zone with {goal}",
    ),
}


def _index(key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % n


def _brief(messages: Sequence[BaseMessage]) -> dict[str, str]:
    """The first human message that is a brief (a feedback retry appends another message)."""
    for msg in messages:
        if isinstance(msg, HumanMessage) and (brief := read_brief(msg.text)).get(GOAL):
            return brief
    return read_brief(last_human_text(messages))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _content_words(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(text):
        w = word.lower().strip("'-")
        if len(w) > 2 and w not in _STOP:
            seen.setdefault(w, None)
    return list(seen)


def _description(brief: dict[str, str]) -> str:
    value = brief.get(DESCRIPTION, "")
    return "" if value == "(none)" else value


def milestone_count_for(title: str, description: str) -> int:
    words = len(_WORD.findall(f"{title} {description}"))
    for count, below in ((3, 12), (4, 30), (5, 55), (6, 85)):
        if words < below:
            return count
    return 7


@register_answer(GoalAnalysis)
def answer_goal_analysis(messages: list[BaseMessage]) -> GoalAnalysis:
    brief = _brief(messages)
    title = brief.get(GOAL) or "your goal"
    description = _description(brief)
    count = milestone_count_for(title, description)
    complexity: Literal["low", "medium", "high"] = "low" if count == 3 else "medium" if count <= 5 else "high"
    weeks = {3: 3, 4: 6, 5: 8, 6: 12, 7: 16}[count]
    themes = [_clip(w, 40) for w in _content_words(f"{title} {description}")[:5]]
    rationale = (
        f"“{_clip(title, 120)}” reads as a {complexity} goal: {count} milestones over about "
        f"{weeks} weeks" + (f", centred on {', '.join(themes[:3])}." if themes else ".")
    )
    return GoalAnalysis(
        complexity=complexity,
        estimated_weeks=weeks,
        milestone_count=count,
        themes=themes,
        rationale=_clip(rationale, 600),
    )


def _phases(count: int) -> list[tuple[str, str]]:
    """`count` of the seven phases, spread evenly, always the first and the last."""
    last = len(_PHASES) - 1
    return [_PHASES[round(k * last / (count - 1))] for k in range(count)]


@register_answer(MilestonePlan)
def answer_milestone_plan(messages: list[BaseMessage]) -> MilestonePlan:
    brief = _brief(messages)
    title = _clip(brief.get(GOAL) or "Your goal", 120)
    try:
        count = int(brief.get(MILESTONE_COUNT, "4"))
    except ValueError:
        count = 4
    count = min(7, max(3, count))
    about = _content_words(_description(brief))[:2]
    focus = f" Keep {' and '.join(about)} in view." if about else ""
    return MilestonePlan(
        milestones=[
            MilestoneDraft(title=f"{title}: {suffix}", description=_clip(text + focus, 1000))
            for suffix, text in _phases(count)
        ]
    )


@register_answer(MissionPlan)
def answer_mission_plan(messages: list[BaseMessage]) -> MissionPlan:
    brief = _brief(messages)
    goal = brief.get(GOAL) or "your goal"
    milestone = brief.get(MILESTONE) or goal
    sequence, _ = milestone_number(brief.get(MILESTONE_NUMBER, "")) or (1, 1)
    themes = [t.strip() for t in brief.get(THEMES, "").split(",") if t.strip() and t.strip() != "(none)"]
    count = _MISSIONS_PER_MILESTONE[(sequence - 1) % len(_MISSIONS_PER_MILESTONE)]
    quoted = f"“{_clip(goal, 80)}”"
    missions = []
    for j in range(count):
        energy = _ENERGIES[(sequence - 1 + j) % len(_ENERGIES)]
        key = f"{goal}|{milestone}|{j}"
        templates = _TASKS[energy]
        focus = f" Focus: {themes[(sequence + j) % len(themes)]}." if themes else ""
        missions.append(
            MissionDraft(
                title=_clip(templates[_index(key, len(templates))].format(goal=quoted), 200),
                description=_clip(f"A step toward “{milestone}”.{focus}", 1000),
                estimated_minutes=_MINUTES[energy][_index(key[::-1], len(_MINUTES[energy]))],
                energy_level=energy,
            )
        )
    return MissionPlan(missions=missions)
