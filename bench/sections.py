"""Setting up the in-process section: its own database, seeded users, the service opened on it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from bench.env import BenchPostgres
from bench.inproc import run_inproc
from bench.seed import migrate, seed_users
from bench.sim import SimProfile
from core.logging import configure_logging
from core.settings import Settings
from services.container import Services


def bench_settings(url: str, profile: SimProfile, pool_max: int | None, **extra: Any) -> Settings:
    """The service's settings on `url` with the simulated profile; `pool_max` None: the default."""
    if pool_max:
        extra["db_pool_max"] = pool_max
    return Settings(
        database_url=url,
        openai_api_key=None,
        openai_base_url=None,
        log_level="WARNING",
        **profile.settings(),
        **extra,
    )


async def inproc_section(
    pg: BenchPostgres, profile: SimProfile, args: argparse.Namespace, log: Callable[[str], None]
) -> dict[str, Any]:
    configure_logging("WARNING")
    url = pg.database("bench_inproc")
    migrate(url)
    settings = bench_settings(url, profile, args.pool_max)
    users = seed_users(url, [f"inproc-{i}" for i in range(42)], dim=settings.embedding_dim)
    svc = await Services.open(settings)
    try:
        return await run_inproc(
            svc,
            profile,
            users,
            pg.postmaster_pid(),
            iterations=4 if args.quick else 10,
            framework_iterations=6 if args.quick else 16,
            concurrency=32,
            rounds=1 if args.quick else 2,
            seconds=2.0 if args.quick else 3.0,
            log=log,
        )
    finally:
        await svc.close()
