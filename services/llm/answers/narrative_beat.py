"""Offline answers of narrative_beat: StoryBeat and BeatTeaser.

Both read the data block of the prompt a real model gets (`prompts.narrative_beat`) and are
deterministic: the same prompt always gets the same answer.

- StoryBeat: a 200-400 word story in paragraphs: an opening for the beat type naming the goal,
  the progress (completions, streak; never skips), up to three of the goal's memories quoted
  (newest first, each clipped to 30 words), up to two story preferences, a middle for the beat
  type (the milestone, the unlocked quests, the rough patch), a closing, then reflective
  sentences until the story has at least 210 words. Titled after the beat.
- BeatTeaser: one line of at most 160 characters naming the goal and the beat's news.
"""

from __future__ import annotations

import hashlib
from typing import Any

from langchain_core.messages import BaseMessage

from prompts.narrative_beat import read_data
from services.llm.offline import register_answer
from state.narrative_beat import BeatTeaser, StoryBeat

MIN_WORDS, MAX_WORDS = 210, 390  # inside StoryBeat's 200-400, with a margin
QUOTE_WORDS = 30

_OPENINGS: dict[str, str] = {
    "milestone": (
        "The bells ring out across the valley of “{goal}”: a milestone stands complete behind you, "
        "every one of its missions done by your own hands."
    ),
    "hidden_quest_unlock": (
        "Something hidden stirs on the road of “{goal}”. A door you never noticed swings open, and "
        "a quest that was waiting for the right traveller reveals itself to you."
    ),
    "character_moment": (
        "Every story of “{goal}” has a quiet chapter, the stretch of road where the legs feel heavy "
        "and the map blurs. This is one of those chapters, and it belongs to you too."
    ),
    "progression": (
        "The path of “{goal}” winds on, and today it carries fresh footprints: yours. Step by "
        "step, the landscape is changing around you."
    ),
}
_MIDDLES: dict[str, str] = {
    "milestone": (
        "Milestone {n}, “{milestone}”, was not won in one heroic leap but in small, stubborn "
        "sessions that added up. Pause here and look back at how far the trail has come."
    ),
    "hidden_quest_unlock": "The hidden quest {quests} is yours now.",
    "character_moment": (
        "Heroes are not the ones who never stumble; they are the ones who come back to the road. "
        "Rest is part of the journey, and one tiny step is enough to begin again."
    ),
    "progression": (
        "No trumpet sounds for steady progress, yet it is the surest magic there is: the kind "
        "that turns a distant dream into a familiar place."
    ),
}
_CLOSINGS: dict[str, str] = {
    "milestone": "Ahead, the next milestone glimmers on the horizon. Take a breath, celebrate, then go on.",
    "hidden_quest_unlock": (
        "Few travellers ever find these quests. Carry this one with you as proof of what your "
        "consistency has built."
    ),
    "character_moment": (
        "When you are ready, and not a moment before, the road will still be here, and so will Eliza."
    ),
    "progression": "Keep walking at your own pace. The next chapter is already taking shape.",
}
_TITLES: dict[str, str] = {
    "milestone": "Milestone {n}: {milestone}",
    "hidden_quest_unlock": "Hidden Quest: {quest}",
    "character_moment": "A Quiet Chapter of {goal}",
    "progression": "{goal}: The Road Goes On",
}
_REFLECTIONS: tuple[str, ...] = (
    "The path toward “{goal}” is made of small, ordinary steps, and each one you take is real.",
    "Eliza walks beside you, keeping the lantern lit while you decide where to step next.",
    "Nothing about this journey asks you to be perfect; it only asks you to return.",
    "Somewhere ahead, the next part of the map is waiting to be drawn by your own hand.",
    "Rest is part of the road too, and the story does not pause its heart when you do.",
    "Each mission you finish adds a line to a story that only you can write.",
    "The wind carries the sound of your progress further than you think.",
    "Look at your hands: they have already built more of this world than you remember.",
    "Tonight the stars over “{goal}” seem a little closer than they did before.",
    "Every chapter you live makes the next one easier to begin.",
)
_TEASERS: dict[str, str] = {
    "milestone": "Milestone {n} of “{goal}” is complete, and a new chapter opens. Come and read it.",
    "hidden_quest_unlock": "Hidden quest unlocked: {quest}! Your story of “{goal}” takes a turn.",
    "character_moment": "Even heroes rest. A gentle new chapter of “{goal}” is waiting for you.",
    "progression": "Your story of “{goal}” moves forward. The next chapter is ready.",
}


