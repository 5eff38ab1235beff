"""`python -m bench.serve [--lever ...]`: the service exactly as `python -m api` serves it, with
one or more levers switched to their other state, for the before/after measurements.
Nothing here changes the service's code: the switches are applied in this process only.

    --saver stock        the checkpointer is upstream's AsyncPostgresSaver (per-instance lock, each
                         statement of a write committed on its own) instead of
                         services/checkpointer.py's lock-free PooledPostgresSaver
    (RUN_ASYNC_COMMIT=true in the environment: checkpoint writes and finishes do not wait for the
    WAL flush)
    --no-gc-freeze       skip gc.freeze() after start-up
    --stock-uvicorn      asyncio event loop and h11 instead of uvloop and httptools
    --durability MODE    run chat turns with durability MODE (sync, async, exit)
    --no-pool-check      no connection check at all on pool checkouts (not even the poll)
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import types
from typing import Any

import uvicorn


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.serve")
    p.add_argument("--saver", choices=("production", "stock"), default="production")
    p.add_argument("--no-gc-freeze", action="store_true")
    p.add_argument("--stock-uvicorn", action="store_true")
    p.add_argument("--durability", choices=("sync", "async", "exit"))
    p.add_argument("--no-pool-check", action="store_true")
    args = p.parse_args()

    from core.settings import load_settings

    settings = load_settings()
    assert settings.host in ("127.0.0.1", "localhost", "::1"), "benchmarks bind loopback only"

    import api.app
    import api.routes.chat
    import api.routes.companion
    import api.turns
    import services.container

    if args.saver == "stock":
        # Swap the saver class services/container.py constructs (looked up when the services
        # open, in this process only).
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        def stock_saver(pool: Any, serde: Any = None, synchronous_commit: bool = True) -> AsyncPostgresSaver:
            return AsyncPostgresSaver(pool, serde=serde)

        setattr(services.container, "PooledPostgresSaver", stock_saver)  # noqa: B010  (this process only)
    if args.no_gc_freeze:
        setattr(api.app, "gc", types.SimpleNamespace(collect=gc.collect, freeze=lambda: None))  # noqa: B010
    if args.durability:  # chat turns checkpoint with this durability instead of `exit`
        base_turn = api.turns.turn
        # The routes' `turn` is swapped in this process only: mypy sees a function replaced by one
        # of another signature (assignment), called with untyped arguments (arg-type).

        def turn(*a: object, **kw: object) -> object:
            return dataclasses.replace(base_turn(*a, **kw), durability=args.durability)  # type: ignore[arg-type]

        api.routes.chat.turn = turn  # type: ignore[assignment]
        api.routes.companion.turn = turn  # type: ignore[assignment]
    if args.no_pool_check:
        import services.db

        async def no_check(self: object, conn: object) -> None:
            return None

        services.db.Database._check_on_checkout = no_check  # type: ignore[method-assign]  # this process only

    uvicorn.run(
        api.app.create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="asyncio" if args.stock_uvicorn else "uvloop",
        http="h11" if args.stock_uvicorn else "httptools",
        log_config=None,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
