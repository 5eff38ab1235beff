"""The offline chat model: the service's embedded default when no OpenAI key is configured (demos,
tests, benchmarks). Deterministic, no network. It reads the same prompts a real model gets: the
Eliza reply is composed from the `<context>` block and the user's last message, and structured
output is answered by per-schema functions that modules register with `register_answer`."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ValidationError

from prompts.chat import parse_context_block, said_in_exchange
from services.llm.lexicon import dominant, extract_durable_fact, score_emotions
from state.schemas import EmotionScores, TurnAnalysis

M = TypeVar("M", bound=BaseModel)
Answerer = Callable[[list[BaseMessage]], BaseModel]

# Structured-output answerers keyed by schema class. Keyed again by dotted name because the name,
# not the class, is what travels in the call kwargs (they end up in traces and must serialise).
_ANSWERS: dict[type[BaseModel], Answerer] = {}
_SCHEMAS: dict[str, type[BaseModel]] = {}


def _schema_key(schema: type[BaseModel]) -> str:
    return f"{schema.__module__}.{schema.__qualname__}"


def register_answer(
    schema: type[M],
) -> Callable[[Callable[[list[BaseMessage]], M]], Callable[[list[BaseMessage]], M]]:
    """Decorator: `fn(messages) -> schema instance` answers `with_structured_output(schema)`.
    Registering the same schema again replaces the previous answerer."""

    def decorate(fn: Callable[[list[BaseMessage]], M]) -> Callable[[list[BaseMessage]], M]:
        _ANSWERS[schema] = fn
        _SCHEMAS[_schema_key(schema)] = schema
        return fn

    return decorate


def last_human_text(messages: Sequence[BaseMessage]) -> str:
    return next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")


@register_answer(TurnAnalysis)
def _answer_turn_analysis(messages: list[BaseMessage]) -> TurnAnalysis:
    text = last_human_text(messages)
    fact = extract_durable_fact(text)
    return TurnAnalysis(
        emotion=EmotionScores(**score_emotions(text)),
        durable_fact=fact[0] if fact else None,
        fact_kind=fact[1] if fact else None,
    )


# --- the Eliza reply ----------------------------------------------------------------------------

_OPENERS: dict[str, tuple[str, ...]] = {
    "sadness": (
        "That sounds really heavy, and it's okay to feel this way.",
        "I'm sorry you're carrying this. Your feelings make complete sense.",
        "Thank you for telling me. It sounds like a hard moment, and that's okay.",
    ),
    "fear": (
        "It makes sense to feel anxious about this, and you're not facing it alone.",
        "That worry sounds real, and it's okay to feel it.",
        "Feeling on edge about this is understandable.",
    ),
    "anger": (
        "That sounds really frustrating, and your reaction makes sense.",
        "It's okay to feel angry about this. Anyone would be frustrated.",
    ),
    "joy": (
        "That's wonderful, I'm so glad to hear it!",
        "Yay, that's great news, let's celebrate it!",
        "I love hearing this, what a win!",
    ),
    "love": (
        "That's lovely, it's clear how much this means to you.",
        "What a warm thing to share, thank you.",
    ),
    "surprise": (
        "Wow, that's unexpected!",
        "Oh, that's a surprise!",
    ),
    "neutral": (
        "Thanks for sharing that with me.",
        "Got it, thanks for telling me.",
        "I'm here and listening.",
    ),
}
_CLOSERS: dict[str, tuple[str, ...]] = {
    "sadness": ("Maybe choose one tiny step, or simply rest for a bit. Both count.",),
    "fear": (
        "Let's make it smaller: take a slow breath, then pick one tiny step you could do in the "
        "next ten minutes.",
    ),
    "anger": ("It's okay to pause and let it settle before you decide on a next step.",),
    "joy": ("Take a moment to enjoy it, you've earned this.",),
    "love": ("What would you like to do with that feeling today?",),
    "surprise": ("How are you feeling about it?",),
    "neutral": (
        "What would feel like a good next step for you today?",
        "Is there one small thing you'd like to move forward today?",
    ),
}
_LOW_CLOSER = "Please be gentle with yourself: rest is allowed, and one tiny step is more than enough today."
_QUESTION_START = re.compile(
    r"^\s*(what|who|where|when|why|how|which|do|did|does|can|could|is|are|remember)\b", re.I
)
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the and or but of to in on at for with is are was were be been am i me my you your it "
    "its this that do does did what who how when where why can could would should will about as "
    "by from so very just really user s said they their them remember tell know".split()
)


def _stable_index(key: str, n: int) -> int:
    """Template choice from a hash of the input: varied across inputs, fixed for one input."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % n


