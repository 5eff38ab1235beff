"""API processes as `make run` starts them (`python -m api`: uvicorn, uvloop, httptools), each on a
free port, for tests about several processes sharing one Postgres."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from core.settings import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without anything that would point a server elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("OPENAI_", "DATABASE_URL", "AUTH_", "JWT_", "HOST", "PORT", "PYTEST", "REDIS_URL")
        )
    }
    return {**env, **extra}


class ApiServer:
    def __init__(self, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log: IO[str] = log.open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api"],
            cwd=ROOT,
            env=clean_env(PORT=str(self.port), **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_healthy(self, limit: float = 90) -> ApiServer:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log()
            time.sleep(0.1)
        raise AssertionError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()[-5000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, leases left behind."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def start_servers(n: int, logs: Path, **env: str) -> list[ApiServer]:
    """`n` API processes started together (they migrate under one advisory lock)."""
    servers = [ApiServer(logs / f"api-{i}.log", **env) for i in range(n)]
    try:
        return [s.wait_healthy() for s in servers]
    except BaseException:
        for s in servers:
            s.stop()
        raise
