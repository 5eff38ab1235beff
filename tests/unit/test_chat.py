"""The chat graph's logic (seed Pattern 1), run for real by LangGraph over a scripted model and
in-memory services: fan-out/fan-in, fallbacks and `degraded`, per-turn resets, stream events,
memory writes and their idempotency, and where model errors are retried or fail the turn.
No Postgres, no network."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Overwrite

from graphs.chat import build
from graphs.registry import Graph
from nodes.context import Context
from services.container import CHECKPOINT_TYPES
from state.schemas import TIERS, Emotion, Progress, Usage
from tests.support.fakes import (
    FakeServices,
    ScriptedChatModel,
    analysis,
    bad_request_error,
    connection_error,
    fake_services,
    hit,
    rate_limit_error,
)

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
BRANCHES = ("detect_emotion", "retrieve_memories", "load_progress")
NODES = (*BRANCHES, "compose_reply", "remember_exchange")
REPLY = "That sounds hard. Maybe one tiny step, or rest. Both count."
SISTER = "The user's sister is called Maya."
PROGRESS = Progress(completed=3, skipped=1, streak_days=2, dci=0.62, zone="yellow")


class Turn:
    """What one run of the graph produced: the last `values` chunk and the `custom` events."""

    def __init__(self, out: dict[str, Any], events: list[dict[str, Any]], seconds: float) -> None:
        self.out = out
        self.events = events
        self.seconds = seconds

    @property
    def steps(self) -> list[dict[str, Any]]:
        """Finished steps (`ok` or `degraded`); `running` ones are in `started`."""
        return [e for e in self.events if e.get("type") == "step" and e["status"] != "running"]

    @property
    def started(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "step" and e["status"] == "running"]

    @property
    def tokens(self) -> str:
        return "".join(e["content"] for e in self.events if e.get("type") == "token")


def make_graph(svc: FakeServices) -> Graph:
    # The production serde (strict allow-list of state types), over an in-memory checkpointer.
    saver = InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES))
    return build(svc.settings).compile(checkpointer=saver)


def context(svc: FakeServices, thread_id: str, user_id: uuid.UUID | None = None) -> Context[FakeServices]:
    return Context(
        user_id=user_id or uuid.uuid4(),
        thread_id=thread_id,
        timezone="Europe/Paris",
        now=NOW,
        services=svc,
    )


async def run_turn(
    graph: Graph,
    svc: FakeServices,
    text: str,
    *,
    thread_id: str | None = None,
    ctx: Context | None = None,
) -> Turn:
    """One turn as api/turns.run_turn runs it: per-turn resets, custom + values streaming."""
    thread_id = thread_id or (ctx.thread_id if ctx else str(uuid.uuid4()))
    ctx = ctx or context(svc, thread_id)
    inputs = {
        "messages": [HumanMessage(text, id=str(uuid.uuid4()))],
        "usage": Overwrite(Usage()),
        "degraded": Overwrite([]),
    }
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}, "recursion_limit": 25}
    out: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    chunk: Any  # (mode, chunk) pairs: the stream modes are a list
    async for mode, chunk in graph.astream(inputs, config, context=ctx, stream_mode=["custom", "values"]):
        if mode == "values":
            out = chunk
        else:
            events.append(chunk)
    return Turn(out, events, time.perf_counter() - t0)


async def full_state(graph: Graph, thread_id: str) -> dict[str, Any]:
    return (await graph.aget_state({"configurable": {"thread_id": thread_id}})).values


@pytest.fixture
def svc() -> FakeServices:
    model = ScriptedChatModel(default_reply=REPLY).always_analyse(analysis(sadness=0.8, fear=0.3))
    return fake_services(
        model=model,
        hits={"personal": [hit(SISTER)], "task": [hit("User said: exams soon", "task")]},
        progress=PROGRESS,
    )


# --- 1. happy path --------------------------------------------------------------------------------


async def test_happy_path_composes_from_all_three_branches(svc: FakeServices) -> None:
    graph = make_graph(svc)
    ctx = context(svc, "t-happy")
    turn = await run_turn(graph, svc, "I'm so anxious about my exams", ctx=ctx)
    out = turn.out

    assert out["reply"] == REPLY
    assert out["emotion"].dominant == "sadness"
    assert out["emotion"] == Emotion.from_scores({"sadness": 0.8, "fear": 0.3})
    assert out["memories"] == svc.memory.hits
    assert out["progress"] == PROGRESS
    assert out["degraded"] == []

    # Each branch was asked about this user, this message, this clock.
    (retrieve,) = svc.memory.calls_of("retrieve")
    assert retrieve.args["user_id"] == ctx.user_id
    assert retrieve.args["query"] == "I'm so anxious about my exams"
    assert retrieve.args["now"] == NOW
    (recent,) = svc.progress.calls
    assert recent.args == {
        "user_id": ctx.user_id,
        "tz": "Europe/Paris",
        "now": NOW,
    }

    # Exactly two model calls: one analysis, one streamed reply. Their usage is added up in
    # state and recorded once, by the write-back: no per-call ledger rows for chat.
    assert [c.kind for c in svc.model.calls] == ["structured", "reply"]
    assert svc.usage.records == []
    assert out["usage"].calls == 2
    assert out["usage"].input_tokens > 0 and out["usage"].output_tokens > 0
    (record,) = svc.writeback.turns
    assert record.usage == out["usage"]
    assert record.model == "gpt-4o-mini"

    # compose_reply saw what the branches gathered.
    prompt = svc.model.calls_of("reply")[0].context
    assert prompt["emotion"]["dominant"] == "sadness"
    assert {m["content"] for m in prompt["memories"]} == {SISTER, "User said: exams soon"}
    assert prompt["progress"]["completed"] == 3 and prompt["progress"]["streak_days"] == 2

    # The exchange was recorded, keyed by the user's message, and the AI message is in the thread.
    assert record.thread_id == "t-happy"
    assert record.user_id == ctx.user_id
    assert [(role, text) for _, role, text in record.messages] == [
        ("user", "I'm so anxious about my exams"),
        ("assistant", REPLY),
    ]
    messages = (await full_state(graph, "t-happy"))["messages"]
    assert isinstance(messages[-1], AIMessage) and messages[-1].text == REPLY
    assert [mid for mid, _, _ in record.messages] == [messages[0].id, messages[-1].id]
    assert record.turn_key == f"chat:{messages[0].id}"
    assert record.now == NOW
    # The recalled memories' access stats move in the write-back, not at retrieval.
    assert record.recalled == [uuid.UUID(h.id) for t in TIERS for h in svc.memory.hits[t]]
    assert retrieve.args["touch"] is False


# --- 2. the three branches run concurrently -----------------------------------------------------


async def test_gathering_branches_run_concurrently() -> None:
    svc = fake_services(branch_timeout_s=2.0)  # generous: only parallelism is under test
    for stall in (
        lambda: svc.model.stall("structured", 0.2),
        lambda: svc.memory.stall(0.2),
        lambda: svc.progress.stall(0.2),
    ):
        stall()
    graph = make_graph(svc)

    turn = await run_turn(graph, svc, "hello")

    assert turn.out["degraded"] == []
    assert turn.out["reply"]
    assert turn.seconds < 0.45, f"three 0.2 s branches took {turn.seconds:.2f} s: not parallel"
    spans = [
        (svc.model.calls_of("structured")[0].started, svc.model.calls_of("structured")[0].ended),
        (svc.memory.calls_of("retrieve")[0].started, svc.memory.calls_of("retrieve")[0].ended),
        (svc.progress.calls[0].started, svc.progress.calls[0].ended),
    ]
    assert all(end is not None for _, end in spans)
    assert max(s for s, _ in spans) < min(e for _, e in spans if e is not None), (
        "every branch must start before any finishes"
    )


# --- 3. a failing or slow branch degrades, it does not fail the turn ---------------------------


def _break(svc: FakeServices, branch: str, mode: str) -> None:
    if mode == "error":
        err = RuntimeError(f"{branch} is down")
        {
            "detect_emotion": lambda: svc.model.fail("structured", err),
            "retrieve_memories": lambda: svc.memory.fail(err),
            "load_progress": lambda: svc.progress.fail(err),
        }[branch]()
    else:  # longer than branch_timeout_s (0.3 s)
        {
            "detect_emotion": lambda: svc.model.stall("structured", 2.0),
            "retrieve_memories": lambda: svc.memory.stall(2.0),
            "load_progress": lambda: svc.progress.stall(2.0),
        }[branch]()


FALLBACKS: dict[str, tuple[str, Any]] = {
    "detect_emotion": ("emotion", Emotion()),
    "retrieve_memories": ("memories", {t: [] for t in TIERS}),
    "load_progress": ("progress", Progress()),
}


@pytest.mark.parametrize("mode", ["error", "timeout"])
@pytest.mark.parametrize("branch", BRANCHES)
async def test_failed_branch_falls_back_and_turn_still_answers(
    svc: FakeServices, branch: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="delight.graph")
    _break(svc, branch, mode)
    graph = make_graph(svc)

    turn = await run_turn(graph, svc, "I'm so anxious about my exams")
    out = turn.out

    key, fallback = FALLBACKS[branch]
    assert out[key] == fallback
    assert out["degraded"] == [branch]
    # The other branches' values are intact.
    for other, (other_key, other_fallback) in FALLBACKS.items():
        if other != branch:
            assert out[other_key] != other_fallback
    assert out["reply"] == REPLY
    assert len(svc.writeback.turns) == 1
    assert svc.writeback.turns[0].usage == out["usage"]
    assert out["usage"].calls == (1 if branch == "detect_emotion" else 2)
    # compose_reply ran once (not once per route into it), over the fallback value.
    (reply_call,) = svc.model.calls_of("reply")
    prompt = reply_call.context
    assert {
        "detect_emotion": prompt["emotion"] == Emotion().model_dump(),
        "retrieve_memories": prompt["memories"] == [],
        "load_progress": prompt["progress"]["completed"] == 0,
    }[branch]
    statuses = [e["status"] for e in turn.events if e.get("type") == "step" and e["node"] == branch]
    assert statuses == ["running", "degraded"]
    if mode == "timeout":  # cut off near branch_timeout_s, not after the fake's 2 s stall
        assert turn.seconds < 1.5

    degraded = [
        r for r in caplog.records if r.name == "delight.graph" and getattr(r, "outcome", None) == "degraded"
    ]
    assert len(degraded) == 1
    record: Any = degraded[0]
    assert record.node == branch
    expected = f"{branch} is down" if mode == "error" else "NodeTimeoutError"
    assert expected in record.reason
    # The node's own line comes first (its label for a cancelled attempt is not pinned here).
    failed: Any = next(r for r in caplog.records if getattr(r, "msg", "") == "node failed")
    assert failed.node == branch
    assert failed.outcome != "ok"
    if mode == "error":
        assert failed.outcome == "error" and f"{branch} is down" in failed.error


@pytest.mark.parametrize(
    "broken",
    [
        {"retrieve_memories": "error", "load_progress": "timeout"},
        {"detect_emotion": "timeout", "retrieve_memories": "timeout", "load_progress": "error"},
    ],
    ids=["two", "all-three"],
)
async def test_several_failed_branches_are_all_named(svc: FakeServices, broken: dict[str, str]) -> None:
    for branch, mode in broken.items():
        _break(svc, branch, mode)
    graph = make_graph(svc)

    turn = await run_turn(graph, svc, "hello")

    assert sorted(turn.out["degraded"]) == sorted(broken)
    for branch, (key, fallback) in FALLBACKS.items():
        assert (turn.out[key] == fallback) == (branch in broken)
    assert turn.out["reply"] == REPLY
    assert len(svc.model.calls_of("reply")) == 1
    assert len(svc.writeback.turns) == 1
    assert sorted(s["node"] for s in turn.steps) == sorted(NODES)


# --- 4. per-turn values reset on every turn ----------------------------------------------------


async def test_second_turn_resets_usage_and_accumulates_messages(svc: FakeServices) -> None:
    graph = make_graph(svc)
    user = uuid.uuid4()

    first = await run_turn(graph, svc, "hi", ctx=context(svc, "t-two", user))
    second = await run_turn(graph, svc, "again", ctx=context(svc, "t-two", user))

    assert first.out["usage"].calls == 2
    assert second.out["usage"].calls == 2  # not 4: the input's Overwrite(Usage()) resets it
    assert [t.usage for t in svc.writeback.turns] == [first.out["usage"], second.out["usage"]]
    messages = (await full_state(graph, "t-two"))["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
    ]
    assert [m.text for m in messages[::2]] == ["hi", "again"]
    # The second reply saw the first exchange as history.
    assert [m.text for m in svc.model.calls_of("reply")[1].messages[1:]] == ["hi", REPLY, "again"]


async def test_degraded_does_not_carry_over_to_the_next_turn(svc: FakeServices) -> None:
    svc.memory.fail(RuntimeError("memory down"), times=1)  # only the first turn's retrieve
    graph = make_graph(svc)
    user = uuid.uuid4()

    first = await run_turn(graph, svc, "hi", ctx=context(svc, "t-deg", user))
    second = await run_turn(graph, svc, "again", ctx=context(svc, "t-deg", user))

    assert first.out["degraded"] == ["retrieve_memories"]
    assert second.out["degraded"] == []
    assert second.out["memories"] == svc.memory.hits
    assert second.out["usage"].calls == 2


async def test_thread_after_a_degraded_turn_has_both_exchanges(svc: FakeServices) -> None:
    svc.memory.fail(RuntimeError("memory down"), times=1)
    graph = make_graph(svc)
    user = uuid.uuid4()

    await run_turn(graph, svc, "hi", ctx=context(svc, "t-deg2", user))
    await run_turn(graph, svc, "again", ctx=context(svc, "t-deg2", user))

    assert len((await full_state(graph, "t-deg2"))["messages"]) == 4
    assert len(svc.writeback.turns) == 2


# --- 5. step and token events ------------------------------------------------------------------


async def test_each_node_emits_running_then_ok_and_tokens_make_the_reply(svc: FakeServices) -> None:
    graph = make_graph(svc)

    turn = await run_turn(graph, svc, "hello there")

    steps = turn.steps
    assert sorted(s["node"] for s in steps) == sorted(NODES)
    assert all(s["status"] == "ok" and s["ms"] >= 0 for s in steps)
    # Each node announced itself once as it started, before it finished.
    assert sorted(s["node"] for s in turn.started) == sorted(NODES)
    assert all(s["ms"] is None for s in turn.started)
    for start in turn.started:
        done = next(s for s in steps if s["node"] == start["node"])
        assert turn.events.index(start) < turn.events.index(done)
    order = [s["node"] for s in steps]
    assert all(order.index("compose_reply") > order.index(b) for b in BRANCHES)
    assert order[-2:] == ["compose_reply", "remember_exchange"]

    tokens = [e for e in turn.events if e["type"] == "token"]
    assert len(tokens) > 1  # streamed, not one blob
    assert turn.tokens == turn.out["reply"] == REPLY
    # Tokens arrive while compose_reply runs: after the branches, before its step event.
    first_token = turn.events.index(tokens[0])
    compose_step = turn.events.index(next(s for s in steps if s["node"] == "compose_reply"))
    assert all(turn.events.index(s) < first_token for s in steps if s["node"] in BRANCHES)
    assert turn.events.index(tokens[-1]) < compose_step
    compose_start = turn.events.index(next(s for s in turn.started if s["node"] == "compose_reply"))
    assert compose_start < first_token


async def test_degraded_branch_emits_a_degraded_step_and_the_rest_still_run(
    svc: FakeServices,
) -> None:
    _break(svc, "load_progress", "error")
    graph = make_graph(svc)

    turn = await run_turn(graph, svc, "hello there")

    status = {s["node"]: s["status"] for s in turn.steps}
    assert len(turn.steps) == len(NODES)
    assert status == {**dict.fromkeys(NODES, "ok"), "load_progress": "degraded"}
    assert turn.tokens == turn.out["reply"] == REPLY


# --- 6. remember_exchange: task memory, personal memory, idempotent ids ------------------------


def _ids(human_id: str) -> tuple[str, str]:
    return (
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"exchange:{human_id}")),
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"fact:{human_id}")),
    )


async def test_durable_fact_writes_personal_memory_too() -> None:
    model = ScriptedChatModel(default_reply=REPLY).answer_analysis(
        analysis(love=0.7, durable_fact=SISTER, fact_kind="fact")
    )
    svc = fake_services(model=model)
    graph = make_graph(svc)
    ctx = context(svc, "t-fact")

    await run_turn(graph, svc, "My sister Maya visited", ctx=ctx)

    state = await full_state(graph, "t-fact")
    human = state["messages"][0]
    task_id, fact_id = _ids(human.id)
    (turn,) = svc.writeback.turns
    assert [(m.tier, str(m.id)) for m in turn.memories] == [("task", task_id), ("personal", fact_id)]
    task, personal = turn.memories
    assert task.content == f"User said: My sister Maya visited\nEliza replied: {REPLY}"
    assert task.metadata == {
        "thread_id": "t-fact",
        "emotion": "love",
        "emotion_scores": state["emotion"].scores,
        "emotion_at": NOW.isoformat(),
        "tags": ["chat"],
    }
    assert personal.content == SISTER
    assert personal.metadata == {"kind": "fact", "source": "chat", "thread_id": "t-fact"}
    assert turn.user_id == ctx.user_id and turn.now == NOW


async def test_without_durable_fact_only_the_task_memory(svc: FakeServices) -> None:
    graph = make_graph(svc)

    await run_turn(graph, svc, "just a normal day", thread_id="t-nofact")

    (turn,) = svc.writeback.turns
    assert [m.tier for m in turn.memories] == ["task"]
    human = (await full_state(graph, "t-nofact"))["messages"][0]
    assert str(turn.memories[0].id) == _ids(human.id)[0]


async def test_rerunning_remember_exchange_rewrites_the_same_ids() -> None:
    model = ScriptedChatModel(default_reply=REPLY).always_analyse(
        analysis(joy=0.9, durable_fact="The user loves climbing.", fact_kind="preference")
    )
    svc = fake_services(model=model)
    graph = make_graph(svc)
    ctx = context(svc, "t-idem")
    await run_turn(graph, svc, "I love climbing", ctx=ctx)
    (first,) = svc.writeback.turns
    assert len(first.memories) == 2

    # Resume from the checkpoint taken just before remember_exchange (as a retried or resumed
    # run would): the node runs again over the same messages, with the same keys.
    config: RunnableConfig = {"configurable": {"thread_id": "t-idem"}}
    history = [s async for s in graph.aget_state_history(config)]
    before = next(s for s in history if s.next == ("remember_exchange",))
    await graph.ainvoke(None, before.config, context=context(svc, "t-idem", ctx.user_id))

    again = svc.writeback.turns[1]
    assert again == first  # same ids, same turn key, same usage: the store writes nothing twice
    assert len(svc.writeback.memories) == 2  # rewrites, not new memories
    assert len(svc.model.calls) == 2  # nothing before remember_exchange ran again

    # A different message gets different ids.
    await run_turn(graph, svc, "I love climbing", ctx=context(svc, "t-idem", ctx.user_id))
    assert len(svc.writeback.memories) == 4
    assert svc.writeback.turns[2].turn_key != first.turn_key


# --- 7. transient model errors are retried by the gateway --------------------------------------


@pytest.mark.parametrize("make_error", [connection_error, rate_limit_error])
async def test_transient_error_before_first_token_is_retried(svc: FakeServices, make_error: Any) -> None:
    svc.model.fail("reply", make_error(), times=2)
    graph = make_graph(svc)

    turn = await run_turn(graph, svc, "hello")

    assert turn.out["reply"] == REPLY
    assert turn.tokens == REPLY  # no duplicated or partial tokens from the failed attempts
    assert len(svc.model.calls_of("reply")) == 3  # llm_max_attempts
    assert turn.out["usage"].calls == 2  # failed attempts produced no usage
    assert turn.out["degraded"] == []
    assert len(svc.writeback.turns) == 1


async def test_transient_error_in_analysis_is_retried_not_degraded(svc: FakeServices) -> None:
    svc.model.fail("structured", rate_limit_error(), times=1)
    graph = make_graph(svc)

    turn = await run_turn(graph, svc, "hello")

    assert turn.out["degraded"] == []
    assert turn.out["emotion"].dominant == "sadness"
    assert len(svc.model.calls_of("structured")) == 2


# --- 8. compose_reply has no fallback: its failure fails the run -------------------------------


@pytest.mark.parametrize(
    ("script", "raised"),
    [
        (lambda m: m.fail("reply", bad_request_error()), openai.BadRequestError),
        (lambda m: m.fail("reply", ValueError("model broke")), ValueError),
        # Retries exhausted on a transient error.
        (lambda m: m.fail("reply", connection_error()), openai.APIConnectionError),
        # Transient, but after tokens were sent: not retried.
        (lambda m: m.break_after_first_token(connection_error()), RuntimeError),
    ],
    ids=["bad-request", "plain-exception", "transient-exhausted", "broke-mid-stream"],
)
async def test_failing_compose_reply_fails_the_run(
    svc: FakeServices, script: Any, raised: type[BaseException]
) -> None:
    script(svc.model)
    graph = make_graph(svc)

    with pytest.raises(raised):
        await run_turn(graph, svc, "hello", thread_id="t-fail")

    assert svc.writeback.turns == []
    expected_attempts = 3 if raised is openai.APIConnectionError else 1
    assert len(svc.model.calls_of("reply")) == expected_attempts
    state = await graph.aget_state({"configurable": {"thread_id": "t-fail"}})
    assert "reply" not in state.values
    assert state.next == ("compose_reply",)  # resumable from where it failed
