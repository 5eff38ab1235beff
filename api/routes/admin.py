"""What admins see of a user's model spend: the usage ledger per day and the daily budget guard."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query

from api.deps import AdminUser, Svc
from api.errors import responses
from api.schemas import UsageReport

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/usage/{user_id}", response_model=UsageReport, responses=responses(404))
async def usage(
    user_id: uuid.UUID, _: AdminUser, svc: Svc, days: Annotated[int, Query(ge=1, le=90)] = 7
) -> dict:
    """Admin only: the user's spend per local day (calls, tokens, dollars, models), today's total
    against `LLM_DAILY_BUDGET_USD`, and whether the guard is on (their runs take the free path)."""
    tz = await svc.users.timezone(user_id)
    if tz is None:
        raise HTTPException(404, "user not found")
    midnight = datetime.now(UTC).astimezone(ZoneInfo(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = await svc.usage.by_day(user_id, midnight - timedelta(days=days - 1), tz)
    today = rows[0]["cost_usd"] if rows and rows[0]["day"] == midnight.date() else 0.0
    budget = svc.settings.llm_daily_budget_usd
    return {
        "user_id": str(user_id),
        "timezone": tz,
        "budget_usd": budget,
        "today_usd": today,
        "over_budget": bool(budget) and today >= budget,
        "days": [{**r, "day": r["day"].isoformat()} for r in rows],
    }
