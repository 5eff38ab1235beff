"""A scripted chat model for graph unit tests: a `BaseChatModel` of its own (the tests drive the
real `ModelGateway` over it, so retries, structured output and usage are the service's), whose
answers, failures and delays a test scripts:

- structured calls answer, in order: the next answer scripted for their schema (`script`), the
  schema's standing answer (`always`), the next generic structured answer (`answer_analysis`),
  the standing generic one (`always_analyse`), else what the service's offline model answers
  (`offline_answer`: a realistic default, through the offline model's public interface);
- free-text calls answer the next scripted reply (`answer_reply`), else `default_reply`;
- a kind of call (`structured` / `reply`) can be told to fail or stall (`fail`, `stall`), a
  stream to break after its first token (`break_after_first_token`), a call whose prompt
  matches a predicate to fail (`fail_when`, `fail_once`), and every call to take `latency`
  seconds (per schema: `delay(Schema, s)`) while counted in flight (`peak`, `max_in_flight`).

Every call is recorded (`calls`, `calls_of(kind)`, `prompts(Schema)`, `count(Schema)`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import BaseModel, PrivateAttr

from prompts.chat import parse_context_block
from services.llm.offline import parsed_as, usage_of, word_pieces

CallKind = Literal["structured", "reply"]
Answer = BaseModel | str  # a model instance, or raw text (e.g. JSON that fails the schema)
REPLY = "reply"  # the schema name of free-text calls
_SCHEMA = "scripted_schema"  # the bound kwarg that names a structured call's schema


def offline_answer(schema: type[BaseModel], messages: Sequence[BaseMessage]) -> BaseModel:
    """What the service's offline model answers this prompt with (its public interface)."""
    from services.llm.offline import OfflineChatModel

    answer = OfflineChatModel().with_structured_output(schema).invoke(list(messages))
    assert isinstance(answer, BaseModel)
    return answer


