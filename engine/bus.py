"""Messages between the service's processes over Postgres LISTEN/NOTIFY: one connection per process,
outside the pool, listening on its own channel `dl_<process id>` and on `dl_all`.

Why Postgres and not Redis pub/sub: the run rows live there, a NOTIFY sent inside a transaction
is delivered only when it commits (a reader told "run ended" always finds the ended row), and the
embedded default then needs nothing else. Events travel only to processes that asked for them
(`delight_watch_run`), so a turn streamed by the process that runs it costs no NOTIFY at all.

A payload is at most 8000 bytes: a longer message is cut into parts that `Bus` joins again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from core.logging import get_logger
from services.db import listening
from services.runs import RunStore

log = get_logger("delight.bus")

MAX_PAYLOAD = 7900  # bytes; Postgres refuses NOTIFY payloads of 8000 and more
BROADCAST = "dl_all"

Handler = Callable[[dict[str, Any]], Awaitable[None]]


def channel(proc: str) -> str:
    return f"dl_{proc}"


def encode(message: dict[str, Any]) -> list[str]:
    """One message as one or more NOTIFY payloads."""
    raw = orjson.dumps(message).decode()
    if len(raw.encode()) <= MAX_PAYLOAD:
        return [raw]
    key = uuid.uuid4().hex[:12]
    step = MAX_PAYLOAD // 4 - 100  # characters, so that any UTF-8 slice fits
    parts = [raw[i : i + step] for i in range(0, len(raw), step)]
    return [
        orjson.dumps({"op": "part", "key": key, "i": i, "n": len(parts), "s": s}).decode()
        for i, s in enumerate(parts)
    ]


class Bus:
    def __init__(self, url: str, proc: str, store: RunStore, handle: Handler, on_reconnect: Handler) -> None:
        self.url = url
        self.proc = proc
        self.store = store
        self.handle = handle
        self.on_reconnect = on_reconnect
        self._parts: dict[str, list[str | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bus")
        await asyncio.wait_for(self.connected.wait(), timeout=30)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def send(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """(process id, message) pairs, in one round trip on the pool."""
        await self.store.notify([(channel(proc), p) for proc, m in messages for p in encode(m)])

    async def _run(self) -> None:
        delay = 0.1
        first = True
        while True:
            try:
                async with listening(self.url, [channel(self.proc), BROADCAST]) as notes:
                    self.connected.set()
                    delay = 0.1
                    if not first:
                        log.info("bus reconnected", extra={"proc": self.proc})
                        await self.on_reconnect({})
                    first = False
                    async for payload in notes:
                        await self._receive(payload)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the server went away: listen again, then catch up
                self.connected.clear()
                log.warning("bus disconnected", extra={"proc": self.proc, "error": repr(err)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _receive(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if message.get("op") == "part":
                joined = self._join(message)
                if joined is None:
                    return
                message = orjson.loads(joined)
            await self.handle(message)
        except Exception:
            log.exception("bus message failed", extra={"proc": self.proc})

    def _join(self, part: dict[str, Any]) -> str | None:
        parts = self._parts.setdefault(part["key"], [None] * part["n"])
        parts[part["i"]] = part["s"]
        if any(p is None for p in parts):
            return None
        del self._parts[part["key"]]
        return "".join(p for p in parts if p is not None)