def _content_words(text: str) -> set[str]:
    words = _WORD.findall(text.lower().replace("'s", ""))
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOP}


QUOTE_CHARS = 200  # a quoted memory is clipped to this, so a reply stays short whatever it quotes


def quotable(content: str) -> str:
    """What Eliza may quote of a memory: its own words, never the transcript wrapper of a task
    memory (quoting "User said: ... Eliza replied: ..." would nest memories turn after turn)."""
    text = " ".join((said_in_exchange(content) or content).split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def _best_memory(memories: list[Any], user_text: str) -> tuple[str, int] | None:
    """The memory sharing most content words with the message (ties: recall order, which is
    best-first); returns the text to quote and the overlap."""
    asked = _content_words(user_text)
    best: tuple[str, int] | None = None
    for memory in memories:
        content = memory.get("content") if isinstance(memory, dict) else None
        if not isinstance(content, str) or not (text := quotable(content)):
            continue
        overlap = len(asked & _content_words(text))
        if best is None or overlap > best[1]:
            best = (text, overlap)
    return best


def _progress_line(progress: Any) -> str | None:
    """Only encouragement: completions and streaks when non-zero, never what was skipped."""
    if not isinstance(progress, dict):
        return None
    completed, streak = int(progress.get("completed") or 0), int(progress.get("streak_days") or 0)
    days = int(progress.get("window_days") or 7)
    done = f"you've completed {completed} mission{'s' * (completed != 1)} in the last {days} days"
    if completed > 0 and streak > 0:
        return f"And {done}, on a {streak}-day streak. That's real momentum."
    if completed > 0:
        return f"And {done}. Every one of them counts."
    if streak > 0:
        return f"And you're on a {streak}-day streak. Nicely done."
    return None


def _emotion(context: dict[str, Any], user_text: str) -> tuple[str, float]:
    """The dominant label and its score: from the context block when given, else the lexicon."""
    emotion = context.get("emotion")
    if isinstance(emotion, dict) and isinstance(emotion.get("dominant"), str):
        scores: dict[str, Any] = emotion["scores"] if isinstance(emotion.get("scores"), dict) else {}
        label = emotion["dominant"] if emotion["dominant"] in _OPENERS else "neutral"
        return label, float(scores.get(label, 0.0) or 0.0)
    scores = score_emotions(user_text)
    label = dominant(scores)
    return label, scores[label]


def read_context(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """The context block of the system prompt ({} when there is none)."""
    system = "\n".join(m.text for m in messages if isinstance(m, SystemMessage))
    return parse_context_block(system) or {}


def compose_reply(messages: Sequence[BaseMessage]) -> str:
    """Eliza's offline reply: answer from memory when asked, validate or celebrate the feeling,
    weave in the most relevant memory, encourage with progress, end with one gentle step."""
    context = read_context(messages)
    user_text = last_human_text(messages).strip()
    if not user_text and not context:
        return "Hi, I'm Eliza. I'm here whenever you want to talk."
    label, level = _emotion(context, user_text)
    key = f"{label}|{user_text}"
    parts: list[str] = []
    memories = context.get("memories")
    memory = _best_memory(memories, user_text) if isinstance(memories, list) else None
    is_question = user_text.endswith("?") or bool(_QUESTION_START.match(user_text))
    if memory and is_question and memory[1] > 0:  # a question this memory answers: answer first
        parts.append(f'You told me before: "{memory[0]}"')
        memory = None
    if not parts or label != "neutral":  # after an answer, a neutral opener would only be noise
        parts.append(_OPENERS[label][_stable_index(key, len(_OPENERS[label]))])
    if memory:
        parts.append(f'I remember: "{memory[0]}"')
    if line := _progress_line(context.get("progress")):
        parts.append(line)
    closers = (_LOW_CLOSER,) if label == "sadness" and level >= 0.6 else _CLOSERS[label]
    parts.append(closers[_stable_index(key[::-1], len(closers))])
    return " ".join(parts)


# --- the model ----------------------------------------------------------------------------------


def count_tokens(text: str) -> int:
    """Deterministic approximation of a BPE tokenizer: about four characters per token."""
    return math.ceil(len(text) / 4)


def usage_of(messages: Sequence[BaseMessage], output: str) -> UsageMetadata:
    input_tokens = sum(max(1, count_tokens(m.text)) for m in messages)
    output_tokens = count_tokens(output)
    return UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def word_pieces(text: str) -> list[str]:
    """Word-by-word chunks whose concatenation is exactly `text`."""
    return re.findall(r"\s*\S+\s*", text) or [text]


class OfflineChatModel(BaseChatModel):
    """Deterministic chat model that needs no network. `latency_ms` is waited once per call and
    `token_latency_ms` per output chunk, so benchmarks can simulate a remote model."""

    model_name: str = "offline"
    latency_ms: float = 0
    token_latency_ms: float = 0

    @property
    def _llm_type(self) -> str:
        return "offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def get_num_tokens(self, text: str) -> int:
        return count_tokens(text)

    def _answer(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> str:
        """The text a call produces: JSON of a registered answer, or Eliza's reply."""
        key = kwargs.get("offline_schema")
        if key is not None:
            schema = _SCHEMAS.get(key)
            if schema is None:
                raise NotImplementedError(f"offline model has no answer for schema {key}")
            answer = _ANSWERS[schema](messages)
            text = schema.model_validate(answer).model_dump_json()
        else:
            text = compose_reply(messages)
        for token in stop or ():
            text = text.split(token, 1)[0]
        return text

    def _metadata(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "finish_reason": "stop", "model_provider": "offline"}

    def _result(self, messages: list[BaseMessage], text: str) -> ChatResult:
        message = AIMessage(
            content=text, usage_metadata=usage_of(messages, text), response_metadata=self._metadata()
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _chunks(self, messages: list[BaseMessage], text: str) -> Iterator[ChatGenerationChunk]:
        pieces = word_pieces(text)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece,
                    usage_metadata=usage_of(messages, text) if last else None,
                    response_metadata=self._metadata() if last else {},
                    chunk_position="last" if last else None,
                )
            )

    def _total_delay(self, text: str) -> float:
        return (self.latency_ms + self.token_latency_ms * len(word_pieces(text))) / 1000

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._answer(messages, stop, kwargs)
        if delay := self._total_delay(text):
            time.sleep(delay)
        return self._result(messages, text)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._answer(messages, stop, kwargs)
        if delay := self._total_delay(text):
            await asyncio.sleep(delay)
        return self._result(messages, text)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._answer(messages, stop, kwargs)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        for chunk in self._chunks(messages, text):
            if self.token_latency_ms:
                time.sleep(self.token_latency_ms / 1000)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        text = self._answer(messages, stop, kwargs)
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        for chunk in self._chunks(messages, text):
            if self.token_latency_ms:
                await asyncio.sleep(self.token_latency_ms / 1000)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Like a provider's structured output: the model call returns the answer as JSON (so
        callbacks, usage and latency behave as for any call), then it is parsed into `schema`.
        `method` and provider kwargs are accepted for signature compatibility and ignored."""
        if not isinstance(schema, type) or schema not in _ANSWERS:
            name = getattr(schema, "__name__", repr(schema))
            raise NotImplementedError(f"offline model has no answer for schema {name}")
        model_cls: type[BaseModel] = schema
        bound = self.bind(offline_schema=_schema_key(model_cls))

        return parsed_as(bound, model_cls, include_raw=include_raw)


def parsed_as(
    bound: Runnable[LanguageModelInput, BaseMessage], model_cls: type[BaseModel], *, include_raw: bool
) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
    """A model call whose JSON answer is parsed into `model_cls`, as a provider's structured output
    returns it (with `include_raw`, a parsing error is reported beside the raw message, not raised)."""

    def parse(message: BaseMessage) -> BaseModel:
        return model_cls.model_validate_json(message.text)

    def parse_with_raw(message: BaseMessage) -> dict[str, Any]:
        try:
            return {"raw": message, "parsed": parse(message), "parsing_error": None}
        except ValidationError as exc:  # like langchain: reported, not raised
            return {"raw": message, "parsed": None, "parsing_error": exc}

    async def aparse(message: BaseMessage) -> BaseModel:
        return parse(message)

    async def aparse_with_raw(message: BaseMessage) -> dict[str, Any]:
        return parse_with_raw(message)

    if include_raw:
        return bound | RunnableLambda(parse_with_raw, afunc=aparse_with_raw)
    return bound | RunnableLambda(parse, afunc=aparse)


# Every workflow's offline answers register themselves on import (kept last: they import
# `register_answer` from this module).
from services.llm import answers as _answers  # noqa: E402, F401