def _index(key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % n


def _clip_words(text: str, n: int) -> str:
    words = text.split()
    return " ".join(words) if len(words) <= n else " ".join(words[:n]) + "…"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _strings(value: Any, n: int) -> list[str]:
    items = value if isinstance(value, list) else []
    return [s.strip() for s in items if isinstance(s, str) and s.strip()][:n]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _facts(data: dict[str, Any]) -> dict[str, Any]:
    goal, beat = _dict(data.get("goal")), _dict(data.get("beat"))
    kind = beat["type"] if beat.get("type") in _OPENINGS else "progression"
    milestone = _dict(beat.get("milestone"))
    quests = [q for q in beat.get("unlocks") or [] if isinstance(q, dict) and q.get("title")]
    return {
        "kind": kind,
        "goal": _clip(str(goal.get("title") or "your goal"), 80),
        "n": milestone.get("sequence", 1),
        "milestone": _clip(str(milestone.get("title") or "the next stage"), 80),
        "quest": str(quests[0]["title"]) if quests else "a secret path",
        "quests": quests,
    }


def _progress_sentences(progress: dict[str, Any], goal: str) -> list[str]:
    """Only encouragement: completions and the streak when non-zero, never what was skipped."""
    out = []
    done, total = (
        int(progress.get("goal_missions_completed") or 0),
        int(progress.get("goal_missions_total") or 0),
    )
    if done:
        of = f" of {total}" if total >= done else ""
        out.append(
            f"You have completed {done}{of} missions for “{goal}” so far, each one a stone in the road."
        )
    ms_done, ms_total = (
        int(progress.get("milestones_completed") or 0),
        int(progress.get("milestones_total") or 0),
    )
    if ms_done and ms_total:
        out.append(f"{ms_done} of {ms_total} milestones now stand behind you like lit beacons.")
    if (streak := int(progress.get("streak_days") or 0)) > 1:
        out.append(f"For {streak} days in a row you have shown up, and the road remembers every one.")
    return out


@register_answer(StoryBeat)
def answer_story_beat(messages: list[BaseMessage]) -> StoryBeat:
    data = read_data(messages)
    f = _facts(data)
    kind, goal = f["kind"], f["goal"]
    progress = _dict(data.get("progress"))
    paragraphs: list[list[str]] = [[_OPENINGS[kind].format(**f), *_progress_sentences(progress, goal)]]
    if memories := _strings(data.get("memories"), 3):
        paragraphs.append(
            [
                "Along the way you left notes for yourself, and the story keeps them:",
                *(f"“{_clip_words(m, QUOTE_WORDS)}”" for m in memories),
            ]
        )
    if prefs := _strings(data.get("preferences"), 2):
        paragraphs.append(
            [
                "This tale bends toward what you told Eliza you love in a story:",
                *(f"“{_clip_words(p, QUOTE_WORDS)}”" for p in prefs),
            ]
        )
    middle = _MIDDLES[kind].format(
        **{**f, "quests": " and ".join(f"“{q['title']}”" for q in f["quests"]) or "“a secret path”"}
    )
    extra = [f"{q['title']}: {q.get('description', '')}".strip() for q in f["quests"]]
    paragraphs.append([middle, *extra, _CLOSINGS[kind]])
    reflections: list[str] = []
    start = _index(f"{kind}|{goal}", len(_REFLECTIONS))
    i = 0
    while sum(len(s.split()) for p in [*paragraphs, reflections] for s in p) < MIN_WORDS:
        reflections.append(_REFLECTIONS[(start + i) % len(_REFLECTIONS)].format(goal=goal))
        i += 1
    if reflections:
        paragraphs.insert(-1, reflections)
    text = "\n\n".join(" ".join(p) for p in paragraphs)
    words = text.split()
    if len(words) > MAX_WORDS:  # only with unusually long inputs; keep a whole, valid story
        text = " ".join(words[:MAX_WORDS]).rstrip(".…") + "."
    return StoryBeat(title=_clip(_TITLES[kind].format(**f), 120), text=text)


@register_answer(BeatTeaser)
def answer_beat_teaser(messages: list[BaseMessage]) -> BeatTeaser:
    f = _facts(read_data(messages))
    f["goal"] = _clip(f["goal"], 60)
    f["quest"] = _clip(f["quest"], 50)
    return BeatTeaser(teaser=_clip(_TEASERS[f["kind"]].format(**f), 160))
