"""`python -m api` as `make run` starts it: a real uvicorn process, no configuration, the embedded
Postgres in its data folder, real TCP. The browser's EventSource reads exactly these bytes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.settings import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "DATABASE_URL", "AUTH_", "JWT_", "HOST", "PORT"))
    }
    return {**env, **extra}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    data = Path(tempfile.mkdtemp(prefix="delight-run-"))
    port = free_port()
    log = (data / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api"],
        cwd=ROOT,
        env=clean_env(PORT=str(port), DATA_DIR=str(data / "pg")),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (data / "server.log").read_text()
            time.sleep(0.2)
        else:
            raise AssertionError("server did not become healthy")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            # uvicorn shuts down gracefully, then re-raises the signal it caught.
            assert proc.wait(20) in (0, -signal.SIGTERM)
            assert "api ready" in (data / "server.log").read_text()
        finally:
            proc.kill()
            log.close()
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
