"""The one retry layer for model and embedding calls: exponential backoff with jitter on 429,
5xx, timeouts and connection errors. 400/401/403/404/422 are never retried: they will not heal.
The OpenAI SDK's own retries are off (max_retries=0) so the two layers never multiply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import openai
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from core.logging import get_logger
from core.settings import Settings

log = get_logger("delight.llm")
T = TypeVar("T")


def is_transient(err: BaseException) -> bool:
    if isinstance(err, openai.APIStatusError):
        return err.status_code == 429 or err.status_code >= 500
    return isinstance(
        err, openai.APITimeoutError | openai.APIConnectionError | TimeoutError | ConnectionError
    )


def retrying(settings: Settings, site: str) -> AsyncRetrying:
    def before_sleep(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        err = outcome.exception() if outcome is not None else None
        log.warning(
            "transient model error, retrying",
            extra={
                "site": site,
                "attempt": getattr(state, "attempt_number", 0),
                "error": repr(err),
            },
        )

    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(settings.llm_max_attempts),
        # Full jitter scaled to the initial delay (tenacity's default jitter is a fixed 0-1 s).
        wait=wait_exponential_jitter(
            multiplier=settings.llm_backoff_initial_s,
            max=settings.llm_backoff_max_s,
            jitter=settings.llm_backoff_initial_s,
        ),
        before_sleep=before_sleep,
        reraise=True,
    )


async def with_retry(settings: Settings, site: str, call: Callable[[], Awaitable[T]]) -> T:
    async for attempt in retrying(settings, site):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # AsyncRetrying re-raises the last error
