"""`python -m api` as `make run` starts it: a real uvicorn process, no configuration, the embedded
Postgres in its data folder, real TCP. The browser's EventSource reads exactly these bytes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.settings import ROOT
from tests.support.servers import clean_env, start


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    data = Path(tempfile.mkdtemp(prefix="delight-run-"))
    api = start(data)
    try:
        yield api.url
    finally:
        try:  # uvicorn shuts down gracefully, then re-raises the signal it caught
            assert api.stop() in (0, -signal.SIGTERM)
            assert "api ready" in api.log_path.read_text()
        finally:
            shutil.rmtree(data, ignore_errors=True)


def test_zero_config_server_uses_embedded_postgres_and_offline_model(server: str) -> None:
    health = httpx.get(f"{server}/health").json()
    assert health["database"] == {"status": "ok", "kind": "embedded"}
    assert health["model"]["kind"] == "offline"


def test_companion_stream_bytes_are_what_eventsource_reads(server: str) -> None:
    headers = {"Authorization": "Bearer dev:browser-user"}
    r = httpx.post(
        f"{server}/api/v1/companion/chat",
        json={"message": "My cat is called Miso"},
        headers=headers,
    )
    cid = r.json()["conversation_id"]
    with httpx.stream(
        "GET", f"{server}/api/v1/companion/stream/{cid}?token=dev:browser-user", timeout=30
    ) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        assert s.headers["cache-control"] == "no-cache" and s.headers["x-accel-buffering"] == "no"
        lines = [line for line in s.iter_lines() if line]
    events = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    # Unnamed events (data lines, pings), each with an id: a reconnecting EventSource sends the
    # last one back as Last-Event-ID.
    assert all(line.startswith(("data: ", "id: ", ":")) for line in lines)
    ids = [int(line.removeprefix("id: ")) for line in lines if line.startswith("id: ")]
    assert len(ids) == len(events) and ids == sorted(set(ids))
    assert events[-1]["type"] == "complete" and events[0]["type"] == "token"
    assert events[-1]["usage"]["total_tokens"] > 0
    # A later conversation recalls the fact told in this one.
    later = httpx.post(
        f"{server}/api/v1/chat",
        json={"message": "What is my cat called?"},
        headers=headers,
        timeout=30,
    ).json()
    assert "Miso" in later["reply"]


def test_dev_auth_refuses_to_bind_beyond_loopback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "api"],
        cwd=ROOT,
        env=clean_env(HOST="0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "invalid configuration: AUTH_MODE=dev only binds loopback (set HOST=127.0.0.1)"
    ]
