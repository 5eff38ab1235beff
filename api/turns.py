"""A chat turn for Delight's routes (/chat, /chat/stream, the companion contract): the run it is,
and the body its output answers with."""

from __future__ import annotations

import uuid
from typing import Any

from engine import RunRequest
from services.users import User
from state.schemas import TIERS, Emotion, Progress


def turn(user: User, thread_id: uuid.UUID | str | None, message: str) -> RunRequest:
    """A turn on the user's thread (NotFound if it is not theirs), or on a new one. Its events
    are the graph's custom ones: a `step` per node, the reply's `token`s."""
    return RunRequest(
        workflow="chat",
        input={"messages": [{"type": "human", "content": message}]},
        user=user.id,
        timezone=user.timezone,
        thread_id=str(thread_id) if thread_id else None,
        create_thread=thread_id is None,
        stream_mode=("custom",),
    )


def turn_body(thread_id: str, out: dict[str, Any]) -> dict[str, Any]:
    emotion = out.get("emotion") or Emotion().model_dump()
    memories = out.get("memories") or {}
    usage = out.get("usage") or {}
    return {
        "thread_id": thread_id,
        "reply": out.get("reply", ""),
        "emotion": {"dominant": emotion.get("dominant", "neutral"), "scores": emotion.get("scores", {})},
        "memories": [
            {"id": h["id"], "tier": h["tier"], "content": h["content"], "score": h["score"]}
            for tier in TIERS
            for h in memories.get(tier, [])
        ],
        "progress": out.get("progress") or Progress().model_dump(),
        "usage": {
            "input_tokens": usage.get("input_tokens", 0),
            "output_tokens": usage.get("output_tokens", 0),
            "cost_usd": usage.get("cost_usd", 0.0),
        },
        "degraded": list(out.get("degraded") or []),
    }


def turn_usage(out: dict[str, Any], model: str) -> dict[str, Any]:
    """The usage line Delight's web client logs on `complete`."""
    usage = out.get("usage") or {}
    tokens_in, tokens_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    return {
        "model": model,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        "cost_usd": usage.get("cost_usd", 0.0),
    }
