"""Counting database round trips from inside the process (benchmarks only).

`count_round_trips()` wraps psycopg's async `Connection.wait`: a wait whose I/O generator had to
wait on the socket at least once counts as one round trip; no-op waits (a COMMIT on an idle
autocommit connection, say) do not, and a pipeline's statements count once, at the sync that
waits for their results. Every database call of the service goes through psycopg (domain SQL,
memories, the checkpointer, the pool's checkout checks). For the pools given, the round trips
their checkout checks (`check=`) make are also counted on their own (`pool_checks`, a part of
`total`)."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool


@dataclass
class RoundTrips:
    total: int = 0
    pool_checks: int = 0  # round trips made by pool checkout checks (included in `total`)

    def snapshot(self) -> tuple[int, int]:
        return self.total, self.pool_checks


COUNTER = RoundTrips()
_PIPELINE_SYNCS = ("_sync_gen", "_exit_gen")


def _counted(gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """The same generator, counting one round trip if it waits at all."""
    try:
        item = next(gen)
    except StopIteration as done:
        return done.value
    COUNTER.total += 1
    while True:
        try:
            sent = yield item
        except BaseException as exc:  # pass cancellation and errors through
            try:
                item = gen.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                item = gen.send(sent)
            except StopIteration as done:
                return done.value


@contextlib.contextmanager
def count_round_trips(pools: tuple[AsyncConnectionPool, ...] = ()) -> Iterator[RoundTrips]:
    """Count while inside the block; for `pools`, their checkout checks' round trips too."""
    conn_cls = psycopg.AsyncConnection
    orig_wait = conn_cls.wait
    orig_checks = {id(p): p._check for p in pools}

    async def wait(self, gen, *args, **kwargs):
        # In pipeline mode statements are only queued and flushed: the one wait for the server
        # is the pipeline's sync (or its exit, which syncs).
        if self._pipeline is None or getattr(gen, "__name__", "") in _PIPELINE_SYNCS:
            gen = _counted(gen)
        return await orig_wait(self, gen, *args, **kwargs)

    def counted_check(check):
        async def check_connection(conn):
            before = COUNTER.total
            try:
                return await check(conn)
            finally:
                COUNTER.pool_checks += COUNTER.total - before

        return check_connection

    # A deliberate patch of the connection class (restored below): mypy flags assigning a method.
    conn_cls.wait = wait  # type: ignore[method-assign]
    for p in pools:
        if p._check is not None:
            p._check = counted_check(p._check)
    try:
        yield COUNTER
    finally:
        conn_cls.wait = orig_wait  # type: ignore[method-assign]
        for p in pools:
            p._check = orig_checks[id(p)]
