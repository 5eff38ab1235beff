"""Self-test of the fake OpenAI server, through the real langchain-openai clients."""

from __future__ import annotations

import math
from collections.abc import Iterator

import openai
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel, Field, SecretStr

from tests.support.openai_server import DEFAULT_REPLY, FakeOpenAI, example_from_schema


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh(server: FakeOpenAI) -> None:
    server.reset()


def chat(server: FakeOpenAI, **kwargs: object) -> ChatOpenAI:
    options: dict = {"model": "gpt-4o-mini", "max_retries": 0, "timeout": 2, "stream_usage": True}
    return ChatOpenAI(base_url=server.base_url, api_key="test", **{**options, **kwargs})


class Verdict(BaseModel):
    label: str
    score: float = Field(ge=0.5)
    note: str | None
    tags: list[str] = Field(default_factory=list)


async def test_ainvoke_returns_reply_and_usage(server: FakeOpenAI) -> None:
    prompt = "Hi there, how are you?"
    message = await chat(server).ainvoke(prompt)
    assert message.content == DEFAULT_REPLY
    assert message.usage_metadata is not None
    usage = {k: message.usage_metadata[k] for k in ("input_tokens", "output_tokens")}
    assert usage == {
        "input_tokens": len(prompt) // 4 + 1,
        "output_tokens": len(DEFAULT_REPLY.split()),
    }
    assert server.requests[-1]["messages"] == [{"role": "user", "content": prompt}]


async def test_astream_yields_words_then_usage(server: FakeOpenAI) -> None:
    server.reply_text = "one two three four"
    chunks = [chunk async for chunk in chat(server).astream("count")]
    assert [c.content for c in chunks if c.content] == ["one ", "two ", "three ", "four"]
    # Usage arrives once, after the text (langchain then appends an empty "last" chunk).
    with_usage = [i for i, c in enumerate(chunks) if c.usage_metadata]
    last_text = max(i for i, c in enumerate(chunks) if c.content)
    assert len(with_usage) == 1 and with_usage[0] > last_text
    full = sum(chunks[1:], chunks[0])
    assert full.content == "one two three four"
    assert full.usage_metadata is not None and full.usage_metadata["output_tokens"] == 4
    assert server.requests[-1]["stream_options"] == {"include_usage": True}


async def test_rate_limit_then_success(server: FakeOpenAI) -> None:
    server.fail(429)
    llm = chat(server)
    with pytest.raises(openai.RateLimitError) as caught:
        await llm.ainvoke("hi")
    assert caught.value.code == "rate_limit_exceeded"
    assert (await llm.ainvoke("hi")).content == DEFAULT_REPLY


async def test_client_retries_consume_faults(server: FakeOpenAI) -> None:
    server.fail(503, times=2)
    assert (await chat(server, max_retries=2).ainvoke("hi")).content == DEFAULT_REPLY
    assert len(server.requests) == 3


async def test_bad_request(server: FakeOpenAI) -> None:
    server.fail(400, body={"error": {"message": "nope", "type": "invalid_request_error"}})
    with pytest.raises(openai.BadRequestError, match="nope"):
        await chat(server).ainvoke("hi")


async def test_hang_times_out(server: FakeOpenAI) -> None:
    server.hang(5)
    with pytest.raises(openai.APITimeoutError):
        await chat(server, timeout=0.5).ainvoke("hi")
    assert (await chat(server).ainvoke("hi")).content == DEFAULT_REPLY


async def test_drop_is_a_connection_error(server: FakeOpenAI) -> None:
    server.drop(times=2)
    with pytest.raises(openai.APIConnectionError):
        await chat(server).ainvoke("hi")
    with pytest.raises(openai.APIConnectionError):
        async for _ in chat(server).astream("hi"):
            pass
    assert (await chat(server).ainvoke("hi")).content == DEFAULT_REPLY


@pytest.mark.parametrize("streaming", [False, True])
async def test_structured_output_via_function_calling(server: FakeOpenAI, streaming: bool) -> None:
    llm = chat(server, streaming=streaming).with_structured_output(
        Verdict, method="function_calling", include_raw=True
    )
    result = await llm.ainvoke("judge this")
    assert result["parsing_error"] is None
    assert result["parsed"] == Verdict(label="x", score=0.5, note=None)
    request = server.requests[-1]
    assert request["tools"][0]["function"]["name"] == "Verdict"
    assert bool(request.get("stream")) is streaming

    server.tool_arguments = lambda name, schema, body: {"label": name, "score": 0.9, "note": "ok"}
    result = await llm.ainvoke("judge this")
    assert result["parsed"] == Verdict(label="Verdict", score=0.9, note="ok")


async def test_structured_output_via_json_schema(server: FakeOpenAI) -> None:
    llm = chat(server).with_structured_output(Verdict, method="json_schema")
    assert await llm.ainvoke("judge this") == Verdict(label="x", score=0.5, note=None)


async def test_responder_hook(server: FakeOpenAI) -> None:
    server.responder = lambda body: {"content": f"echo: {body['messages'][-1]['content']}"}
    assert (await chat(server).ainvoke("ping")).content == "echo: ping"
    server.responder = lambda body: {"tool_calls": [{"name": "lookup", "arguments": {"q": "z"}}]}
    message = await chat(server).ainvoke("ping")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("lookup", {"q": "z"})]


async def test_hook_errors_surface_as_500(server: FakeOpenAI) -> None:
    def broken(body: dict) -> dict:
        raise ValueError("boom")

    server.responder = broken
    with pytest.raises(openai.InternalServerError, match="boom"):
        await chat(server, max_retries=2).ainvoke("hi")
    assert len(server.requests) == 1  # `x-should-retry: false`


async def test_embeddings_are_deterministic(server: FakeOpenAI) -> None:
    embeddings = OpenAIEmbeddings(
        openai_api_base=server.base_url,
        openai_api_key=SecretStr("test"),
        dimensions=8,
        check_embedding_ctx_length=False,
    )
    first = await embeddings.aembed_documents(["alpha", "beta"])
    again = await embeddings.aembed_documents(["alpha", "beta"])
    query = await embeddings.aembed_query("alpha")
    assert [len(v) for v in first] == [8, 8]
    assert first == again and first[0] == query and first[0] != first[1]
    assert math.isclose(sum(x * x for x in first[0]), 1.0, rel_tol=1e-5)


def test_example_from_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 3},
            "x": {"type": "number"},
            "s": {"type": "string"},
            "opt": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "skipped": {"type": "string"},
            "d": {"type": "boolean", "default": True},
            "child": {"$ref": "#/$defs/Child"},
        },
        "required": ["n", "x", "s", "opt", "child"],
        "$defs": {
            "Child": {
                "type": "object",
                "properties": {"k": {"enum": ["a", "b"]}},
                "required": ["k"],
            }
        },
    }
    assert example_from_schema(schema) == {
        "n": 3,
        "x": 0.0,
        "s": "x",
        "opt": None,
        "d": True,
        "child": {"k": "a"},
    }
