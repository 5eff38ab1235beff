"""The one table `make bench` prints, and the JSON file with everything (raw samples included)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGETS = {
    "fanout": 1.025,
    "round_trips": 12.0,
    "service_cpu_ms": 20.0,
    "pg_cpu_ms": 6.0,
    "overload_goodput": 0.9,
    "recovery_s": 2.0,
    "capacity_ratio": 1.5,
    "tail": 1.15,
    "retrieval_p95_ms": 20.0,
    "calls_per_turn": 2.0,
    "usd_per_day": 0.01,
}


def write_json(results: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"bench-{stamp}.json"
    text = json.dumps(results, indent=1, default=str)
    path.write_text(text)
    (folder / "latest.json").write_text(text)
    return path


def f(x: Any, digits: int = 1, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "n/a"
    return f"{x:.{digits}f}{unit}"


def verdict(value: float | None, target: float, *, at_most: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    ok = value <= target if at_most else value >= target
    return "met" if ok else "MISSED"


def _g(d: dict[str, Any] | None, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def table(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m, prof, pgs = meta["machine"], meta["profile"], meta["postgres"]
    rows: list[tuple[str, str, str, str]] = []

    def row(metric: str, value: str, target: str = "", status: str = "") -> None:
        rows.append((metric, value, target, status))

    ip = results.get("inproc")
    if ip:
        fan, seq, nock = ip["fanout"], ip["sequential"], ip["no_checkpointer"]
        ratio = fan["wall_ms"]["p50"] / fan["critical_path_ms_p50"]
        row(
            "Fan-out: p50 wall / critical path",
            f"{ratio:.3f}  ({f(fan['wall_ms']['p50'])} / {f(fan['critical_path_ms_p50'])} ms, "
            f"+{f(fan['wall_ms']['p50'] - fan['critical_path_ms_p50'])} ms)",
            f"<= {TARGETS['fanout']}",
            verdict(ratio, TARGETS["fanout"]),
        )
        row(
            "Fan-out: speedup over the same steps in sequence",
            f"{seq['wall_ms']['p50'] / fan['wall_ms']['p50']:.2f}x",
        )
        sk, ga = ip["skeleton_graph"], ip["asyncio_gather"]
        row(
            "Framework: graph vs asyncio.gather, p50 wall",
            f"+{f(sk['wall_ms']['p50'] - ga['wall_ms']['p50'])} ms "
            f"({sk['wall_ms']['p50'] / ga['wall_ms']['p50']:.3f}x)",
        )
        row(
            "Framework: CPU per run, graph / gather",
            f"{f(sk['cpu_ms_per_turn'])} / {f(ga['cpu_ms_per_turn'])} ms",
        )
        row(
            "Per turn (engine, production checkpointer): DB round trips",
            f"{f(fan['round_trips_per_turn'])} (pool checks {f(fan['pool_checks_per_turn'])})",
            f"<= {TARGETS['round_trips']:.0f}",
            verdict(fan["round_trips_per_turn"], TARGETS["round_trips"]),
        )
        row(
            "Per turn (engine, production checkpointer): service CPU",
            f"{f(fan['cpu_ms_per_turn'])} ms",
            f"<= {TARGETS['service_cpu_ms']:.0f} ms",
            verdict(fan["cpu_ms_per_turn"], TARGETS["service_cpu_ms"]),
        )
        row(
            "Per turn (engine, production checkpointer): Postgres CPU",
            f"{f(fan['pg_cpu_ms_per_turn'])} ms",
            f"<= {TARGETS['pg_cpu_ms']:.0f} ms",
            verdict(fan["pg_cpu_ms_per_turn"], TARGETS["pg_cpu_ms"]),
        )
        row(
            "Checkpointer: service CPU per turn, with / without",
            f"{f(fan['cpu_ms_per_turn'])} / {f(nock['cpu_ms_per_turn'])} ms "
            f"(+{f(fan['cpu_ms_per_turn'] - nock['cpu_ms_per_turn'])})",
        )
        row(
            "Checkpointer: Postgres CPU per turn, with / without",
            f"{f(fan['pg_cpu_ms_per_turn'])} / {f(nock['pg_cpu_ms_per_turn'])} ms",
        )
        row(
            "Checkpointer: DB round trips per turn, with / without",
            f"{f(fan['round_trips_per_turn'])} / {f(nock['round_trips_per_turn'])} "
            f"(pool checks {f(fan['pool_checks_per_turn'])} / {f(nock['pool_checks_per_turn'])})",
        )
        for mode in ("sync", "async"):
            d = ip[f"durability_{mode}"]
            row(
                f"Durability {mode} vs exit (production): p50, CPU, round trips",
                f"{f(d['wall_ms']['p50'])} vs {f(fan['wall_ms']['p50'])} ms; {f(d['cpu_ms_per_turn'])} vs "
                f"{f(fan['cpu_ms_per_turn'])} ms; {f(d['round_trips_per_turn'])} vs "
                f"{f(fan['round_trips_per_turn'])}",
            )
        for name, label in (
            ("no_pool_check", "no pool check"),
            ("async_no_pool_check", "async + no pool check"),
        ):
            d = ip.get(name)
            if d:
                row(
                    f"Pool checkout check off ({label}): p50, CPU, round trips",
                    f"{f(d['wall_ms']['p50'])} ms; {f(d['cpu_ms_per_turn'])} ms; "
                    f"{f(d['round_trips_per_turn'])}",
                )
        for name, label in (
            ("locked_saver", "upstream saver"),
            ("async_commit", "async commit"),
        ):
            d = ip.get(name)
            if d:
                row(
                    f"Lever ({label}) vs production: p50, CPU, Postgres CPU",
                    f"{f(d['wall_ms']['p50'])} vs {f(fan['wall_ms']['p50'])} ms; "
                    f"{f(d['cpu_ms_per_turn'])} vs {f(fan['cpu_ms_per_turn'])} ms; "
                    f"{f(d['pg_cpu_ms_per_turn'])} vs {f(fan['pg_cpu_ms_per_turn'])} ms",
                )
        lock = ip.get("checkpointer_lock") or {}
        stock_saver, pooled = lock.get("AsyncPostgresSaver"), lock.get("PooledPostgresSaver")
        prod_saver = lock.get("async_commit")
        if stock_saver and pooled:
            row(
                f"Saver: turns/s, {stock_saver['concurrency']} workers, CPU-saturated (in-process)",
                f"{f(stock_saver['turns_per_s'])} -> {f(pooled['turns_per_s'])} "
                f"({pooled['turns_per_s'] / stock_saver['turns_per_s']:.2f}x; p95 "
                f"{f(stock_saver['latency_ms']['p95'], 0)} -> {f(pooled['latency_ms']['p95'], 0)} ms)"
                + (
                    f"; + async commit {f(prod_saver['turns_per_s'])} "
                    f"(p95 {f(prod_saver['latency_ms']['p95'], 0)} ms)"
                    if prod_saver
                    else ""
                ),
            )

        ops = ip.get("checkpointer_ops") or {}
        a, b = ops.get("AsyncPostgresSaver"), ops.get("PooledPostgresSaver")
        if a and b:
            row(
                f"Saver ceiling: checkpoint calls/s, {a['tasks']} tasks (no turn)",
                f"AsyncPostgresSaver {f(a['calls_per_s'], 0)} -> "
                f"PooledPostgresSaver {f(b['calls_per_s'], 0)} "
                f"({b['calls_per_s'] / a['calls_per_s']:.2f}x)",
            )
        sync = ip.get("sync_nodes")
        if sync:
            row("Sync (thread-pool) nodes in registered graphs", f"{len(sync['sync'])} of {sync['nodes']}")

    cap = results.get("capacity")
    if cap:
        ours, stock = cap["ours"], cap.get("stock") or {}
        ratio = cap.get("ratio_to_stock")
        row(
            "Capacity: req/s at p95 <= 1.25 x crit. path, ours / stock",
            f"{f(ours['capacity_rps'])} / {f(stock.get('capacity_rps'))}  (ratio {f(ratio, 2)})",
            f">= {TARGETS['capacity_ratio']}x",
            verdict(ratio, TARGETS["capacity_ratio"], at_most=False),
        )
        tail = ours.get("tail_norm_p99_over_p50")
        row(
            "Tail: p99/p50 of latency/crit. path at 70 %, ours / stock",
            f"{f(tail, 3)} / {f(stock.get('tail_norm_p99_over_p50'), 3)}  (raw latency: "
            f"{f(ours.get('tail_p99_over_p50'), 3)} / {f(stock.get('tail_p99_over_p50'), 3)})",
            f"<= {TARGETS['tail']}",
            verdict(tail, TARGETS["tail"]),
        )
        for name in ("ours", "stock"):
            t = (cap.get(name) or {}).get("tail")
            if t:
                row(
                    f"  {name} at 70 %: p50 / p99, CPU per request",
                    f"{f(t['latency_ms']['p50'], 0)} / {f(t['latency_ms']['p99'], 0)} ms; "
                    f"{f(t['server_cpu_ms_per_req'])} ms server + {f(t['pg_cpu_ms_per_req'])} ms Postgres",
                )
        over = ours.get("overload") or {}
        for key in sorted(k for k in over if k.startswith("x")):
            o = over[key]
            label = f"Overload {o['factor']:g}x ({f(o['rate'])} req/s, {over['hot_s']:g} s)"
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(o["statuses"].items()))
            n429 = o["statuses"].get("429", 0)
            row(
                f"{label}: goodput, % of capacity",
                f"{f(o['goodput_rps'])} req/s ({f(o['goodput_of_capacity'] * 100, 0)} %); answered p50 / p95 "
                f"{f(o['ok_latency_ms_hot']['p50'], 0)} / {f(o['ok_latency_ms_hot']['p95'], 0)} ms",
                f">= {TARGETS['overload_goodput'] * 100:.0f} %" if o["factor"] == 2 else "",
                verdict(o["goodput_of_capacity"], TARGETS["overload_goodput"], at_most=False)
                if o["factor"] == 2
                else "",
            )
            row(
                f"  {o['factor']:g}x: statuses; 429s with Retry-After",
                f"{statuses}; {n429 - o['429_without_retry_after']} of {n429}"
                + (f" (p50 {f(o['rejected_latency_ms']['p50'], 0)} ms)" if n429 else ""),
                "0 but 429",
                "met" if o["errors_other_than_429"] == 0 and o["429_without_retry_after"] == 0 else "MISSED",
            )
            rec = o["recovery_s"]
            row(
                f"  {o['factor']:g}x: recovery once the load drops to {over['after_fraction'] * 100:.0f} %",
                f"{f(rec)} s" if rec is not None else f"not within {over['cool_s']:g} s",
                f"< {TARGETS['recovery_s']:g} s",
                "met" if rec is not None and rec < TARGETS["recovery_s"] else "MISSED",
            )
        scale = cap.get("scale_out")
        if scale:
            one, two = ours.get("capacity_rps"), scale.get("capacity_rps")
            at = scale.get("at_capacity") or {}
            row(
                "Scale-out: capacity, 2 API processes + worker / 1",
                f"{f(two)} / {f(one)} req/s ({f(two / one if one and two else None, 2)}x); at capacity: "
                f"cores busy {f((at.get('machine_busy') or math.nan) * 100, 0)} %, "
                f"{f(at.get('server_cpu_ms_per_req'))} ms API + {f(at.get('pg_cpu_ms_per_req'))} ms Postgres",
                "reported",
            )
            mine = ours.get("at_capacity") or {}
            if mine:
                row(
                    "  one process at its capacity",
                    f"cores busy {f((mine.get('machine_busy') or math.nan) * 100, 0)} %, "
                    f"{f(mine.get('server_cpu_ms_per_req'))} ms API + "
                    f"{f(mine.get('pg_cpu_ms_per_req'))} ms Postgres",
                )
        for name, d in cap.items():
            if name.startswith(("ours_", "stock_")) and isinstance(d, dict):
                row(
                    f"  lever before/after: {name}",
                    f"capacity {f(d['capacity_rps'])} (ours {f(ours['capacity_rps'])}); "
                    f"tail {f(d.get('tail_norm_p99_over_p50'), 3)} "
                    f"(ours {f(ours.get('tail_norm_p99_over_p50'), 3)})",
                )

    ret = results.get("retrieval")
    if ret:
        for size in ("10000", "100000"):
            d = ret.get(size)
            if not d:
                continue
            p95 = d["regular_ms"]["p95"]
            row(
                f"Retrieval at {int(size) // 1000}k memories: p50 / p95",
                f"{f(d['regular_ms']['p50'], 2)} / {f(p95, 2)} ms "
                f"(heaviest user: {f(d['heavy_ms']['p50'], 1)} / {f(d['heavy_ms']['p95'], 1)})",
                f"<= {TARGETS['retrieval_p95_ms']:.0f} ms" if size == "100000" else "",
                verdict(p95, TARGETS["retrieval_p95_ms"]) if size == "100000" else "",
            )

    cost = results.get("cost")
    if cost:
        chat = cost["workflows"]["chat"]
        row(
            "LLM calls per chat turn",
            f"{f(chat['calls'], 2)}",
            f"<= {TARGETS['calls_per_turn']:.0f}",
            verdict(chat["calls"], TARGETS["calls_per_turn"]),
        )
        row(
            "Tokens and cost per chat turn",
            f"{f(chat['input_tokens'], 0)} in + {f(chat['output_tokens'], 0)} out; ${chat['cost_usd']:.6f}",
        )
        day = cost["active_user_day"]
        row(
            "Active user-day (10 turns, 1 mission, jobs)",
            f"{f(day['calls'], 1)} calls, {f(day['input_tokens'], 0)} + {f(day['output_tokens'], 0)} tokens, "
            f"${day['cost_usd_at_mini']:.5f} at gpt-4o-mini" + ("" if day["complete"] else " (incomplete)"),
            f"<= ${TARGETS['usd_per_day']}",
            verdict(day["cost_usd_at_mini"], TARGETS["usd_per_day"]),
        )
        extras = [(n, cost["workflows"].get(n)) for n in ("personalized_nudge", "narrative_beat")]
        goal = cost.get("per_goal")
        parts = [f"{n.split('_')[-1]} ${d['cost_usd']:.5f}" for n, d in extras if d and "error" not in d]
        if goal:
            parts.append(f"goal (create + plan) ${goal['cost_usd']:.5f}")
        row("  occasional, per event", "; ".join(parts))

    for section in results.get("errors") or {}:
        row(f"{section}: FAILED", "see the log above and `errors` in the JSON")
    widths = [max(len(r[i]) for r in rows) for i in range(4)] if rows else [0, 0, 0, 0]
    head = (
        f"Delight orchestration benchmark, {meta['started_at']} "
        f"({'QUICK run' if meta['quick'] else 'full run'})\n"
        f"{m['nproc']} cores {m['cpu_model']}, {m['ram_gib']} GiB, Python {m['python']}, "
        f"Postgres {pgs['server_version']}; load average {m['load_average_at_start']} at start, "
        f"{meta.get('load_average_at_end')} at end\n"
        f"Simulated: LLM first token {prof['first_token_ms']:g} ms + {prof['token_ms']:g} ms per chunk, "
        f"embedding {prof['embed_ms']:g} ms, jitter +/-{prof['jitter'] * 100:g} %, seed {prof['seed']}; "
        f"DB_POOL_MAX {meta['pool_max'] or 'default'}\n"
    )
    lines = [head]
    sep = "  "
    lines.append(sep.join(h.ljust(w) for h, w in zip(("Metric", "Value", "Target", ""), widths, strict=True)))
    lines.append(sep.join("-" * w for w in widths))
    for r in rows:
        lines.append(sep.join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)
