"""One chat turn in process, measured and profiled: `python -m bench.profile`.

A chat turn as a route runs it, through the run engine (submit, the real chat graph with the
production checkpointer and the chat turn's durability `exit`, finish), the real services on a
fresh embedded Postgres, the offline model and embedder with no simulated waits (so wall time is
the service's own work). It reports,
per turn: service CPU (`process_time`), Postgres CPU (its live processes), database round trips
(`bench/probe.py`: every wait on the server; a pipeline counts once) and pool checkout checks;
then a cProfile of further turns, self time grouped by package, and the top functions.

    python -m bench.profile                 # 40 measured turns, 40 profiled
    python -m bench.profile --turns 100 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.env import BenchPostgres, process_tree_cpu_s
from bench.probe import COUNTER, count_round_trips
from bench.sim import SimProfile, message
from bench.stats import mean, p50

ROOT = Path(__file__).resolve().parent.parent


def package_of(filename: str) -> str:
    """The package a profiled function belongs to: the top-level folder under site-packages,
    this project's top-level folder, or the standard library."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    p = Path(filename)
    parts = p.parts
    if "site-packages" in parts:
        name = parts[parts.index("site-packages") + 1]
        return name.removesuffix(".py").split(".")[0]
    try:
        rel = p.resolve().relative_to(ROOT)
        return f"ours:{rel.parts[0]}" if len(rel.parts) > 1 else "ours"
    except ValueError:
        return "stdlib:" + (p.parent.name if p.parent.name not in ("lib", "python3.11") else p.stem)


def by_package(stats: pstats.Stats, turns: int) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    # `Stats.stats` is a public attribute of CPython's pstats that typeshed does not declare.
    for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        totals[package_of(filename)] += tt
    return sorted(((k, v * 1000 / turns) for k, v in totals.items()), key=lambda kv: -kv[1])


def top_functions(stats: pstats.Stats, turns: int, n: int) -> list[tuple[str, float, float]]:
    rows = []
    # `Stats.stats`: see by_package.
    for (filename, line, name), (_cc, nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            (f"{package_of(filename)} {Path(filename).name}:{line} {name}", tt * 1000 / turns, nc / turns)
        )
    return sorted(rows, key=lambda r: -r[1])[:n]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.inproc import Turns
    from bench.sections import bench_settings
    from bench.seed import migrate, seed_users
    from core.logging import configure_logging
    from graphs.chat import build
    from services.container import Services

    configure_logging("WARNING")
    pg = BenchPostgres()
    try:
        url = pg.database("bench_profile")
        migrate(url)
        settings = bench_settings(url, SimProfile(0, 0, 0, 0, 7), None, run_async_commit=args.async_commit)
        users = list(seed_users(url, [f"prof-{i}" for i in range(8)], dim=settings.embedding_dim).values())
        threads: dict[uuid.UUID, str | None] = dict.fromkeys(users)
        svc = await Services.open(settings)
        if args.locked_saver:  # the before of the lever: upstream's saver, its lock and commits
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

            svc.checkpointer = AsyncPostgresSaver(svc.db.pool, serde=svc.checkpointer.serde)
        turns = Turns(svc, build(settings).compile(checkpointer=svc.checkpointer))
        await turns.__aenter__()
        try:
            n = 0

            async def turn() -> dict[str, Any]:
                """One chat turn as a route runs it: a run of the engine, submit to finish."""
                nonlocal n
                n += 1
                user = users[n % len(users)]
                out = await turns.run(user, threads[user], message(n, f"prof{n}"), args.durability)
                threads[user] = out["thread_id"]
                if out.get("degraded"):
                    raise RuntimeError(f"a benchmark turn degraded: {out['degraded']}")
                return out

            for _ in range(args.warmup):
                await turn()
            gc.collect()
            gc.freeze()  # as the API's lifespan does after start-up
            pg_pid = pg.postmaster_pid()
            samples: list[dict[str, float]] = []
            with count_round_trips((svc.db.pool,)):
                for _ in range(args.turns):
                    pg0 = process_tree_cpu_s(pg_pid)
                    rt0, chk0 = COUNTER.snapshot()
                    c0, t0 = time.process_time(), time.perf_counter()
                    await turn()
                    t1, c1 = time.perf_counter(), time.process_time()
                    rt1, chk1 = COUNTER.snapshot()
                    pg1 = process_tree_cpu_s(pg_pid)
                    samples.append(
                        {
                            "wall_ms": (t1 - t0) * 1000,
                            "cpu_ms": (c1 - c0) * 1000,
                            "pg_cpu_ms": (pg1 - pg0) * 1000
                            if pg0 is not None and pg1 is not None
                            else float("nan"),
                            "round_trips": rt1 - rt0,
                            "pool_checks": chk1 - chk0,
                        }
                    )
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.profile_turns):
                await turn()
            prof.disable()
        finally:
            await turns.__aexit__()
            await svc.close()
    finally:
        pg.close()
    stats = pstats.Stats(prof)
    if args.pstats:
        stats.dump_stats(args.pstats)
    return {
        "durability": args.durability,
        "locked_saver": args.locked_saver,
        "async_commit": args.async_commit,
        "turns": args.turns,
        "wall_ms_p50": p50([s["wall_ms"] for s in samples]),
        "cpu_ms_per_turn": mean([s["cpu_ms"] for s in samples]),
        "pg_cpu_ms_per_turn": mean([s["pg_cpu_ms"] for s in samples]),
        "round_trips_per_turn": mean([s["round_trips"] for s in samples]),
        "pool_checks_per_turn": mean([s["pool_checks"] for s in samples]),
        "profile_turns": args.profile_turns,
        "profiled_ms_per_turn": sum(v for _, v in by_package(stats, args.profile_turns)),
        "by_package_ms": by_package(stats, args.profile_turns),
        "top_functions": top_functions(stats, args.profile_turns, args.top),
        "raw": samples,
    }


def report(r: dict[str, Any]) -> str:
    lines = [
        f"chat turn in process, durability {r['durability']}, {r['turns']} turns, no simulated waits"
        + "".join(f", {k}" for k in ("locked_saver", "async_commit") if r.get(k)),
        f"  service CPU {r['cpu_ms_per_turn']:.1f} ms/turn, "
        f"Postgres CPU {r['pg_cpu_ms_per_turn']:.1f} ms/turn, wall p50 {r['wall_ms_p50']:.1f} ms",
        f"  round trips {r['round_trips_per_turn']:.1f}/turn (pool checks {r['pool_checks_per_turn']:.1f})",
        f"cProfile over {r['profile_turns']} turns: "
        f"{r['profiled_ms_per_turn']:.1f} ms/turn (with profiler overhead)",
    ]
    lines += [f"  {ms:7.2f} ms  {pkg}" for pkg, ms in r["by_package_ms"][:14]]
    lines.append("top functions by self time (ms/turn, calls/turn):")
    lines += [f"  {ms:6.2f} {calls:8.1f}  {name}" for name, ms, calls in r["top_functions"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--turns", type=int, default=40)
    p.add_argument("--profile-turns", type=int, default=40)
    p.add_argument("--warmup", type=int, default=8)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--durability", default="exit", choices=("exit", "async", "sync"))
    p.add_argument("--locked-saver", action="store_true", help="upstream's AsyncPostgresSaver instead")
    p.add_argument("--async-commit", action="store_true", help="RUN_ASYNC_COMMIT=true")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    p.add_argument("--pstats", type=Path, default=None, help="also dump the raw profile here (pstats)")
    args = p.parse_args(argv)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(args))
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
