"""`python -m bench` (`make bench`): every measurement in one run, one table, one JSON file.

    python -m bench                 # everything (a few minutes on 2 cores)
    python -m bench --quick         # a short smoke run of the same code (numbers are rough)
    python -m bench --only inproc,retrieval
    python -m bench --levers        # also the before/after capacity of each server-side lever
    python -m bench --only capacity --levers locked_saver,async_commit --skip-stock

Sections: `inproc` (fan-out, framework and checkpointer overhead, durability, the saver lock),
`capacity` (the real API on uvicorn vs a stock skeleton, open-loop load from another process, the
tail at 70 % of capacity, overload at 2x and 4x with recovery, and two API processes with a
worker), `retrieval` (memory recall at 10k and 100k memories), `cost`
(LLM calls, tokens and dollars per chat turn and per active user-day)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.env import BenchPostgres, load_average, machine, versions
from bench.sim import SimProfile

SECTIONS = ("inproc", "capacity", "retrieval", "cost")
LEVERS = (
    "locked_saver",
    "async_commit",
    "no_gc_freeze",
    "asyncio_h11",
    "durability_async",
    "no_pool_check",
    "log_warning",
    "skeleton_pooled_saver",
)
RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short smoke run (rough numbers)")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    p.add_argument(
        "--levers",
        nargs="?",
        const="all",
        default="",
        help=f"also measure server levers' before/after: all, or a comma-separated subset of {LEVERS}",
    )
    p.add_argument("--skip-stock", action="store_true", help="capacity: do not measure the stock skeleton")
    p.add_argument("--skip-overload", action="store_true", help="capacity: no overload and recovery steps")
    p.add_argument(
        "--skip-scale-out", action="store_true", help="capacity: not against two API processes and a worker"
    )
    p.add_argument("--first-token-ms", type=float, default=SimProfile.first_token_ms)
    p.add_argument("--token-ms", type=float, default=SimProfile.token_ms)
    p.add_argument("--embed-ms", type=float, default=SimProfile.embed_ms)
    p.add_argument("--jitter", type=float, default=SimProfile.jitter)
    p.add_argument("--seed", type=int, default=SimProfile.seed)
    p.add_argument(
        "--pool-max", type=int, default=None, help="DB_POOL_MAX of the service under test (default: its own)"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON results")
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    args.levers = list(LEVERS) if args.levers == "all" else [x for x in args.levers.split(",") if x]
    if set(args.levers) - set(LEVERS):
        p.error(f"unknown levers {sorted(set(args.levers) - set(LEVERS))}; choose from {LEVERS}")
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    return args


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_async(coro: Any) -> Any:
    """Run on uvloop, as the service does under `python -m api`."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def run_section(
    section: str, pg: BenchPostgres, profile: SimProfile, args: argparse.Namespace, results: dict[str, Any]
) -> Any:
    if section == "inproc":
        from bench.sections import inproc_section

        return run_async(inproc_section(pg, profile, args, log))
    if section == "capacity":
        from bench.capacity import capacity_section

        return capacity_section(pg, profile, args, log)
    if section == "retrieval":
        from bench.retrieval import retrieval_section

        return run_async(retrieval_section(pg, args, log))
    from bench.cost import cost_section

    return run_async(cost_section(pg, profile, args, results.get("inproc"), log))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DATABASE_URL"):  # offline, our own Postgres
        os.environ.pop(var, None)
    profile = SimProfile(args.first_token_ms, args.token_ms, args.embed_ms, args.jitter, args.seed)
    started = time.perf_counter()
    log(f"starting: sections {args.sections}, {'quick' if args.quick else 'full'} run, profile {profile}")
    pg = BenchPostgres()
    results: dict[str, Any] = {
        "meta": {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "sections": args.sections,
            "machine": machine(),
            "versions": versions(),
            "postgres": pg.settings(),
            "profile": profile.as_dict(),
            "pool_max": args.pool_max,
        }
    }
    try:
        for section in args.sections:
            try:
                results[section] = run_section(section, pg, profile, args, results)
            except Exception as err:  # one broken section must not lose the others' numbers
                log(f"{section} failed: {type(err).__name__}: {err}")
                results.setdefault("errors", {})[section] = traceback.format_exc()
    finally:
        pg.close()
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    results["meta"]["load_average_at_end"] = load_average()

    from bench.report import table, write_json

    print(table(results))
    path = write_json(results, args.out)
    log(f"done in {results['meta']['seconds']} s; raw samples in {path}")
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    raise SystemExit(main())
