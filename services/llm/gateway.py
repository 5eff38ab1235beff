"""Every LLM call goes through `ModelGateway`: one retry layer, structured output, token
streaming, and usage (tokens and cost, per user and per call site).

Every call returns its usage. Where it is recorded is the sink's business: by default the
gateway's sink (the `llm_usage` ledger, one row per call); a caller that records usage itself,
once per turn, passes `sink=services.usage.PER_TURN` (the chat graph). Usage a caller can never
see (a structured call whose output stayed invalid raises) still goes to the gateway's sink."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Literal, Protocol, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from pydantic import BaseModel, ValidationError

from core.errors import ModelOutputInvalid
from core.logging import get_logger
from core.settings import Settings
from domain.cost import price_usd
from services.llm.retry import with_retry
from state.schemas import Usage

log = get_logger("delight.llm")
S = TypeVar("S", bound=BaseModel)
ModelTier = Literal["cheap", "premium"]
# Set by the run engine for a run of a user past their daily budget (LLM_DAILY_BUDGET_USD): every
# call of that run is answered by the offline model, costs nothing, and is recorded as such.
free_path: ContextVar[bool] = ContextVar("free_path", default=False)
FREE_MODEL = "offline (over budget)"


class UsageSink(Protocol):
    async def record(self, *, user_id: str | None, site: str, model: str, usage: Usage) -> None: ...


class NullSink:
    async def record(self, *, user_id: str | None, site: str, model: str, usage: Usage) -> None:
        return None


class ModelGateway:
    def __init__(
        self,
        settings: Settings,
        models: dict[ModelTier, BaseChatModel],
        *,
        kind: Literal["offline", "openai"],
        sink: UsageSink | None = None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.kind = kind
        self.sink: UsageSink = sink or NullSink()
        self._free: BaseChatModel | None = None

    def model_name(self, tier: ModelTier) -> str:
        if free_path.get():
            return FREE_MODEL
        return self.settings.premium_model if tier == "premium" else self.settings.chat_model

    def _model(self, tier: ModelTier, site: str) -> BaseChatModel:
        if not free_path.get():
            return self.models[tier]
        if self._free is None:
            from services.llm.offline import OfflineChatModel

            self._free = OfflineChatModel()
        log.info("over budget: the free path answers", extra={"site": site, "tier": tier})
        return self._free

    @property
    def description(self) -> str:
        if self.kind == "offline":
            return "offline deterministic model (no OPENAI_API_KEY/OPENAI_BASE_URL set)"
        return f"openai-compatible: {self.settings.chat_model} / {self.settings.premium_model}"

    async def _account(
        self, meta: UsageMetadata | None, *, tier: ModelTier, site: str, user_id: str | None, sink: UsageSink
    ) -> Usage:
        counts: Mapping[str, Any] = meta or {}
        model = self.model_name(tier)
        tokens_in, tokens_out = int(counts.get("input_tokens", 0)), int(counts.get("output_tokens", 0))
        usage = Usage(
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=0.0
            if model == FREE_MODEL
            else price_usd(model, tokens_in, tokens_out, self.settings.model_prices),
            calls=1,
        )
        await sink.record(user_id=user_id, site=site, model=model, usage=usage)
        return usage

    async def structured(
        self,
        schema: type[S],
        messages: Sequence[BaseMessage],
        *,
        site: str,
        user_id: str | None,
        tier: ModelTier = "cheap",
        sink: UsageSink | None = None,
    ) -> tuple[S, Usage]:
        """One structured answer. Output that fails the schema is asked for again with the
        validation error fed back (LLM_VALIDATION_RETRIES times), then raises
        `ModelOutputInvalid`. Transient API errors retry separately, in `with_retry`."""
        record = sink or self.sink
        runnable = self._model(tier, site).with_structured_output(
            schema, method=self.settings.structured_output_method, include_raw=True
        )
        prompt = list(messages)
        total = Usage()
        for attempt in range(self.settings.llm_validation_retries + 1):

            async def call(p: list[BaseMessage] = prompt) -> dict[str, Any]:
                # With include_raw=True the answer is {"raw", "parsed", "parsing_error"}.
                return cast(dict[str, Any], await runnable.ainvoke(p))

            out = await with_retry(self.settings, site, call)
            meta = getattr(out["raw"], "usage_metadata", None)
            total = total + await self._account(meta, tier=tier, site=site, user_id=user_id, sink=record)
            parsed, error = out.get("parsed"), out.get("parsing_error")
            if error is None and parsed is not None:
                try:
                    value = parsed if isinstance(parsed, schema) else schema.model_validate(parsed)
                    return value, total
                except ValidationError as err:
                    error = err
            log.warning(
                "structured output invalid",
                extra={
                    "site": site,
                    "schema": schema.__name__,
                    "attempt": attempt + 1,
                    "error": str(error)[:500],
                },
            )
            prompt = [*messages, HumanMessage(invalid_output_feedback(schema, out["raw"], error))]
        if record is not self.sink:  # the caller never gets this usage: keep it in the ledger
            await self.sink.record(user_id=user_id, site=site, model=self.model_name(tier), usage=total)
        raise ModelOutputInvalid(
            f"the model's {schema.__name__} output stayed invalid after "
            f"{self.settings.llm_validation_retries + 1} attempts"
        )

    async def stream_text(
        self,
        messages: Sequence[BaseMessage],
        *,
        site: str,
        user_id: str | None,
        tier: ModelTier = "cheap",
        on_token: Callable[[str], None] | None = None,
        sink: UsageSink | None = None,
    ) -> tuple[str, Usage]:
        """Stream a free-text reply. A transient failure before the first token is retried;
        after it, the error propagates (tokens already sent cannot be taken back). Per chunk
        only the text is kept (no message objects are added up): the reply is joined once."""
        model = self._model(tier, site)
        sent_any = False

        async def call() -> tuple[list[str], UsageMetadata | None]:
            nonlocal sent_any
            parts: list[str] = []
            meta: UsageMetadata | None = None
            async for chunk in model.astream(list(messages)):
                if not isinstance(chunk, AIMessageChunk):
                    continue
                content = chunk.content
                text = content if isinstance(content, str) else chunk.text
                if text:
                    parts.append(text)
                    sent_any = True
                    if on_token is not None:
                        on_token(text)
                if chunk.usage_metadata:
                    meta = add_usage(meta, chunk.usage_metadata)
            return parts, meta

        async def guarded() -> tuple[list[str], UsageMetadata | None]:
            try:
                return await call()
            except Exception as err:
                if sent_any:
                    raise RuntimeError(f"{site}: stream broke after the first token") from err
                raise

        parts, meta = await with_retry(self.settings, site, guarded)
        usage = await self._account(meta, tier=tier, site=site, user_id=user_id, sink=sink or self.sink)
        return "".join(parts), usage


def invalid_output_feedback(schema: type[BaseModel], raw: BaseMessage, error: object) -> str:
    """What the model is told when its structured answer failed validation."""
    tool_calls = getattr(raw, "tool_calls", None) or []
    shown = json.dumps(tool_calls[0]["args"]) if tool_calls else str(raw.content)
    return (
        f"Your previous answer was not a valid {schema.__name__}.\n"
        f"Answer:\n{shown[:2000]}\nProblems:\n{str(error)[:2000]}\n"
        "Answer again with every problem fixed."
    )


def build_gateway(settings: Settings, sink: UsageSink | None = None) -> ModelGateway:
    if settings.uses_openai:
        from langchain_openai import ChatOpenAI

        def chat(model: str) -> BaseChatModel:
            return ChatOpenAI(
                model=model,
                api_key=settings.openai_api_key or "not-needed",
                base_url=settings.openai_base_url,
                timeout=settings.llm_timeout_s,
                max_retries=0,  # tenacity is the one retry layer
                stream_usage=True,  # off by default when base_url is set
            )

        models: dict[ModelTier, BaseChatModel] = {
            "cheap": chat(settings.chat_model),
            "premium": chat(settings.premium_model),
        }
        return ModelGateway(settings, models, kind="openai", sink=sink)

    import random

    from services.llm.offline import OfflineChatModel

    offline = OfflineChatModel(
        latency_ms=settings.sim_llm_first_token_ms, token_latency_ms=settings.sim_llm_token_ms
    )
    if settings.sim_jitter and (settings.sim_llm_first_token_ms or settings.sim_llm_token_ms):
        # Benchmarks: each call's simulated waits scaled by a seeded factor in [1-j, 1+j].
        rng, jitter = random.Random(settings.sim_seed), settings.sim_jitter

        class JitteredOfflineChatModel(OfflineChatModel):
            def _jittered(self) -> OfflineChatModel:
                f = 1.0 + jitter * (2.0 * rng.random() - 1.0)
                return self.model_copy(
                    update={"latency_ms": self.latency_ms * f, "token_latency_ms": self.token_latency_ms * f}
                )

            async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
                model = self._jittered()
                return await OfflineChatModel._agenerate(model, messages, stop, run_manager, **kwargs)

            async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
                async for chunk in OfflineChatModel._astream(
                    self._jittered(), messages, stop, run_manager, **kwargs
                ):
                    yield chunk

        offline = JitteredOfflineChatModel(
            latency_ms=settings.sim_llm_first_token_ms, token_latency_ms=settings.sim_llm_token_ms
        )
    return ModelGateway(settings, {"cheap": offline, "premium": offline}, kind="offline", sink=sink)
