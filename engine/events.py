"""A run's event log: numbered events (`seq` 1, 2, ...), kept in memory while the run lives, followed
by any number of readers, each from the `Last-Event-ID` it already has. The process that runs the
run writes the log; other processes hold a mirror of it fed by the bus (engine/bus.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic_core import to_jsonable_python

from services.runs import RunRecord

# Event names the engine itself emits; the others are the Agent Server's stream modes.
METADATA, ERROR, END = "metadata", "error", "end"


def _default(obj: Any) -> Any:
    return to_jsonable_python(obj, fallback=str)


def dumps(obj: Any) -> str:
    """JSON of anything a graph streams (pydantic models, LangChain messages, datetimes...)."""
    return orjson.dumps(obj, default=_default).decode()


def jsonable(obj: Any) -> Any:
    return orjson.loads(dumps(obj))


@dataclass(slots=True)
class Event:
    seq: int
    name: str
    data: Any
    _json: str | None = None

    @property
    def json(self) -> str:
        """The data as JSON, encoded once however many readers and forwards it has."""
        if self._json is None:
            self._json = dumps(self.data)
        return self._json

    def line(self) -> str:
        return f"[{self.seq},{dumps(self.name)},{self.json}]"

    @classmethod
    def parse(cls, raw: str | list[Any]) -> Event:
        seq, name, data = orjson.loads(raw) if isinstance(raw, str) else raw
        return cls(seq, name, data)


def dump_lines(events: list[Event]) -> str:
    return "\n".join(e.line() for e in events)


def load_lines(text: str | None) -> list[Event]:
    return [Event.parse(line) for line in (text or "").splitlines() if line]


@dataclass
class RunLog:
    """The events of one run, in order, plus its final record once it has ended. A mirror (a run
    of another process) may receive events out of order or twice: `add` places them by `seq`."""

    run_id: Any
    events: list[Event] = field(default_factory=list)
    record: RunRecord | None = None
    followers: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.record is not None

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0

    def emit(self, name: str, data: Any) -> Event:
        event = Event(self.last_seq + 1, name, data)
        self.events.append(event)
        self._changed.set()
        return event

    def add(self, event: Event) -> None:
        """A mirrored event: appended when it is the next one, ignored when already here."""
        if event.seq == self.last_seq + 1:
            self.events.append(event)
            self._changed.set()

    def finish(self, record: RunRecord, stored: list[Event] | None = None) -> None:
        """The run ended: fill any gap from the stored events, add the last event (`end`, with
        the run's status), then wake every reader."""
        for event in stored or ():
            self.add(event)
        self.events.append(
            Event(
                self.last_seq + 1,
                END,
                {"status": record.status, "error": record.error, "error_type": record.error_type},
            )
        )
        self.record = record
        self._changed.set()

    async def wait(self) -> RunRecord:
        while self.record is None:
            self._changed.clear()
            if self.record is None:
                await self._changed.wait()
        return self.record

    async def follow(self, after: int = 0) -> AsyncIterator[Event]:
        """Every event with seq > `after`, as it arrives, until the run has ended."""
        self.followers += 1
        try:
            i = 0
            while True:
                while i < len(self.events):
                    event = self.events[i]
                    i += 1
                    if event.seq > after:
                        yield event
                if self.record is not None:
                    return
                self._changed.clear()
                if i == len(self.events) and self.record is None:
                    await self._changed.wait()
        finally:
            self.followers -= 1
