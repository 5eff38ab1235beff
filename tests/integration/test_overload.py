"""A real `python -m api` past its admission limit (RUN_MAX_RUNNING): the turns it admitted are
served, every other request is refused at once with 429 and Retry-After (never a 503 from an
exhausted pool, never a wait), and it serves again as soon as its runs end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.servers import ApiServer

LIMIT = 3
BURST = 15
FIRST_TOKEN_MS = 1500  # each of a turn's two model calls waits this long: the admitted turns stay running


async def test_past_its_limit_a_process_refuses_at_once_with_429_and_retry_after(
    tmp_path: Path, new_database: Callable[[], str]
) -> None:
    server = ApiServer(
        tmp_path / "api.log",
        DATABASE_URL=new_database(),
        AUTH_MODE="dev",
        RUN_MAX_RUNNING=str(LIMIT),
        DB_POOL_MAX="4",
        SIM_LLM_FIRST_TOKEN_MS=str(FIRST_TOKEN_MS),
        SIM_EMBED_MS="0",
    ).wait_healthy()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

            async def chat(i: int) -> tuple[int, str | None, float]:
                t0 = time.perf_counter()
                r = await client.post(
                    "/api/v1/chat",
                    json={"message": f"hello {i}"},
                    headers={"Authorization": f"Bearer dev:overload-{i}"},
                )
                return r.status_code, r.headers.get("retry-after"), time.perf_counter() - t0

            results = await asyncio.gather(*(chat(i) for i in range(BURST)))
            statuses = sorted(s for s, _, _ in results)
            assert statuses == [200] * LIMIT + [429] * (BURST - LIMIT), server.log_text()
            refused = [(ra, dt) for s, ra, dt in results if s == 429]
            assert all(ra is not None and int(ra) >= 1 for ra, _ in refused)
            assert max(dt for _, dt in refused) < FIRST_TOKEN_MS / 1000  # refused before any turn ended
            assert min(dt for s, _, dt in results if s == 200) >= 2 * FIRST_TOKEN_MS / 1000
            # The admitted turns have ended: the next request is served.
            status, _, _ = await chat(BURST)
            assert status == 200
    finally:
        server.stop()
