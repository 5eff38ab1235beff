"""The user's calendar: local days and ISO weeks in their timezone (pure functions, DST-safe:
zoneinfo does the offsets)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import Invalid

WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def valid_timezone(name: str | None, default: str) -> str:
    """`name` when it is a timezone zoneinfo knows, else `default` (stored values are not
    trusted: a profile may hold anything)."""
    if name:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default


def local_day(at: datetime, tz: str) -> date:
    """The user's calendar day of an aware timestamp."""
    return at.astimezone(ZoneInfo(tz)).date()


def local_midnight(now: datetime, tz: str) -> datetime:
    """The start of the user's local calendar day containing `now` (aware)."""
    return datetime.combine(local_day(now, tz), time(0), tzinfo=ZoneInfo(tz))


def iso_week(day: date) -> str:
    """The ISO week (`YYYY-Www`, e.g. "2026-W48") of a calendar day."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_of(at: datetime, tz: str) -> str:
    """The ISO week of an aware timestamp, in the user's timezone."""
    return iso_week(local_day(at, tz))


def parse_week(week: str) -> date:
    """The Monday of an ISO week written `YYYY-Www` (e.g. "2026-W48"). Anything else, or a week
    the year does not have (W53 of a 52-week year, W00), raises `Invalid`."""
    m = WEEK_RE.fullmatch(week) if isinstance(week, str) else None
    if m is None:
        raise Invalid(f"week must look like 2026-W48, got {week!r}")
    try:
        return date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError as err:
        raise Invalid(f"{week} is not an ISO week") from err


def week_bounds(week: str, tz: str = "UTC") -> tuple[datetime, datetime]:
    """[local Monday 00:00, next local Monday 00:00) of the week, as aware datetimes."""
    monday = parse_week(week)
    zone = ZoneInfo(tz)
    return (
        datetime.combine(monday, time(0), tzinfo=zone),
        datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone),
    )


def insight_window(week: str, tz: str, now: datetime, days: int = 7) -> tuple[datetime, datetime]:
    """The [start, end) a week's insight reads. A finished week: the whole week (local Monday
    to Monday). The week in progress: the last `days` days up to `now` (the seed's "last 7
    days"). A week that has not started raises `Invalid`."""
    start, end = week_bounds(week, tz)
    if start > now:
        raise Invalid(f"{week} has not started yet")
    if end <= now:
        return start, end
    return now - timedelta(days=days), now