@dataclass
class Behaviour:
    """What a fake does on its next calls: queued errors are raised one per call (then it
    succeeds); `error` is raised on every call; `delay` is slept before answering (or failing)."""

    errors: list[BaseException] = field(default_factory=list)
    error: BaseException | None = None
    delay: float = 0.0

    async def act(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        if self.error is not None:
            raise self.error


@dataclass
class ModelCall:
    kind: CallKind
    schema: str  # the schema's class name, or "reply"
    messages: list[BaseMessage]
    started: float
    ended: float | None = None

    @property
    def context(self) -> dict[str, Any]:
        """The `<context>` block of a reply prompt (emotion, memories, progress), or {}."""
        for msg in self.messages:
            if isinstance(msg, SystemMessage):
                ctx = parse_context_block(msg.text)
                if ctx is not None:
                    return ctx
        return {}


@dataclass
class _Rule:
    """Fail a call of `schema` (None: any) whose prompt satisfies `when`, `times` times (None:
    always), after sleeping `after` seconds."""

    error: BaseException
    when: Callable[[list[BaseMessage]], bool]
    schema: str | None = None
    times: int | None = None
    after: float = 0.0


def first_human_text(messages: Sequence[BaseMessage]) -> str:
    return next((m.text for m in messages if isinstance(m, HumanMessage)), "")


class ScriptedChatModel(BaseChatModel):
    """See the module docstring."""

    model_name: str = "scripted"
    default_reply: str = "I hear you. One small step at a time."
    latency: float = 0.0  # every call sleeps this long (counted in flight)

    _analyses: list[Answer] = PrivateAttr(default_factory=list)
    _default_analysis: Answer | None = PrivateAttr(default=None)
    _replies: list[str] = PrivateAttr(default_factory=list)
    _queues: dict[str, list[Answer]] = PrivateAttr(default_factory=dict)
    _always: dict[str, Answer] = PrivateAttr(default_factory=dict)
    _delays: dict[str, float] = PrivateAttr(default_factory=dict)
    _rules: list[_Rule] = PrivateAttr(default_factory=list)
    _behaviour: dict[str, Behaviour] = PrivateAttr(default_factory=dict)
    _mid_stream_errors: list[BaseException] = PrivateAttr(default_factory=list)
    _schemas: dict[str, type[BaseModel]] = PrivateAttr(default_factory=dict)
    _calls: list[ModelCall] = PrivateAttr(default_factory=list)
    _in_flight: dict[str, int] = PrivateAttr(default_factory=dict)
    _peak: dict[str, int] = PrivateAttr(default_factory=dict)
    _total_in_flight: int = PrivateAttr(default=0)
    _max_in_flight: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    # --- scripting ----------------------------------------------------------------------------

    def answer_analysis(self, *answers: Answer) -> ScriptedChatModel:
        """The next structured calls (of any schema) answer these, in order."""
        self._analyses.extend(answers)
        return self

    def always_analyse(self, answer: Answer | None) -> ScriptedChatModel:
        self._default_analysis = answer
        return self

    def answer_reply(self, *replies: str) -> ScriptedChatModel:
        self._replies.extend(replies)
        return self

    def script(self, schema: type[BaseModel], *answers: Answer) -> ScriptedChatModel:
        """The next calls of `schema` answer these, in order."""
        self._queues.setdefault(schema.__name__, []).extend(answers)
        return self

    def always(self, schema: type[BaseModel], answer: Answer) -> ScriptedChatModel:
        """Every call of `schema` answers this (once its scripted answers are used up)."""
        self._always[schema.__name__] = answer
        return self

    def delay(self, schema: type[BaseModel], seconds: float) -> ScriptedChatModel:
        """Each call of `schema` sleeps first, while counted as in flight."""
        self._delays[schema.__name__] = seconds
        return self

    def behaviour(self, kind: CallKind) -> Behaviour:
        return self._behaviour.setdefault(kind, Behaviour())

    def fail(self, kind: CallKind, error: BaseException, *, times: int | None = None) -> None:
        b = self.behaviour(kind)
        if times is None:
            b.error = error
        else:
            b.errors.extend([error] * times)

    def stall(self, kind: CallKind, seconds: float) -> None:
        self.behaviour(kind).delay = seconds

    def break_after_first_token(self, error: BaseException) -> None:
        self._mid_stream_errors.append(error)

    def fail_when(
        self,
        when: Callable[[list[BaseMessage]], bool],
        error: BaseException,
        *,
        schema: type[BaseModel] | None = None,
        times: int | None = None,
        after: float = 0.0,
    ) -> ScriptedChatModel:
        """Calls (of `schema`, or any) whose prompt satisfies `when` raise `error` (after `after`
        seconds, so their siblings can finish first), `times` times or always."""
        self._rules.append(_Rule(error, when, schema.__name__ if schema else None, times, after))
        return self

    def fail_once(
        self,
        schema: type[BaseModel],
        error: BaseException,
        *,
        when: Callable[[str], bool] = lambda _: True,
        after: float = 0.0,
    ) -> ScriptedChatModel:
        """The first call of `schema` whose brief (first human message) satisfies `when`
        raises `error`."""
        return self.fail_when(lambda m: when(first_human_text(m)), error, schema=schema, times=1, after=after)

    # --- inspection ---------------------------------------------------------------------------

    @property
    def calls(self) -> list[ModelCall]:
        return self._calls

    def calls_of(self, kind: CallKind) -> list[ModelCall]:
        return [c for c in self._calls if c.kind == kind]

    def prompts(self, schema: type[BaseModel] | None = None) -> list[list[BaseMessage]]:
        """Each call's messages (of `schema`; None: the free-text calls)."""
        name = schema.__name__ if schema else REPLY
        return [c.messages for c in self._calls if c.schema == name]

    def count(self, schema: type[BaseModel]) -> int:
        return len(self.prompts(schema))

    def peak(self, schema: type[BaseModel]) -> int:
        """The most calls of `schema` ever in flight at the same time."""
        return self._peak.get(schema.__name__, 0)

    @property
    def max_in_flight(self) -> int:
        """The most calls (of any schema) ever in flight at the same time."""
        return self._max_in_flight

    # --- the model ----------------------------------------------------------------------------

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Like a provider's structured output: the call returns the answer as JSON (so
        callbacks, usage and latency behave as for any call), then it is parsed into `schema`."""
        assert isinstance(schema, type) and issubclass(schema, BaseModel), schema
        model_cls: type[BaseModel] = schema
        self._schemas[model_cls.__name__] = model_cls
        bound = self.bind(**{_SCHEMA: model_cls.__name__})

        return parsed_as(bound, model_cls, include_raw=include_raw)

    def _override(self, messages: list[BaseMessage], schema: str) -> str | None:
        """A subclass's own answer for this call (None: the scripted ones)."""
        return None

    def _text(self, messages: list[BaseMessage], schema: str) -> str:
        if (own := self._override(messages, schema)) is not None:
            return own
        if schema == REPLY:
            return self._replies.pop(0) if self._replies else self.default_reply
        queue = self._queues.get(schema)
        answer = queue.pop(0) if queue else self._always.get(schema)
        if answer is None:
            answer = self._analyses.pop(0) if self._analyses else self._default_analysis
        if answer is None:
            answer = offline_answer(self._schemas[schema], messages)
        return answer if isinstance(answer, str) else answer.model_dump_json()

    def _rule_for(self, messages: list[BaseMessage], schema: str) -> _Rule | None:
        for rule in self._rules:
            if rule.schema in (None, schema) and rule.when(messages):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return rule
        return None

    async def _begin(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ModelCall:
        schema = str(kwargs.get(_SCHEMA) or REPLY)
        kind: CallKind = "reply" if schema == REPLY else "structured"
        call = ModelCall(kind=kind, schema=schema, messages=list(messages), started=time.perf_counter())
        self._calls.append(call)
        await self.behaviour(kind).act()
        self._in_flight[schema] = self._in_flight.get(schema, 0) + 1
        self._peak[schema] = max(self._peak.get(schema, 0), self._in_flight[schema])
        self._total_in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._total_in_flight)
        try:
            if seconds := self.latency + self._delays.get(schema, 0.0):
                await asyncio.sleep(seconds)
            if (rule := self._rule_for(messages, schema)) is not None:
                await asyncio.sleep(rule.after)
                raise rule.error
        finally:
            self._in_flight[schema] -= 1
            self._total_in_flight -= 1
        return call

    def _result(self, messages: list[BaseMessage], text: str) -> ChatResult:
        meta = {"model_name": self.model_name, "finish_reason": "stop", "model_provider": "scripted"}
        message = AIMessage(content=text, usage_metadata=usage_of(messages, text), response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _chunks(self, messages: list[BaseMessage], text: str) -> Iterator[ChatGenerationChunk]:
        pieces = word_pieces(text)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            meta = {"model_name": self.model_name, "finish_reason": "stop", "model_provider": "scripted"}
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece,
                    usage_metadata=usage_of(messages, text) if last else None,
                    response_metadata=meta if last else {},
                    chunk_position="last" if last else None,
                )
            )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("ScriptedChatModel is async only")

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError("ScriptedChatModel is async only")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = await self._begin(messages, kwargs)
        result = self._result(messages, self._text(messages, call.schema))
        call.ended = time.perf_counter()
        return result

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = await self._begin(messages, kwargs)
        text = self._text(messages, call.schema)
        for i, chunk in enumerate(self._chunks(messages, text)):
            if i == 1 and self._mid_stream_errors:
                raise self._mid_stream_errors.pop(0)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        call.ended = time.perf_counter()


