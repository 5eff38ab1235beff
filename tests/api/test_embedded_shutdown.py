"""`make run` stopped by a signal stops the embedded Postgres it started, and a process that died
without cleaning up (its pid left in the server's handle list) does not keep the next one from
stopping it: a real `python -m api`, SIGTERM, started again, SIGINT."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.servers import postgres_pids, start


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def wait_gone(pgdata: Path, timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while (pids := postgres_pids(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


def test_sigterm_stops_the_embedded_postgres_and_a_restart_stops_cleanly_again() -> None:
    data = Path(tempfile.mkdtemp(prefix="delight-shutdown-"))
    pgdata = (data / "pg").resolve()
    handles = pgdata / ".handle_pids.json"
    try:
        first = start(data)
        assert postgres_pids(pgdata), "the embedded server runs while the API does"
        assert first.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert wait_gone(pgdata) == []
        assert json.loads(handles.read_text()) == []

        # A process that was killed outright left its pid behind: it must not block the stop.
        handles.write_text(json.dumps([dead_pid()]))
        second = start(data)
        assert json.loads(handles.read_text()) == [second.pid]
        assert second.stop(signal.SIGINT) in (0, 1, -signal.SIGINT)
        assert wait_gone(pgdata) == []
        assert "api ready" in second.log_path.read_text()
    finally:
        for pid in postgres_pids(pgdata):  # never leave a server behind, even on failure
            subprocess.run(["kill", "-INT", str(pid)], check=False)
        shutil.rmtree(data, ignore_errors=True)
