"""Capacity and tail: the real chat endpoint (`python -m api`, uvicorn, one worker) and the stock
skeleton (bench/stock_app.py), each under open-loop Poisson load from a separate process
(bench/loadgen.py) on 127.0.0.1.

Capacity = the highest arrival rate at which no request fails and the p95 of latency over the
request's own critical path (bench/sim.py) is at most 1.25, i.e. p95 <= 1.25 x critical path.
The search raises the rate by 1.5x per step until a step fails (twice: a failed step is re-run
once), then bisects the last interval. Each step lasts 5 s and has at least 60 requests.
Tail = p99/p50 in a longer step at 70 % of that capacity, of the raw latency and of latency over
each request's own critical path (the target is judged on the latter: it leaves out the simulated
model's own variation, e.g. longer replies that quote a memory).
Overload (`run_overload`): the same process at 2x and 4x its capacity, then at half of it:
goodput, statuses, Retry-After, recovery. Scale-out: the same search against two API processes
on one database with an ARQ worker beside them, the load spread over both."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.env import (
    BenchPostgres,
    busy_fraction,
    free_port,
    machine_busy,
    process_cpu_s,
    process_tree_cpu_s,
)
from bench.seed import create_threads, migrate, seed_users
from bench.sim import MESSAGES, SimProfile
from bench.stats import p50, pct, summary
from core.settings import ROOT, Settings

BOUND = 1.25  # p95 latency / critical path
TAIL_FRACTION = 0.7
MIN_REQUESTS = 60
START_RATE = 8.0
USERS = 200


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    path: str
    port: int
    log_path: Path
    users: list[dict[str, str | None]]
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up; see {self.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become healthy in {timeout_s} s; see {self.log_path}")

    def stop(self) -> None:
        stop_process(self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


@dataclass
class Helper:
    """A process without HTTP beside the servers (the ARQ worker): ready when its log says so."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready: bytes
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up; see {self.log_path}")
            if self.ready in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready in {timeout_s} s; see {self.log_path}")

    def stop(self) -> None:
        stop_process(self.proc)


