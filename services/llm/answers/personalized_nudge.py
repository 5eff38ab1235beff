"""Offline answer of personalized_nudge: NudgeDraft (write and rewrite alike).

It reads the brief a real model gets (`prompts.personalized_nudge`: `Tone:`, `Channel:`, `Goal:` lines) and
fills a per-tone template: the goal's title (when there is one and it is not itself shaming),
one tiny five-minute step, and a subject. Deterministic, and never shaming: the templates hold
no blame words and never count days."""

from __future__ import annotations

from langchain_core.messages import BaseMessage

from prompts.personalized_nudge import GOAL, TONE_GUIDE, channel_of, clip, read_brief, tone_of, usable_goal
from services.llm.offline import last_human_text, register_answer
from state.personalized_nudge import NudgeDraft

# tone -> (message, subject); {goal} is “Title” or "your goals", {step} the tiny step.
_TEMPLATES: dict[str, tuple[str, str]] = {
    "encouraging": (
        "Hey, it's Eliza! {goal} is still right here, and I believe in you. Ready for one tiny step? {step}",
        "One tiny step toward {goal}",
    ),
    "gentle": (
        "Hi, it's Eliza, with a soft hello. No rush at all: whenever it feels right, "
        "one tiny step is plenty. {step}",
        "A soft hello, whenever you're ready",
    ),
    "playful": (
        "Psst, Eliza here! {goal} asked me to say hi. Fancy a tiny side quest? {step}",
        "A tiny side quest for {goal}",
    ),
    "direct": (
        "Eliza here. One tiny step for {goal} today: {step}",
        "Five minutes for {goal}",
    ),
    "calm": (
        "Hi, it's Eliza. Take a slow breath. When you're ready, one small step is enough. {step}",
        "One calm step for {goal}",
    ),
}


@register_answer(NudgeDraft)
def answer_nudge(messages: list[BaseMessage]) -> NudgeDraft:
    brief = read_brief(last_human_text(messages))
    tone = tone_of(brief)
    message, subject = _TEMPLATES[tone if tone in TONE_GUIDE else "encouraging"]
    title = usable_goal(brief.get(GOAL), limit=50 if channel_of(brief) == "sms" else 60)
    goal = f"“{title}”" if title else "your goals"
    step = (
        f"Spend five minutes on “{title}”."
        if title
        else "Pick one small thing that matters to you and spend five minutes on it."
    )
    return NudgeDraft(
        message=clip(message.format(goal=goal, step=step), 320),
        subject=clip(subject.format(goal=goal), 80),
        suggested_step=step,
    )
