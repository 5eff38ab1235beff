"""Pattern 5 inside a node: run one coroutine per item with at most `limit` in flight; a failing
item is reported with its reason and never stops the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.errors import DelightError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    item: T
    result: R | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def bounded_map(items: Sequence[T], fn: Callable[[T], Awaitable[R]], limit: int) -> list[Outcome[T, R]]:
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> Outcome[T, R]:
        async with gate:
            try:
                return Outcome(item, await fn(item))
            except Exception as err:  # isolated: reported, not raised
                reason = err.message if isinstance(err, DelightError) else f"{type(err).__name__}: {err}"
                return Outcome(item, error=reason)

    return list(await asyncio.gather(*(one(i) for i in items)))