class MissionPrepModel(ScriptedChatModel):
    """process_missions' model: every call takes `latency` seconds (counted in flight), and calls
    can be scripted per mission title (read from the prompt's mission block)."""

    latency: float = 0.05
    _titles: list[str] = PrivateAttr(default_factory=list)
    _by_title: dict[str, _TitleScript] = PrivateAttr(default_factory=dict)

    def fail_for(self, title: str, error: BaseException, *, times: int | None = None) -> MissionPrepModel:
        self._by_title[title] = _TitleScript(error=error, times=times)
        return self

    def answer_for(self, title: str, text: str, *, times: int | None = None) -> MissionPrepModel:
        self._by_title[title] = _TitleScript(text=text, times=times)
        return self

    def fail_all(self, error: BaseException) -> MissionPrepModel:
        self._by_title["*"] = _TitleScript(error=error)
        return self

    @property
    def titles(self) -> list[str]:
        """The mission title of each call, in call order."""
        return self._titles

    def calls_for(self, title: str) -> int:
        return self._titles.count(title)

    def _scripted(self, title: str) -> _TitleScript | None:
        script = self._by_title.get(title) or self._by_title.get("*")
        if script is None:
            return None
        if script.times is not None:
            if script.times <= 0:
                return None
            script.times -= 1
        return script

    async def _begin(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ModelCall:
        self._titles.append(_title(messages))
        return await super()._begin(messages, kwargs)

    def _override(self, messages: list[BaseMessage], schema: str) -> str | None:
        script = self._scripted(_title(messages))
        if script is not None and script.error is not None:
            raise script.error
        return script.text if script is not None else None


@dataclass
class _TitleScript:
    """What the model does for one mission title: raise `error`, or answer `text`, on every
    call (`times=None`) or on its next `times` calls only."""

    error: BaseException | None = None
    text: str | None = None
    times: int | None = None


def _title(messages: list[BaseMessage]) -> str:
    from prompts.process_missions import find_mission

    return str((find_mission(messages) or {}).get("title", ""))
