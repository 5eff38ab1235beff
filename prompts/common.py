"""Prompts shared by several workflows, and the two ways user and recalled data enter a prompt:
`data_block` (JSON between tags) and `brief` (one `Field: value` line per field)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

SCORE_EMOTION = """Score the emotions expressed in the user's text from 0 to 1 for each of: joy, \
love, surprise, sadness, anger, fear, neutral. Plain factual text is neutral."""


def emotion_messages(text: str) -> list[BaseMessage]:
    return [SystemMessage(SCORE_EMOTION), HumanMessage(text)]


# --- data blocks: JSON between tags -----------------------------------------------------------


def data_block(tag: str, data: Any, *, sort_keys: bool = False) -> str:
    """`data` as JSON between `<tag>` and `</tag>`, the one way every prompt carries user and
    recalled data (memories, goals, notes). Every `<` and `>` in the JSON is a `\\u` escape
    (the JSON still parses to the same values), so nothing inside can close the block early,
    open a fake one, or read as markup to the model."""
    body = json.dumps(data, ensure_ascii=False, sort_keys=sort_keys, default=str)
    body = body.replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<{tag}>\n{body}\n</{tag}>"


def parse_data_block(text: str, tag: str) -> Any | None:
    """Inverse of `data_block`: the value of the last `tag` block in `text`, or None. A block's
    body never contains `<`, so prose that merely names the tags is never taken for a block."""
    for m in reversed(list(re.finditer(rf"<{re.escape(tag)}>\n([^<]*)\n</{re.escape(tag)}>", text))):
        try:
            return json.loads(m[1])
        except ValueError:
            continue
    return None


def parse_data_object(text: str, tag: str) -> dict[str, Any] | None:
    """`parse_data_block` for blocks that hold a JSON object."""
    value = parse_data_block(text, tag)
    return value if isinstance(value, dict) else None


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
