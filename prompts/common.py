"""Prompts shared by several workflows."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

SCORE_EMOTION = """Score the emotions expressed in the user's text from 0 to 1 for each of: joy, \
love, surprise, sadness, anger, fear, neutral. Plain factual text is neutral."""


def emotion_messages(text: str) -> list[BaseMessage]:
    return [SystemMessage(SCORE_EMOTION), HumanMessage(text)]


# --- line-based briefs: `Field: value` lines the offline model can read back -----------------


def one_line(value: object) -> str:
    """Fold any whitespace (newlines included) to single spaces: one field, one line, so a
    value can never forge another field."""
    return re.sub(r"\s+", " ", str(value)).strip()


def brief(fields: Sequence[tuple[str, object]]) -> str:
    return "\n".join(f"{name}: {one_line(value)}" for name, value in fields)


def parse_brief(text: str, names: Collection[str]) -> dict[str, str]:
    """Inverse of `brief`: the known `Field: value` lines (first wins); other lines ignored."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name in names and name not in out:
            out[name] = value.strip()
    return out
