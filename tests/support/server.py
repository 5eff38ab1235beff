"""`python -m api` as a real process (uvicorn, httptools, the embedded Postgres in its own data
folder), for tests about what a server process does: sockets, limits, signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.settings import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "DATABASE_URL", "AUTH_", "JWT_", "HOST", "PORT", "REDIS_URL"))
    }
    return {**env, **extra}


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    data: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss_mb(self) -> float:
        """The process's peak resident set size so far (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def start(data: Path, *, module: str = "api", timeout: float = 90, **env: str) -> Server:
    """Start `python -m <module>` (the API) on a free port with its embedded Postgres in
    `data/pg`; return once /health answers 200."""
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data / f"server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=clean_env(PORT=str(port), DATA_DIR=str(data / "pg"), **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", data, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.base}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(log_path.read_text())
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not become healthy:\n{log_path.read_text()}")


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
