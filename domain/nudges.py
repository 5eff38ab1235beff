"""Nudge rules (DOMAIN.md): who is nudged, on which channel, when, how often, and in what words.
Pure functions, no I/O."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from typing import Literal
from zoneinfo import ZoneInfo

Channel = Literal["in_app", "email", "sms"]

MIN_DAYS_INACTIVE = 2
MAX_PER_STREAK = 3
DEFAULT_QUIET_HOURS = ("22:00", "08:00")
DEFAULT_SEND_TIME = dt.time(10, 0)  # when a user has cleared their quiet hours


def days_inactive(last_active: dt.datetime | None, now: dt.datetime, tz: str) -> int:
    """Whole local days since the last activity (a user active yesterday is 1 day inactive).
    Never active counts from `now`: 0 (a brand-new user is not nudged)."""
    if last_active is None:
        return 0
    zone = ZoneInfo(tz)
    return (now.astimezone(zone).date() - last_active.astimezone(zone).date()).days


def nudge_channel(inactive_days: int, opted_in: Collection[str]) -> Channel | None:
    """2-3 days in-app, 4-6 email, 7+ sms; only channels the user opted into (else in-app).
    None: not inactive long enough to nudge."""
    if inactive_days < MIN_DAYS_INACTIVE:
        return None
    wanted: Channel = "in_app" if inactive_days <= 3 else "email" if inactive_days <= 6 else "sms"
    return wanted if wanted == "in_app" or wanted in opted_in else "in_app"


def _parse(hhmm: str) -> dt.time:
    hour, minute = hhmm.split(":")
    return dt.time(int(hour), int(minute))


def in_quiet_hours(local: dt.time, start: dt.time, end: dt.time) -> bool:
    if start == end:
        return False
    if start < end:  # e.g. 13:00-15:00
        return start <= local < end
    return local >= start or local < end  # across midnight, e.g. 22:00-08:00


def send_time(
    now: dt.datetime, tz: str, quiet_hours: tuple[str, str] | None = DEFAULT_QUIET_HOURS
) -> dt.datetime:
    """Now, unless that is inside the user's quiet hours: then the end of quiet hours (local,
    DST-safe). A user who cleared their quiet hours is nudged at 10:00 local (today if still
    ahead, else tomorrow). Returns an aware UTC datetime."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    if quiet_hours is None:
        target = local.replace(hour=DEFAULT_SEND_TIME.hour, minute=0, second=0, microsecond=0)
        if target <= local:
            target = _at(local.date() + dt.timedelta(days=1), DEFAULT_SEND_TIME, zone)
        return target.astimezone(dt.UTC)
    start, end = _parse(quiet_hours[0]), _parse(quiet_hours[1])
    if not in_quiet_hours(local.time(), start, end):
        return now.astimezone(dt.UTC)
    day = local.date() if local.time() < end else local.date() + dt.timedelta(days=1)
    return _at(day, end, zone).astimezone(dt.UTC)


def _at(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    # Wall-clock time in the zone; a time skipped by a DST jump lands just after the jump.
    return dt.datetime.combine(day, time, tzinfo=zone)


def nudge_allowed(*, sent_in_streak: int, sent_today: int, max_per_day: int) -> tuple[bool, str]:
    if sent_in_streak >= MAX_PER_STREAK:
        return False, f"already nudged {sent_in_streak} times in this inactive streak (max {MAX_PER_STREAK})"
    if sent_today >= max_per_day:
        return False, f"already nudged {sent_today} times today (max {max_per_day})"
    return True, "ok"


_SHAMING = [
    r"\byou(?:'ve| have)? missed\b",
    r"\byou (?:haven't|have not|didn't|did not|never)\b",
    r"\b\d+\s+days?\b.*\b(?:missed|gone|away|absent|inactive|without)\b",
    r"\b(?:missed|gone|away|absent|inactive)\b.*\b\d+\s+days?\b",
    r"\byou(?:'ve| have)? (?:failed|fallen behind|given up|disappeared)\b",
    r"\byou(?:'ve| have)? been (?:gone|away|absent|inactive|slacking)\b",
    r"\b(?:lazy|disappoint\w*|shame\w*|guilt\w*|slacking|excuses?|falling behind)\b",
    r"\bwhere have you been\b",
]
_SHAMING_RE = re.compile("|".join(_SHAMING), re.IGNORECASE)


def shaming_phrase(message: str) -> str | None:
    """The first shaming phrase in a nudge ("you missed 3 days", "lazy"...), or None."""
    match = _SHAMING_RE.search(message)
    return match.group(0) if match else None