class LoadGen:
    """The load-generator process; one JSON spec in, one JSON result out, per step."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def step(self, spec: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the load generator exited")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Step:
    rate: float
    sent: int
    errors: int
    latency_ms: dict[str, float]
    critical_path_ms_p50: float
    p95_over_cp: float
    p50_over_cp: float
    p99_over_cp: float
    passed: bool
    server_cpu_ms_per_req: float | None
    pg_cpu_ms_per_req: float | None
    generator_lag_ms_p99: float
    machine_busy: float | None = None  # fraction of all cores busy during the step (/proc/stat)
    error_samples: list[str] = field(default_factory=list)
    raw_latency_ms: list[float] = field(default_factory=list)

    def brief(self) -> str:
        return (
            f"{self.rate:6.1f}/s n={self.sent:4d} err={self.errors} p50={self.latency_ms['p50']:.0f} "
            f"p95={self.latency_ms['p95']:.0f} ms p95/cp={self.p95_over_cp:.3f} "
            f"{'pass' if self.passed else 'FAIL'}"
        )


class Runner:
    """Steps of load against one server, or spread round robin over several serving one database
    (the scale-out row); CPU is summed over them."""

    def __init__(
        self, servers: list[Server], lg: LoadGen, profile: SimProfile, pg_pid: int | None, args: Any
    ):
        self.servers, self.lg, self.profile, self.pg_pid = servers, lg, profile, pg_pid
        self.server = servers[0]
        self.name = "+".join(s.name for s in servers)
        self.quick = args.quick
        self.step_s = 3.0 if args.quick else 5.0
        self.steps: list[Step] = []
        self.n = 0

    def spec(
        self, rate: float, duration_s: float, phases: list[tuple[float, float]] | None = None
    ) -> dict[str, Any]:
        self.n += 1
        seconds = sum(d for _, d in phases) if phases else duration_s
        top = max(r for r, _ in phases) if phases else rate
        return {
            "ports": [s.port for s in self.servers],
            "path": self.server.path,
            "rate": rate,
            "duration_s": duration_s,
            **({"phases": phases} if phases else {}),
            "max_requests": int(top * seconds * 2) + 10,
            "timeout_s": 15.0,
            "seed": self.profile.seed * 1000 + self.n,
            "users": self.server.users,
            "messages": list(MESSAGES),
            "nonce": f"{self.name}{self.n}",
            "connections": 512,
        }

    def cpu_s(self) -> float | None:
        values = [process_cpu_s(s.pid) for s in self.servers]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    def run(self, rate: float, duration_s: float | None = None, record: bool = True) -> Step:
        # At least MIN_REQUESTS per step, so one slow request cannot decide a p95 on its own.
        min_requests = MIN_REQUESTS // 2 if self.quick else MIN_REQUESTS
        spec = self.spec(rate, duration_s or max(self.step_s, min_requests / rate))
        cpu0, pg0, busy0 = self.cpu_s(), process_tree_cpu_s(self.pg_pid), machine_busy()
        result = self.lg.step(spec)
        cpu1, pg1, busy1 = self.cpu_s(), process_tree_cpu_s(self.pg_pid), machine_busy()
        reqs = result["requests"]
        lat = [r[1] for r in reqs]
        ok = [r for r in reqs if r[2] == 200]
        errors = [r for r in reqs if r[2] != 200]
        cps = [
            self.profile.critical_path_ms(
                f"{MESSAGES[r[5] % len(MESSAGES)]} (note {spec['nonce']}-{r[5]})", r[3]
            )
            for r in ok
        ]
        norm = [r[1] / cp for r, cp in zip(ok, cps, strict=True)]
        n = max(1, len(reqs))
        p95_norm = pct(norm, 95) if norm else math.inf
        step = Step(
            rate=rate,
            sent=len(reqs),
            errors=len(errors),
            latency_ms=summary(lat),
            critical_path_ms_p50=p50(cps),
            p95_over_cp=p95_norm,
            p50_over_cp=pct(norm, 50) if norm else math.inf,
            p99_over_cp=pct(norm, 99) if norm else math.inf,
            passed=not errors and p95_norm <= BOUND and len(reqs) > 0,
            server_cpu_ms_per_req=(cpu1 - cpu0) * 1000 / n if cpu0 is not None and cpu1 is not None else None,
            pg_cpu_ms_per_req=(pg1 - pg0) * 1000 / n if pg0 is not None and pg1 is not None else None,
            generator_lag_ms_p99=pct([r[4] for r in reqs], 99),
            machine_busy=busy_fraction(busy0, busy1),
            error_samples=sorted({str(r[3])[:120] for r in errors})[:5],
            raw_latency_ms=[round(x, 2) for x in lat],
        )
        if record:
            self.steps.append(step)
        self.settle()
        return step

    def settle(self, max_s: float = 30.0) -> None:
        """Wait until the server is idle: requests the generator gave up on are still being
        served (a disconnect does not cancel a turn), and must not spill into the next step."""
        deadline = time.monotonic() + max_s
        time.sleep(0.3)
        while time.monotonic() < deadline:
            c0 = self.cpu_s()
            time.sleep(0.5)
            c1 = self.cpu_s()
            if c0 is None or c1 is None or c1 - c0 < 0.05 * len(self.servers):  # under 10 % of a core each
                return

    def passes(self, rate: float, log: Callable[[str], None]) -> bool:
        """One step at `rate`; a failure is re-run once (a rate fails only if it fails twice),
        so a single stray stall on a shared machine does not end the search."""
        step = self.run(rate)
        log(f"  {self.name}: {step.brief()}")
        if step.passed or step.errors:
            return step.passed
        step = self.run(rate)
        log(f"  {self.name}: {step.brief()} (re-run)")
        return step.passed

    def capacity(self, start: float, log: Callable[[str], None], max_rate: float = 600.0) -> float | None:
        lo: float | None = None
        hi: float | None = None
        rate = start
        while rate <= max_rate:
            if self.passes(rate, log):
                lo = rate
                rate *= 1.5
            else:
                hi = rate
                break
        if lo is None and hi is not None:  # even the start failed: come down
            rate = hi
            while rate > 1.0 and lo is None:
                rate /= 1.5
                if self.passes(rate, log):
                    lo = rate
                else:
                    hi = rate
        for _ in range(2 if self.quick else 3):
            if lo is None or hi is None or hi / lo <= 1.08:
                break
            mid = math.sqrt(lo * hi)
            if self.passes(mid, log):
                lo = mid
            else:
                hi = mid
        return lo


def _g(d: dict[str, Any], *path: str) -> Any:
    found: Any = d
    for p in path:
        found = found.get(p) if isinstance(found, dict) else None
    return found


def step_dict(s: Step) -> dict[str, Any]:
    return dict(s.__dict__)


def measure_server(
    server: Server | list[Server],
    profile: SimProfile,
    pg: BenchPostgres,
    args: Any,
    log: Callable[[str], None],
    start: float,
    *,
    overload: bool = False,
    helpers: tuple[Helper, ...] = (),
) -> dict[str, Any]:
    """The capacity search and the tail step against a server (or several on one database,
    `helpers` started beside them); with `overload`, the overload and recovery steps too."""
    servers = server if isinstance(server, list) else [server]
    name = "+".join(s.name for s in servers)
    log(f"capacity: starting {name}")
    lg: LoadGen | None = None
    try:
        for h in helpers:
            h.start()
        for s in servers:
            s.start()
        lg = LoadGen()
        runner = Runner(servers, lg, profile, pg.postmaster_pid(), args)
        warm = runner.run(max(2.0, start / 2), duration_s=2.0 if args.quick else 3.0, record=False)
        log(f"  {name}: warm-up {warm.brief()}")
        cap = runner.capacity(start, log)
        tail: Step | None = None
        if cap:
            tail = runner.run(cap * TAIL_FRACTION, duration_s=5.0 if args.quick else 10.0, record=False)
            log(f"  {name}: tail at 70%: {tail.brief()}")
        passed = [st for st in runner.steps if st.passed and cap and st.rate == cap]
        return {
            "capacity_rps": cap,
            "bound": BOUND,
            "steps": [step_dict(s) for s in runner.steps],
            "at_capacity": step_dict(passed[-1]) if passed else None,
            "tail": step_dict(tail) if tail else None,
            # Raw latency, and latency over each request's own critical path (which takes out the
            # simulated model's variation: replies that quote a memory are longer).
            "tail_p99_over_p50": (tail.latency_ms["p99"] / tail.latency_ms["p50"]) if tail else None,
            "tail_norm_p99_over_p50": (tail.p99_over_cp / tail.p50_over_cp) if tail else None,
            "overload": run_overload(runner, cap, tail, log) if overload and cap else None,
            "argv": servers[0].argv[1:],
            "processes": len(servers),
        }
    finally:
        if lg is not None:
            lg.close()
        for s in servers:
            s.stop()
        for h in helpers:
            h.stop()


OVERLOAD = (2.0, 4.0)  # arrival rates past capacity, as multiples of it
AFTER = 0.5  # the load once the overload drops, as a fraction of capacity
WINDOW_S = 0.5  # recovery is judged over windows of this many seconds


def run_overload(runner: Runner, cap: float, tail: Step | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Open-loop arrivals at 2x (then 4x) capacity, then at once at half of it, in one arrival
    process: goodput (answers 200 per second of the overload, by scheduled time), every status
    seen, whether each 429 carried Retry-After, and the recovery time: from the drop to the start
    of the first window after which every window's requests all succeed and their median latency
    is back to normal (no backlog left): within BOUND x critical path, or the p95 the same process
    had at 70 % of capacity just before if that is higher (a window holds only a few requests, so
    its median, not a p95 that one stray request decides)."""
    hot_s, cool_s = (5.0, 8.0) if runner.quick else (10.0, 10.0)
    normal = max(BOUND, tail.p95_over_cp if tail else BOUND)
    out: dict[str, Any] = {
        "hot_s": hot_s,
        "cool_s": cool_s,
        "after_fraction": AFTER,
        "window_s": WINDOW_S,
        "normal_over_cp": normal,
    }
    for factor in OVERLOAD:
        spec = runner.spec(cap * factor, hot_s, phases=[(cap * factor, hot_s), (cap * AFTER, cool_s)])
        cpu0, pg0 = runner.cpu_s(), process_tree_cpu_s(runner.pg_pid)
        result = runner.lg.step(spec)
        cpu1, pg1 = runner.cpu_s(), process_tree_cpu_s(runner.pg_pid)
        reqs = result["requests"]
        hot = [r for r in reqs if r[0] <= hot_s]
        ok_hot = [r for r in hot if r[2] == 200]
        rejected = [r for r in reqs if r[2] == 429]
        statuses: dict[str, int] = {}
        for r in reqs:
            statuses[str(r[2])] = statuses.get(str(r[2]), 0) + 1

        def over_cp(r: list[Any], nonce: str = spec["nonce"]) -> float:
            text = f"{MESSAGES[r[5] % len(MESSAGES)]} (note {nonce}-{r[5]})"
            return float(r[1] / runner.profile.critical_path_ms(text, r[3]))

        windows: list[bool] = []
        t = hot_s
        while t < hot_s + cool_s - 1e-9:
            win = [r for r in reqs if t < r[0] <= t + WINDOW_S]
            good = all(r[2] == 200 for r in win) and (not win or p50([over_cp(r) for r in win]) <= normal)
            windows.append(good)
            t += WINDOW_S
        bad = [i for i, good in enumerate(windows) if not good]
        recovered = not bad or bad[-1] < len(windows) - 2  # at least the last second is good
        d: dict[str, Any] = {
            "factor": factor,
            "rate": cap * factor,
            "sent": len(reqs),
            "sent_hot": len(hot),
            "goodput_rps": len(ok_hot) / hot_s,
            "goodput_of_capacity": len(ok_hot) / hot_s / cap,
            "statuses": statuses,
            "errors_other_than_429": sum(1 for r in reqs if r[2] not in (200, 429)),
            "429_without_retry_after": sum(1 for r in rejected if not r[6]),
            "retry_after_values": sorted({str(r[6]) for r in rejected}),
            "ok_latency_ms_hot": summary([r[1] for r in ok_hot]),
            "ok_p95_over_cp_hot": pct([over_cp(r) for r in ok_hot], 95) if ok_hot else None,
            "rejected_latency_ms": summary([r[1] for r in rejected]),
            "recovery_s": ((bad[-1] + 1) * WINDOW_S if bad else 0.0) if recovered else None,
            "windows_good": windows,
            "server_cpu_ms_per_req": (cpu1 - cpu0) * 1000 / max(1, len(reqs))
            if cpu0 is not None and cpu1 is not None
            else None,
            "pg_cpu_ms_per_req": (pg1 - pg0) * 1000 / max(1, len(reqs))
            if pg0 is not None and pg1 is not None
            else None,
            "error_samples": sorted({f"{r[2]} {str(r[3])[:100]}" for r in reqs if r[2] not in (200, 429)})[
                :5
            ],
            "raw": [[round(r[0], 3), round(r[1], 1), r[2], r[6]] for r in reqs],
        }
        out[f"x{factor:g}"] = d
        log(
            f"  {runner.name}: overload {factor:g}x ({cap * factor:.1f}/s): goodput "
            f"{d['goodput_rps']:.1f}/s ({d['goodput_of_capacity'] * 100:.0f} % of capacity), statuses "
            f"{statuses}, ok p95 {d['ok_latency_ms_hot']['p95']:.0f} ms, recovery "
            f"{d['recovery_s'] if d['recovery_s'] is not None else 'none'} s"
        )
        runner.settle()
    return out


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SIM_", "DB_", "DATABASE_"))}
    env.update(extra)
    return env


