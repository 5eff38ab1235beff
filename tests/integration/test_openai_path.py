"""The real OpenAI path: `langchain_openai.ChatOpenAI` / `OpenAIEmbeddings` over HTTP to the
FakeOpenAI server (no mocks of the client), first through `ModelGateway` and the embedder, then
through a whole app instance configured for OpenAI."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio
from httpx_sse import aconnect_sse
from langchain_core.messages import HumanMessage, SystemMessage

from core.errors import ModelOutputInvalid
from core.settings import Settings
from services.embeddings import CachedEmbeddings, build_embeddings
from services.llm.gateway import ModelGateway, build_gateway
from state.schemas import TurnAnalysis, Usage
from tests.conftest import auth
from tests.support.openai_server import FakeOpenAI

GPT_4O_MINI_USD_PER_M = (0.15, 0.60)  # input, output (core/settings.py model_prices)
SAD_ANALYSIS = {
    "emotion": {"sadness": 0.9, "neutral": 0.1},
    "durable_fact": "The user has a dog named Rex.",
    "fact_kind": "fact",
}


class ReportingOpenAI(FakeOpenAI):
    """FakeOpenAI that also keeps the `usage` it reported for each chat completion
    (plain or streamed), so tests can compare the service's accounting with the peer's."""

    def reset(self) -> None:
        self.reported: list[dict[str, int]] = []
        super().reset()

    def _completion(self, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        completion = super()._completion(body, answer)
        self.reported.append(completion["usage"])
        return completion

    def _chunks(self, body: dict[str, Any], answer: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for chunk in super()._chunks(body, answer):
            if chunk.get("usage"):
                self.reported.append(chunk["usage"])
            yield chunk


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def record(self, *, user_id: str | None, site: str, model: str, usage: Usage) -> None:
        self.records.append({"user_id": user_id, "site": site, "model": model, "usage": usage})


def uid() -> str:
    return f"oa-{uuid.uuid4().hex[:12]}"


def chat_requests(server: FakeOpenAI) -> list[dict[str, Any]]:
    return [body for body in server.requests if "messages" in body]


def tool_requests(server: FakeOpenAI) -> list[dict[str, Any]]:
    return [body for body in server.requests if body.get("tools")]


@pytest.fixture(scope="module")
def server() -> Iterator[ReportingOpenAI]:
    with ReportingOpenAI() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh(server: ReportingOpenAI) -> None:
    server.reset()


# -- gateway and embedder ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm_settings(server: FakeOpenAI, pg_url: str) -> Settings:
    return Settings(
        openai_base_url=server.base_url,
        openai_api_key="test",
        llm_backoff_initial_s=0.01,
        llm_backoff_max_s=0.05,
        llm_timeout_s=1.0,
        database_url=pg_url,
    )


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def gateway(llm_settings: Settings, sink: RecordingSink) -> ModelGateway:
    gw = build_gateway(llm_settings, sink)
    assert gw.kind == "openai"
    return gw


async def stream(gateway: ModelGateway, on_token: Callable[[str], None] | None = None) -> str:
    reply, _ = await gateway.stream_text(
        [HumanMessage("I had a rough day.")], site="test.reply", user_id=None, on_token=on_token
    )
    return reply


async def test_stream_text_streams_tokens_and_accounts_usage(
    server: ReportingOpenAI, gateway: ModelGateway, sink: RecordingSink
) -> None:
    server.reply_text = "That sounds hard. One small step is enough for today."
    tokens: list[str] = []
    user_id = str(uuid.uuid4())

    reply, usage = await gateway.stream_text(
        [SystemMessage("Be kind."), HumanMessage("I had a rough day at work.")],
        site="test.reply",
        user_id=user_id,
        on_token=tokens.append,
    )

    assert reply == server.reply_text
    assert len(tokens) > 1 and "".join(tokens) == reply
    [reported] = server.reported
    assert usage.input_tokens == reported["prompt_tokens"] > 0
    assert usage.output_tokens == reported["completion_tokens"] > 0
    in_price, out_price = GPT_4O_MINI_USD_PER_M
    expected_cost = (usage.input_tokens * in_price + usage.output_tokens * out_price) / 1e6
    assert usage.cost_usd == pytest.approx(expected_cost, abs=1e-8) and usage.cost_usd > 0
    assert usage.calls == 1
    assert sink.records == [
        {"user_id": user_id, "site": "test.reply", "model": "gpt-4o-mini", "usage": usage}
    ]
    [body] = server.requests
    assert body["model"] == "gpt-4o-mini"
    assert body["stream"] is True
    assert body["stream_options"]["include_usage"] is True


TRANSIENT: dict[str, Callable[[FakeOpenAI], None]] = {
    "429": lambda s: s.fail(429),
    "500": lambda s: s.fail(500),
    "timeout": lambda s: s.hang(3),
    "dropped": lambda s: s.drop(),
}


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
async def test_one_transient_failure_is_retried(
    server: FakeOpenAI,
    gateway: ModelGateway,
    sink: RecordingSink,
    fault: Callable[[FakeOpenAI], None],
) -> None:
    fault(server)
    started = time.monotonic()

    assert await stream(gateway) == server.reply_text

    assert len(server.requests) == 2
    assert server.requests[0] == server.requests[1]  # the same call, sent again
    assert len(sink.records) == 1  # only the call that answered is accounted
    assert time.monotonic() - started < 2.5  # a hang is cut at llm_timeout_s (1 s), not 3 s


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
    ],
)
async def test_client_errors_are_never_retried(
    server: FakeOpenAI,
    gateway: ModelGateway,
    sink: RecordingSink,
    status: int,
    error: type[openai.APIStatusError],
) -> None:
    server.fail(status, times=5)

    with pytest.raises(error) as caught:
        await stream(gateway)

    assert caught.value.status_code == status
    assert len(server.requests) == 1
    assert sink.records == []


async def test_persistent_server_error_gives_up_after_max_attempts(
    server: FakeOpenAI, gateway: ModelGateway, llm_settings: Settings, sink: RecordingSink
) -> None:
    server.fail(503, times=10)

    with pytest.raises(openai.InternalServerError):
        await stream(gateway)

    assert llm_settings.llm_max_attempts == 3
    assert len(server.requests) == 3
    assert sink.records == []


async def test_structured_parses_tool_call_arguments(
    server: ReportingOpenAI, gateway: ModelGateway, sink: RecordingSink
) -> None:
    seen: list[str] = []

    def arguments(name: str, schema: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        seen.append(name)
        return SAD_ANALYSIS

    server.tool_arguments = arguments

    analysis, usage = await gateway.structured(
        TurnAnalysis, [HumanMessage("I miss my dog Rex.")], site="test.analysis", user_id=None
    )

    assert isinstance(analysis, TurnAnalysis)
    assert analysis.emotion.sadness == 0.9 and analysis.emotion.joy == 0.0
    assert analysis.durable_fact == "The user has a dog named Rex."
    assert analysis.fact_kind == "fact"
    assert seen == ["TurnAnalysis"]  # function calling, with TurnAnalysis as the tool
    [body] = server.requests
    assert [t["function"]["name"] for t in body["tools"]] == ["TurnAnalysis"]
    assert not body.get("stream")
    [reported] = server.reported
    assert (usage.input_tokens, usage.output_tokens) == (
        reported["prompt_tokens"],
        reported["completion_tokens"],
    )
    assert usage.output_tokens > 0 and usage.cost_usd > 0
    assert sink.records == [
        {"user_id": None, "site": "test.analysis", "model": "gpt-4o-mini", "usage": usage}
    ]


async def test_off_schema_output_is_retried_with_the_error_fed_back(
    server: FakeOpenAI, gateway: ModelGateway, sink: RecordingSink
) -> None:
    answers: Iterator[dict[str, Any]] = iter(
        [{"emotion": {"sadness": 7}}, {"emotion": {"sadness": 0.8}}]
    )  # 7 > 1
    server.tool_arguments = lambda name, schema, body: next(answers)

    analysis, usage = await gateway.structured(
        TurnAnalysis, [HumanMessage("hi")], site="test.analysis", user_id=None
    )

    assert analysis.emotion.sadness == 0.8
    assert len(server.requests) == 2
    feedback = server.requests[1]["messages"][-1]["content"]
    assert "not a valid TurnAnalysis" in feedback and "less than or equal to 1" in feedback
    assert '"sadness": 7' in feedback  # the model sees what it answered
    assert usage.calls == 2 and len(sink.records) == 2  # both calls' tokens were spent


async def test_output_that_stays_off_schema_fails_clearly_and_is_accounted(
    server: FakeOpenAI, gateway: ModelGateway, sink: RecordingSink
) -> None:
    server.tool_arguments = lambda name, schema, body: {"emotion": {"sadness": 7}}

    with pytest.raises(ModelOutputInvalid, match="TurnAnalysis output stayed invalid after 3 attempts"):
        await gateway.structured(TurnAnalysis, [HumanMessage("hi")], site="test.analysis", user_id=None)

    assert len(server.requests) == 3  # 1 + LLM_VALIDATION_RETRIES
    assert [r["site"] for r in sink.records] == ["test.analysis"] * 3


async def test_embeddings_are_cached_by_content(server: FakeOpenAI, llm_settings: Settings) -> None:
    embedder = build_embeddings(llm_settings)
    assert isinstance(embedder, CachedEmbeddings)
    assert embedder.name == "openai:text-embedding-3-small"

    first = await embedder.aembed_query("I like long walks by the sea.")
    second = await embedder.aembed_query("I like long walks by the sea.")

    assert len(first) == llm_settings.embedding_dim == 256
    assert second == first
    [body] = server.requests
    assert body["model"] == "text-embedding-3-small"
    assert body["dimensions"] == 256
    assert (embedder.hits, embedder.misses) == (1, 1)

    other = await embedder.aembed_query("Something else entirely.")
    assert len(server.requests) == 2 and other != first


async def test_embeddings_retry_a_rate_limit(server: FakeOpenAI, llm_settings: Settings) -> None:
    server.fail(429)
    embedder = build_embeddings(llm_settings)

    vector = await embedder.aembed_query("retry me")

    assert len(vector) == 256
    assert len(server.requests) == 2


# -- the whole app on the OpenAI path ------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app2(server: FakeOpenAI, pg_url: str) -> AsyncIterator[Any]:
    from api.app import create_app

    settings = Settings(
        database_url=pg_url,
        openai_base_url=server.base_url,
        openai_api_key="test",
        llm_backoff_initial_s=0.01,
        branch_timeout_s=5,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture(loop_scope="session")
async def client2(app2: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app2)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
        yield c


async def usage_rows(app2: Any, subject: str) -> list[dict[str, Any]]:
    return await app2.state.services.db.fetch(
        """SELECT l.site, l.model, l.input_tokens, l.output_tokens, l.calls, l.turn_key
           FROM llm_usage l JOIN users u ON u.id = l.user_id
           WHERE u.subject = %s ORDER BY l.site""",
        (f"dev:{subject}",),  # a dev token's stored subject
    )


async def test_health_reports_the_openai_model(client2: httpx.AsyncClient) -> None:
    r = await client2.get("/health")

    assert r.status_code == 200
    body = r.json()
    assert body["model"]["kind"] == "openai"
    assert body["embedder"] == "openai:text-embedding-3-small"


async def test_chat_turn_answers_and_records_usage_once_per_turn(
    server: ReportingOpenAI, client2: httpx.AsyncClient, app2: Any
) -> None:
    server.reply_text = "I'm sorry you feel low. Want to take a short walk with Rex?"
    server.tool_arguments = lambda name, schema, body: SAD_ANALYSIS

    r = await client2.post("/api/v1/chat", json={"message": "I feel low today."}, headers=auth("openai-user"))

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reply"] == server.reply_text
    assert body["emotion"]["dominant"] == "sadness"  # the analysis call's answer was used
    assert body["degraded"] == []
    assert len(tool_requests(server)) == 1 and len(chat_requests(server)) == 2
    assert len(server.reported) == 2  # the analysis call and the reply call
    usage = body["usage"]
    assert usage["input_tokens"] == sum(u["prompt_tokens"] for u in server.reported) > 0
    assert usage["output_tokens"] == sum(u["completion_tokens"] for u in server.reported) > 0

    # One ledger row for the turn (both calls), keyed by the turn; none per call.
    [row] = await usage_rows(app2, "openai-user")
    assert (row["site"], row["model"], row["calls"]) == ("chat.turn", "gpt-4o-mini", 2)
    assert row["turn_key"].startswith("chat:")
    assert (row["input_tokens"], row["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])


async def test_chat_survives_a_rate_limit(server: FakeOpenAI, client2: httpx.AsyncClient) -> None:
    server.fail(429)

    r = await client2.post(
        "/api/v1/chat", json={"message": "Quick question about my plan."}, headers=auth(uid())
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reply"] == server.reply_text
    assert body["degraded"] == []
    first = server.requests[0]
    assert server.requests.count(first) == 2  # whichever call got the 429 was sent again


async def test_chat_degrades_when_the_analysis_keeps_failing(
    server: FakeOpenAI, client2: httpx.AsyncClient, app2: Any
) -> None:
    def broken(name: str, schema: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("analysis is down")  # the server answers 500

    server.tool_arguments = broken
    subject = uid()

    r = await client2.post("/api/v1/chat", json={"message": "I am so sad and tired."}, headers=auth(subject))

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["degraded"] == ["detect_emotion"]
    assert body["emotion"]["dominant"] == "neutral"
    assert len(tool_requests(server)) == app2.state.services.settings.llm_max_attempts
    assert body["reply"] == server.reply_text  # the turn still answers
    [row] = await usage_rows(app2, subject)
    assert (row["site"], row["calls"]) == ("chat.turn", 1)  # only the reply answered


async def test_chat_stream_sends_reply_tokens(server: FakeOpenAI, client2: httpx.AsyncClient) -> None:
    server.reply_text = "Small steps still count. What is one thing you could do now?"

    async with aconnect_sse(
        client2,
        "POST",
        "/api/v1/chat/stream",
        json={"message": "I keep putting things off."},
        headers=auth(uid()),
    ) as source:
        assert source.response.status_code == 200
        events = [(sse.event, sse.json()) async for sse in source.aiter_sse()]

    kinds = [kind for kind, _ in events]
    assert kinds[0] == "metadata" and kinds[-1] == "complete"
    tokens = [data["content"] for kind, data in events if kind == "token"]
    assert len(tokens) > 1
    complete = events[-1][1]
    assert "".join(tokens) == complete["reply"] == server.reply_text
    assert complete["degraded"] == []


async def test_chat_turn_survives_a_failing_embedder_and_its_memories_are_embedded_later(
    server: FakeOpenAI, client2: httpx.AsyncClient, app2: Any
) -> None:
    """The write-back's embedding (the exchange and the durable fact, one request) fails: the
    turn still answers, its memories are stored without a vector, and the next turn's
    write-back embeds them, so the fact is recalled afterwards."""

    def write_back_down(body: dict[str, Any]) -> int | None:
        inputs = body.get("input") or []
        return 500 if any(isinstance(t, str) and t.startswith("User said:") for t in inputs) else None

    server.embedding_status = write_back_down
    server.tool_arguments = lambda name, schema, body: {
        "emotion": {"love": 0.8},
        "durable_fact": "The user's sister is called Maya.",
        "fact_kind": "fact",
    }
    subject, db = uid(), app2.state.services.db

    async def memories() -> list[tuple[str, bool]]:
        rows = await db.fetch(
            """SELECT m.tier, m.embedding IS NOT NULL AS embedded FROM memories m
               JOIN users u ON u.id = m.user_id WHERE u.subject = %s ORDER BY m.tier""",
            (f"dev:{subject}",),  # a dev token's user
        )
        return [(r["tier"], r["embedded"]) for r in rows]

    r = await client2.post(
        "/api/v1/chat", json={"message": "My sister is called Maya."}, headers=auth(subject)
    )

    assert r.status_code == 200, r.text
    assert r.json()["reply"] == server.reply_text and r.json()["degraded"] == []
    failed = [b for b in server.requests if "input" in b and write_back_down(b)]
    assert len(failed) == app2.state.services.settings.llm_max_attempts  # transient: retried, then given up
    assert await memories() == [("personal", False), ("task", False)]
    thread = r.json()["thread_id"]

    server.embedding_status = None  # the embedder is back
    server.tool_arguments = lambda name, schema, body: {"emotion": {"neutral": 1.0}}
    r = await client2.post(
        "/api/v1/chat", json={"message": "How was your day?", "thread_id": thread}, headers=auth(subject)
    )
    assert r.status_code == 200, r.text
    assert await memories() == [("personal", True), ("task", True), ("task", True)]

    # This server's vectors are random per text: only the same text is similar, so ask with it.
    r = await client2.post(
        "/api/v1/chat",
        json={"message": "The user's sister is called Maya.", "thread_id": thread},
        headers=auth(subject),
    )
    assert "The user's sister is called Maya." in [m["content"] for m in r.json()["memories"]]
