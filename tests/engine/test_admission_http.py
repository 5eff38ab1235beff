"""Admission over HTTP: past a limit the request answers 429 with Retry-After at once, and nothing
is written (no run, no thread, no message)."""

from __future__ import annotations

import uuid

import httpx

from api.app import create_app


async def test_past_the_rate_limit_chat_answers_429_with_retry_after_and_writes_nothing(
    settings, new_database
) -> None:
    app = create_app(settings.model_copy(update={"database_url": new_database(), "run_rate_per_minute": 2}))
    headers = {"Authorization": f"Bearer dev:rate-{uuid.uuid4().hex[:6]}"}
    async with app.router.lifespan_context(app):
        svc = app.state.services
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=30
        ) as c:
            for text in ("one", "two"):
                assert (
                    await c.post("/api/v1/chat", json={"message": text}, headers=headers)
                ).status_code == 200
            before = await svc.db.fetchrow(
                "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM threads) AS threads"
            )
            for path in ("/api/v1/chat", "/api/v1/chat/stream", "/api/v1/companion/chat"):
                r = await c.post(path, json={"message": "three"}, headers=headers)
                assert r.status_code == 429, (path, r.text)
                assert 1 <= int(r.headers["retry-after"]) <= 60
                assert r.json()["detail"] == "too many runs started in the last minute"
            r = await c.get("/api/v1/missions/next", headers=headers)  # every workflow run counts
            assert r.status_code == 429
            after = await svc.db.fetchrow(
                "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM threads) AS threads"
            )
            assert after == before
            # Another user is not limited by this one.
            other = {"Authorization": f"Bearer dev:rate-{uuid.uuid4().hex[:6]}"}
            assert (await c.post("/api/v1/chat", json={"message": "hi"}, headers=other)).status_code == 200