def scale_out(first: Server, logs: Path) -> tuple[list[Server], Helper]:
    """Two API processes on one database (the load spread over both) and one ARQ worker for the
    background queue, as a deployment runs them: REDIS_URL set, a job queue of this run's own."""
    first.env.update(REDIS_URL="redis://127.0.0.1:6379", JOB_QUEUE=f"delight:bench:{os.getpid()}")
    port = free_port()
    second = Server(
        "scale_b",
        first.argv,
        {**first.env, "PORT": str(port)},
        first.path,
        port,
        logs / "scale_b.log",
        first.users,
    )
    worker = Helper(
        "worker",
        [sys.executable, "-m", "jobs.worker"],
        dict(first.env),
        logs / "worker.log",
        b"worker ready",
    )
    return [first, second], worker


def capacity_section(
    pg: BenchPostgres, profile: SimProfile, args: argparse.Namespace, log: Callable[[str], None]
) -> dict[str, Any]:
    import tempfile

    logs = Path(tempfile.mkdtemp(prefix="delight-bench-logs-"))
    dim = Settings(database_url="postgresql://x").embedding_dim
    subjects = [f"cap-{i}" for i in range(USERS)]
    stock_url = pg.database("bench_stock")
    stock_users: list[dict[str, str | None]] = [
        {"auth": None, "thread_id": f"stock-{i}"} for i in range(USERS)
    ]

    common = {**profile.env(), "HOST": "127.0.0.1"}
    if args.pool_max:
        common["DB_POOL_MAX"] = str(args.pool_max)

    def ours(name: str, argv: list[str]) -> Server:
        """Each variant of the service gets the same fresh data (its own database)."""
        url = pg.database(f"bench_{name}")
        migrate(url)
        # A dev token `dev:<id>` is stored as that subject (services/auth.py).
        tokens = [f"dev:{s}" for s in subjects]
        threads = create_threads(url, seed_users(url, tokens, dim=dim))
        users: list[dict[str, str | None]] = [{"auth": t, "thread_id": threads[t]} for t in tokens]
        port = free_port()
        env = _env(
            {**common, "DATABASE_URL": url, "PORT": str(port), "AUTH_MODE": "dev", "LOG_LEVEL": "INFO"}
        )
        return Server(name, argv, env, "/api/v1/chat", port, logs / f"{name}.log", users)

    port = free_port()
    stock = Server(
        "stock",
        [sys.executable, "-m", "bench.stock_app"],
        _env({**common, "DATABASE_URL": stock_url, "PORT": str(port)}),
        "/chat",
        port,
        logs / "stock.log",
        stock_users,
    )
    out: dict[str, Any] = {"logs": str(logs), "users": USERS}
    out["ours"] = measure_server(
        ours("ours", [sys.executable, "-m", "api"]),
        profile,
        pg,
        args,
        log,
        start=START_RATE,
        overload=not args.skip_overload,
    )
    if not args.skip_stock:
        out["stock"] = measure_server(stock, profile, pg, args, log, start=START_RATE)
    if not args.skip_scale_out:
        servers, worker = scale_out(ours("scale_a", [sys.executable, "-m", "api"]), logs)
        out["scale_out"] = measure_server(
            servers, profile, pg, args, log, start=START_RATE, helpers=(worker,)
        )
    variants = {
        "locked_saver": ["--saver", "stock"],
        "async_commit": [],
        "no_gc_freeze": ["--no-gc-freeze"],
        "asyncio_h11": ["--stock-uvicorn"],
        "durability_async": ["--durability", "async"],
        "no_pool_check": ["--no-pool-check"],
        "log_warning": [],
    }
    for lever in args.levers:
        if lever == "skeleton_pooled_saver":  # the stock skeleton, on the lock-free saver
            port = free_port()
            env = _env({**common, "DATABASE_URL": pg.database("bench_stock_pooled"), "PORT": str(port)})
            env["STOCK_SAVER"] = "pooled"
            skeleton = Server(
                "stock_pooled_saver",
                [sys.executable, "-m", "bench.stock_app"],
                env,
                "/chat",
                port,
                logs / "stock_pooled_saver.log",
                stock_users,
            )
            out["stock_pooled_saver"] = measure_server(skeleton, profile, pg, args, log, start=START_RATE)
            continue
        name = f"ours_{lever}"
        server = ours(name, [sys.executable, "-m", "bench.serve", *variants[lever]])
        if lever == "log_warning":
            server.env["LOG_LEVEL"] = "WARNING"
        if lever == "async_commit":
            server.env["RUN_ASYNC_COMMIT"] = "true"
        out[name] = measure_server(server, profile, pg, args, log, start=START_RATE)
    ours_cap, stock_cap = out["ours"]["capacity_rps"], _g(out, "stock", "capacity_rps")
    out["ratio_to_stock"] = ours_cap / stock_cap if ours_cap and stock_cap else None
    return out
