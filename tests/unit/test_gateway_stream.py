"""`ModelGateway.stream_text`: what it keeps per chunk (text only, no message objects added up)
and the usage it accounts."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

from core.settings import Settings
from services.llm.gateway import ModelGateway
from tests.support.fakes import FakeUsageSink, ScriptedChatModel


def gateway(reply: str) -> tuple[ModelGateway, FakeUsageSink]:
    model = ScriptedChatModel(default_reply=reply)
    sink = FakeUsageSink()
    return ModelGateway(Settings(), {"cheap": model, "premium": model}, kind="offline", sink=sink), sink


async def stream(gw: ModelGateway) -> tuple[str, list[str]]:
    tokens: list[str] = []
    reply, _ = await gw.stream_text([HumanMessage("hi")], site="t", user_id=None, on_token=tokens.append)
    return reply, tokens


async def test_reply_is_the_streamed_tokens_and_usage_is_accounted_once() -> None:
    gw, sink = gateway("One small step, then rest. " * 20)

    reply, tokens = await stream(gw)

    assert reply == "One small step, then rest. " * 20
    assert len(tokens) > 50 and "".join(tokens) == reply
    (record,) = sink.records
    assert record.usage.calls == 1 and record.usage.output_tokens > 0 and record.usage.input_tokens > 0


async def test_chunk_messages_are_not_added_up_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding `AIMessageChunk`s re-merges the whole message on every chunk (quadratic in the
    reply); the gateway only appends text, so the number of additions does not grow with it."""
    added = 0
    original = AIMessageChunk.__add__

    def counting_add(self: AIMessageChunk, other: object) -> object:
        nonlocal added
        added += 1
        return original(self, other)  # type: ignore[arg-type]

    monkeypatch.setattr(AIMessageChunk, "__add__", counting_add)
    counts = []
    for words in (10, 200):
        added = 0
        _reply, tokens = await stream(gateway("word " * words)[0])
        assert len(tokens) >= words
        counts.append(added)

    assert counts[0] == counts[1] <= 1  # langchain-core merges the chunks once, at the end
