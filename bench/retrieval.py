"""Memory retrieval at scale: `MemoryStore.retrieve` as the chat graph calls it (one statement:
per tier, nearest neighbours filtered by user, tier, embedder and expiry in SQL, ranked and cut to
the quotas in SQL; read-only, the hits' access stats move in the turn's write-back) timed at 10k
and 100k stored memories.

The memories belong to 100 regular users plus one heavy user who owns a tenth of the table (so
at 100k: ~900 memories per regular user, 10k for the heavy one); tiers are 20 % personal, 20 %
project, 60 % task. Vectors are the offline embedder's, of 3,000 distinct texts; rows are generated
inside Postgres from them. Query embeddings are cached before timing (no simulated embedder wait):
what is timed is the database work and the ranking."""

from __future__ import annotations

import argparse
import random
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.env import BenchPostgres
from bench.sections import bench_settings
from bench.seed import migrate, vector_literal
from bench.sim import SimProfile
from bench.stats import summary
from services.container import Services
from services.embeddings import OfflineEmbeddings

REGULAR_USERS = 100
BASE_TEXTS = 3000
SUBJECTS = ("I", "My sister", "My manager", "The coach", "My friend Sam", "The team", "My partner")
VERBS = ("finished", "started", "worried about", "enjoyed", "skipped", "planned", "talked about", "loved")
OBJECTS = (
    "the morning run",
    "the quarterly report",
    "guitar practice",
    "the novel draft",
    "the data course",
    "a long walk",
    "the gym session",
    "meal prep",
    "the presentation",
    "reading before bed",
    "the budget",
    "a call with mum",
)
WHEN = ("today", "yesterday", "this week", "last weekend", "on Monday", "tonight", "this morning")
QUERIES = (
    "How did my run go?",
    "What worries me about work?",
    "Tell me about my guitar practice",
    "Did I write anything this week?",
    "What did my sister say?",
    "I feel stressed about the presentation",
    "What helps me sleep?",
    "How is the course going?",
    "I skipped the gym again",
    "Plans for the weekend",
)


def base_texts(rng: random.Random) -> list[str]:
    texts: set[str] = set()
    while len(texts) < BASE_TEXTS:
        texts.add(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(WHEN)}")
    return sorted(texts)


def prepare(url: str, dim: int, rng: random.Random) -> tuple[list[uuid.UUID], uuid.UUID]:
    embedder = OfflineEmbeddings(dim)
    texts = base_texts(rng)
    with psycopg.connect(url, autocommit=True) as conn:
        inserted = [
            conn.execute("INSERT INTO users (subject) VALUES (%s) RETURNING id", (f"ret-{i}",)).fetchone()
            for i in range(REGULAR_USERS + 1)
        ]
        users = [row[0] for row in inserted if row is not None]
        conn.execute(f"CREATE TABLE bench_base (i int PRIMARY KEY, content text, embedding vector({dim}))")
        conn.execute("CREATE TABLE bench_users (k int PRIMARY KEY, id uuid)")
        with conn.cursor() as cur:
            with cur.copy("COPY bench_base (i, content, embedding) FROM STDIN") as copy:
                for i, t in enumerate(texts):
                    copy.write_row((i, t, vector_literal(embedder.embed_query(t))))
            with cur.copy("COPY bench_users (k, id) FROM STDIN") as copy:
                for k, uid in enumerate(users[:REGULAR_USERS]):
                    copy.write_row((k, uid))
    return users[:REGULAR_USERS], users[REGULAR_USERS]


def load(url: str, heavy: uuid.UUID, start: int, stop: int) -> float:
    """Rows start..stop-1: every tenth row the heavy user's, the rest spread over the regulars."""
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""INSERT INTO memories (id, user_id, tier, content, embedding, embedder, metadata,
                    created_at, accessed_at, access_count, expires_at)
                SELECT gen_random_uuid(),
                       CASE WHEN g %% 10 = 0 THEN %(heavy)s::uuid ELSE u.id END,
                       t.tier, b.content || ' #' || g, b.embedding, %(embedder)s, '{{}}'::jsonb,
                       c.created, c.created, g %% 5,
                       CASE WHEN t.tier = 'task' THEN c.created + interval '30 days' END
                FROM generate_series(%(start)s, %(stop)s - 1) AS g
                JOIN bench_base b ON b.i = g %% {BASE_TEXTS}
                JOIN bench_users u ON u.k = (g / 10) %% {REGULAR_USERS}
                CROSS JOIN LATERAL (SELECT CASE (g / 7) %% 5 WHEN 1 THEN 'personal' WHEN 2 THEN 'project'
                                                 ELSE 'task' END AS tier) t
                CROSS JOIN LATERAL (SELECT now() - (g %% 2000) * interval '10 minutes' AS created) c""",
            {"heavy": heavy, "embedder": OfflineEmbeddings.name, "start": start, "stop": stop},
        )
        conn.execute("VACUUM ANALYZE memories")
    return time.perf_counter() - t0


def plan(svc: Services, url: str, user: uuid.UUID) -> list[str]:
    """EXPLAIN ANALYZE of the recall statement for one user."""
    vec = OfflineEmbeddings(svc.settings.embedding_dim).embed_query(QUERIES[0])
    sql, params = svc.memory.recall_statement(
        user, vec, datetime.now(UTC), svc.settings.memory_quotas, touch=False
    )
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params).fetchall()
    return [re.sub(r"'\[[^']*\]'::vector", "<query vector>", r[0]) for r in rows]


async def timed(svc: Services, users: list[uuid.UUID], n: int, rng: random.Random) -> list[float]:
    now = datetime.now(UTC)
    out: list[float] = []
    for i in range(n):
        user = users[rng.randrange(len(users))]
        t0 = time.perf_counter()
        await svc.memory.retrieve(user, QUERIES[i % len(QUERIES)], now=now, touch=False)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def retrieval_section(
    pg: BenchPostgres, args: argparse.Namespace, log: Callable[[str], None]
) -> dict[str, Any]:
    url = pg.database("bench_retrieval")
    migrate(url)
    settings = bench_settings(url, SimProfile(0, 0, 0, 0, 0), args.pool_max)
    rng = random.Random(args.seed)
    regular, heavy = prepare(url, settings.embedding_dim, rng)
    svc = await Services.open(settings)
    n = 60 if args.quick else 300
    out: dict[str, Any] = {"regular_users": REGULAR_USERS, "heavy_user_share": 0.1, "queries": n}
    try:
        for q in QUERIES:  # cache the query embeddings: time the database work only
            await svc.embeddings.aembed_query(q)
        loaded = 0
        for size in (10_000, 100_000):
            secs = load(url, heavy, loaded, size)
            loaded = size
            log(f"retrieval: {size} memories loaded in {secs:.1f} s; timing {n} retrievals")
            await timed(svc, regular, 10, rng)  # warm
            reg = await timed(svc, regular, n, rng)
            hv = await timed(svc, [heavy], max(20, n // 5), rng)
            out[str(size)] = {
                "load_s": secs,
                "regular_ms": summary(reg),
                "heavy_ms": summary(hv),
                "plan_regular": plan(svc, url, regular[0]),
                "plan_heavy": plan(svc, url, heavy),
                "raw_regular_ms": [round(x, 3) for x in reg],
                "raw_heavy_ms": [round(x, 3) for x in hv],
            }
    finally:
        await svc.close()
    return out
