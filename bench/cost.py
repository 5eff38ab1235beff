"""Cost model: LLM calls, tokens and dollars per chat turn and per simulated active user-day.

An active user-day = 10 chat turns on one thread + 1 adaptive mission + the daily job
(nightly maintenance) + the weekly jobs (insights, quests) divided by 7. A user who is active gets
no nudge (nudges are for 2+ days of inactivity), so nudges are priced per nudge, beside the day;
so are a goal (creation + decomposition) and a narrative beat (premium model), which happen when
the user acts, not every day.

Every workflow runs for real through the registry and `graphs.runs.execute`, on the offline model
(whose token counts are ~4 characters per token of the real prompts and answers); LLM usage is
read back from the `llm_usage` ledger (one row per call, or per turn for chat, with the number of
calls it covers), priced with MODEL_PRICES (defaults:
DOMAIN.md). The day is priced twice: each call at its own model's price, and everything at
gpt-4o-mini's (the target's basis). A workflow that is missing or fails is reported as such and
left out of the day (the day is then marked incomplete)."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.env import BenchPostgres
from bench.sections import bench_settings
from bench.seed import migrate, seed_users
from bench.sim import SimProfile, message
from domain.cost import price_usd
from nodes.context import Context
from services.container import Services

CHEAP = "gpt-4o-mini"
DAY: tuple[tuple[str, float], ...] = (
    ("chat", 10),
    ("adaptive_mission", 1),
    ("nightly_maintenance", 1),
    ("weekly_insights", 1 / 7),
    ("weekly_quests", 1 / 7),
)


def _usage_since(url: str, last_id: int) -> tuple[list[dict[str, Any]], int]:
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            """SELECT id, site, model, input_tokens, output_tokens, cost_usd::float AS cost_usd, calls
               FROM llm_usage WHERE id > %s ORDER BY id""",
            (last_id,),
        ).fetchall()
    return rows, max([last_id, *(r["id"] for r in rows)])


def _totals(rows: list[dict[str, Any]], prices: dict[str, tuple[float, float]]) -> dict[str, Any]:
    sites: dict[str, int] = {}
    for r in rows:
        sites[r["site"]] = sites.get(r["site"], 0) + r["calls"]
    return {
        "calls": sum(r["calls"] for r in rows),  # a chat turn's one row covers its calls
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "cost_usd": sum(r["cost_usd"] for r in rows),
        "cost_usd_at_mini": sum(
            price_usd(CHEAP, r["input_tokens"], r["output_tokens"], prices) for r in rows
        ),
        "models": sorted({r["model"] for r in rows}),
        "sites": sites,
    }


async def cost_section(
    pg: BenchPostgres,
    profile: SimProfile,
    args: argparse.Namespace,
    inproc: dict[str, Any] | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from bench.inproc import chat_inputs
    from graphs.registry import WORKFLOWS
    from graphs.runs import execute, invoke

    url = pg.database("bench_cost")
    migrate(url)
    settings = bench_settings(url, SimProfile(0, 0, 0, 0, profile.seed), 10)
    prices = dict(settings.model_prices)
    users = seed_users(url, ["cost-active", "cost-idle"], dim=settings.embedding_dim, memories_per_user=24)
    active, idle = users["cost-active"], users["cost-idle"]
    with psycopg.connect(url, autocommit=True) as conn:  # the idle user last did anything 4 days ago
        conn.execute("UPDATE progress_events SET at = at - interval '5 days' WHERE user_id = %s", (idle,))
    svc = await Services.open(settings)
    graphs = {n: w.build().compile(checkpointer=svc.checkpointer, name=n) for n, w in WORKFLOWS.items()}
    out: dict[str, Any] = {"workflows": {}, "prices": prices}
    last = 0
    now = datetime.now(UTC)
    week = f"{now.isocalendar().year}-W{now.isocalendar().week:02d}"

    async def run(name: str, user: uuid.UUID, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal last
        if name not in graphs:
            return {"error": "not in the registry"}
        w = WORKFLOWS[name]
        try:
            await execute(
                graphs[name],
                svc,
                workflow=name,
                user_id=str(user),
                payload=payload,
                run_id=uuid.uuid4(),
                run_config=w.run_config(settings) if w.run_config else None,
            )
            error = None
        except Exception as err:  # reported, not fatal: the rest of the model still runs
            error = f"{type(err).__name__}: {err}"[:300]
        rows, last = _usage_since(url, last)
        return {**_totals(rows, prices), **({"error": error} if error else {})}

    try:
        # Chat: 10 turns on one thread (history grows as it does over a day).
        thread = await svc.threads.create(active)
        turns = []
        for i in range(10):
            ctx = Context(
                user_id=str(active), thread_id=thread, timezone="UTC", now=datetime.now(UTC), services=svc
            )
            await invoke(graphs["chat"], chat_inputs(message(i, f"cost{i}")), ctx)
            rows, last = _usage_since(url, last)
            turns.append(_totals(rows, prices))
        out["chat_turns"] = turns
        chat = {k: sum(t[k] for t in turns) / len(turns) for k in ("calls", "input_tokens", "output_tokens")}
        chat["cost_usd"] = sum(t["cost_usd"] for t in turns) / len(turns)
        chat["cost_usd_at_mini"] = sum(t["cost_usd_at_mini"] for t in turns) / len(turns)
        chat["models"] = sorted({m for t in turns for m in t["models"]})
        out["workflows"]["chat"] = chat
        log(
            f"cost: chat {chat['calls']:.1f} calls, "
            f"{chat['input_tokens']:.0f}+{chat['output_tokens']:.0f} tokens per turn"
        )

        # A goal first (adaptive missions and weekly quests need one), priced per goal.
        goal_id = str(uuid.uuid4())
        creation = await run(
            "goal_creation",
            active,
            {
                "goal_id": goal_id,
                "title": "Run a half marathon",
                "description": "Build up to 21 km by spring, three runs a week.",
                "value_category": "health",
                "target_date": (now + timedelta(days=120)).date().isoformat(),
            },
        )
        decomposition = await run("goal_decomposition", active, {"goal_id": goal_id})
        out["workflows"]["goal_creation"] = creation
        out["workflows"]["goal_decomposition"] = decomposition
        out["workflows"]["adaptive_mission"] = await run("adaptive_mission", active, {"feeling": None})
        out["workflows"]["nightly_maintenance"] = await run(
            "nightly_maintenance", active, {"day": now.date().isoformat()}
        )
        out["workflows"]["weekly_insights"] = await run("weekly_insights", active, {"week": None})
        out["workflows"]["weekly_quests"] = await run("weekly_quests", active, {"week": week})
        out["workflows"]["narrative_beat"] = await run("narrative_beat", active, {"goal_id": goal_id})
        out["workflows"]["personalized_nudge"] = await run("personalized_nudge", idle, {})
    finally:
        await svc.close()

    day: dict[str, Any] = {"calls": 0.0, "input_tokens": 0.0, "output_tokens": 0.0, "cost_usd": 0.0}
    day["cost_usd_at_mini"] = 0.0
    missing = []
    for name, per_day in DAY:
        w = out["workflows"].get(name)
        if not w or "error" in w:
            missing.append(name)
            continue
        for k in ("calls", "input_tokens", "output_tokens", "cost_usd", "cost_usd_at_mini"):
            day[k] += w[k] * per_day
    day["complete"] = not missing
    day["missing"] = missing
    day["recipe"] = {name: per_day for name, per_day in DAY}
    out["active_user_day"] = day
    per_goal = [out["workflows"].get(n, {}) for n in ("goal_creation", "goal_decomposition")]
    out["per_goal"] = {
        k: sum(p.get(k, 0) for p in per_goal) for k in ("calls", "input_tokens", "output_tokens", "cost_usd")
    }
    log(
        f"cost: active user-day {day['calls']:.1f} calls, ${day['cost_usd']:.5f} "
        f"(${day['cost_usd_at_mini']:.5f} at {CHEAP} prices)"
        + ("" if day["complete"] else f"; missing {missing}")
    )
    if inproc and "fanout" in inproc:
        out["chat_inproc_cross_check"] = {
            k: inproc["fanout"].get(k)
            for k in (
                "llm_calls_per_turn",
                "input_tokens_per_turn",
                "output_tokens_per_turn",
                "cost_usd_per_turn",
            )
        }
    return out
