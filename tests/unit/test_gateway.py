"""`ModelGateway`: what streaming keeps per chunk (text only, no message objects added up), and
where usage goes (the gateway's per-call ledger, or nowhere for per-turn callers)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from pydantic import BaseModel

from core.errors import ModelOutputInvalid
from core.settings import Settings
from services.llm.gateway import ModelGateway
from services.usage import PER_TURN
from state.schemas import TurnAnalysis
from tests.support.fakes import FakeUsageSink, ScriptedChatModel, analysis


def gateway(
    reply: str = "Fine.", model: ScriptedChatModel | None = None
) -> tuple[ModelGateway, FakeUsageSink]:
    model = model or ScriptedChatModel(default_reply=reply)
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
        return original(self, other)

    monkeypatch.setattr(AIMessageChunk, "__add__", counting_add)
    counts = []
    for words in (10, 200):
        added = 0
        _reply, tokens = await stream(gateway("word " * words)[0])
        assert len(tokens) >= words
        counts.append(added)

    assert counts[0] == counts[1] <= 1  # langchain-core merges the chunks once, at the end


async def test_per_turn_calls_write_no_per_call_rows_but_return_their_usage() -> None:
    gw, sink = gateway(model=ScriptedChatModel(default_reply="Okay.").always_analyse(analysis(joy=0.6)))

    found, u1 = await gw.structured(
        TurnAnalysis, [HumanMessage("hi")], site="chat.x", user_id="u", sink=PER_TURN
    )
    reply, u2 = await gw.stream_text([HumanMessage("hi")], site="chat.y", user_id="u", sink=PER_TURN)

    assert found.emotion.joy == 0.6 and reply == "Okay."
    assert sink.records == []
    assert u1.calls == u2.calls == 1 and u1.input_tokens > 0 and u2.output_tokens > 0
    # Without the per-turn sink, each call is a ledger row.
    await gw.stream_text([HumanMessage("hi")], site="other.z", user_id="u")
    assert [r.site for r in sink.records] == ["other.z"]


class OffSchema(BaseModel):
    emotion: dict[str, float] = {"sadness": 7.0}  # scores must be <= 1


async def test_usage_of_output_that_stayed_invalid_is_recorded_even_per_turn() -> None:
    """The caller never sees the usage of a call that raised, so the gateway's ledger keeps it."""
    gw, sink = gateway(model=ScriptedChatModel().always_analyse(OffSchema()))

    with pytest.raises(ModelOutputInvalid):
        await gw.structured(TurnAnalysis, [HumanMessage("hi")], site="chat.x", user_id="u", sink=PER_TURN)

    (record,) = sink.records
    assert record.site == "chat.x" and record.usage.calls == 3  # 1 + LLM_VALIDATION_RETRIES
