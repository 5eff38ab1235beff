"""Cron without Redis: the API process fires the same schedules (nightly, weekly, hourly) on an
asyncio task, into the in-process queue. With REDIS_URL set, ARQ workers run the crons instead."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from arq.cron import next_cron

from core.logging import get_logger
from core.settings import WEEKDAYS, Settings, parse_hhmm
from jobs.tasks import SCHEDULES, JobHost

log = get_logger("delight.scheduler")


def cron_specs(settings: Settings) -> dict[str, dict[str, int]]:
    nh, nm = parse_hhmm(settings.nightly_at)
    day, _, at = settings.weekly_at.partition(" ")
    wh, wm = parse_hhmm(at)
    return {
        "nightly_maintenance": {"hour": nh, "minute": nm},
        "weekly_quests": {"weekday": WEEKDAYS.index(day.lower()), "hour": wh, "minute": wm},
        "nudge_sweep": {"minute": settings.nudge_sweep_minute},
    }


def next_runs(settings: Settings, after: dt.datetime) -> dict[str, dt.datetime]:
    naive = after.astimezone(dt.UTC).replace(tzinfo=None)
    return {
        name: next_cron(naive, second=0, microsecond=0, **spec).replace(tzinfo=dt.UTC)
        for name, spec in cron_specs(settings).items()
    }


class InProcessScheduler:
    def __init__(
        self, host: JobHost, settings: Settings, clock: Callable[[], dt.datetime] | None = None
    ) -> None:
        self.host = host
        self.settings = settings
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.task: asyncio.Task[None] | None = None

    async def tick(self, now: dt.datetime, due: dict[str, dt.datetime]) -> dict[str, dt.datetime]:
        """Fire every schedule due at `now`; returns the next due times."""
        for name, when in due.items():
            if when <= now:
                try:
                    ids = await SCHEDULES[name](self.host)
                    log.info("schedule fired", extra={"schedule": name, "jobs": len(ids)})
                except Exception:
                    log.exception("schedule failed", extra={"schedule": name})
        return {n: (w if w > now else next_runs(self.settings, now)[n]) for n, w in due.items()}

    async def _loop(self) -> None:
        due = next_runs(self.settings, self.clock())
        while True:
            wait = (min(due.values()) - self.clock()).total_seconds()
            await asyncio.sleep(max(0.0, min(wait, 60.0)))  # re-check at least every minute
            due = await self.tick(self.clock(), due)

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
