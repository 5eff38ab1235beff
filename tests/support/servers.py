"""API processes as `make run` starts them (`python -m api`: uvicorn, uvloop, httptools), each on a
free port, for tests about what a server process does (sockets, limits, signals) and about several
processes sharing one Postgres."""

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

# Settings of the developer's or the test process's environment that would point a server
# elsewhere or change how it behaves: a test server gets only what the test gives it.
_DROP: tuple[str, ...] = (
    "OPENAI_",
    "DATABASE_URL",
    "DATA_DIR",
    "AUTH_",
    "JWT_",
    "HOST",
    "PORT",
    "PYTEST",
    "REDIS_URL",
)
_DROP += ("CORS_", "SIM_", "BRANCH_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(_DROP)}, **extra}


class ApiServer:
    """`python -m <module>` (the API by default) on a free port. With `data`, the embedded
    Postgres lives in `data/pg`; else the environment says which database (DATABASE_URL)."""

    def __init__(self, log: Path, *, module: str = "api", data: Path | str | None = None, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log: IO[str] = log.open("w+")
        if data is not None:
            env["DATA_DIR"] = str(Path(data) / "pg")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=clean_env(PORT=str(self.port), **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_healthy(self, limit: float = 90) -> ApiServer:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log_text()
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"server did not become healthy:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text()[-5000:]

    def peak_rss_mb(self) -> float:
        """The process's peak resident set size so far (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, leases left behind."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Send `sig` (a graceful stop by default) and wait; the exit code (SIGKILL past `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def start(data: Path, *, module: str = "api", **env: str) -> ApiServer:
    """One server with its own embedded Postgres in `data/pg` (as `make run` has), healthy."""
    data.mkdir(parents=True, exist_ok=True)
    return ApiServer(data / "server.log", module=module, data=data, **env).wait_healthy()


def start_servers(n: int, logs: Path, **env: str) -> list[ApiServer]:
    """`n` API processes started together (they migrate under one advisory lock)."""
    servers = [ApiServer(logs / f"api-{i}.log", **env) for i in range(n)]
    try:
        return [s.wait_healthy() for s in servers]
    except BaseException:
        for s in servers:
            s.stop()
        raise


def postgres_pids(pgdata: Path) -> list[int]:
    """Running postgres servers started on `pgdata` (their command line has `-D <pgdata>`)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/postgres") and str(pgdata).encode() in argv:
            out.append(int(entry.name))
    return out
