"""Benchmark data: users with some memories (all three tiers) and a week of progress, written
with plain SQL (fast, and no simulated waits). Vectors come from the service's offline embedder,
so recall during the benchmark behaves as in the service."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from services.db import migrate_sync
from services.embeddings import OfflineEmbeddings

FACTS = (
    "The user's sister is called Maya.",
    "The user prefers morning workouts.",
    "The user is stressed about the quarterly report.",
    "The user loves long walks with the dog.",
    "The user is learning to play the guitar.",
    "The user wants to run a half marathon in the spring.",
    "The user finds deadlines at work overwhelming.",
    "The user enjoys reading before bed.",
)
PROJECTS = (
    "Goal: finish the online course on data analysis.",
    "Goal: run three times a week.",
    "Goal: write the first draft of the novel.",
    "Goal: practise guitar for twenty minutes a day.",
)
EXCHANGES = (
    "User said: I went for a short run today\nEliza replied: That's wonderful, every run counts.",
    "User said: I could not focus at work\nEliza replied: That sounds frustrating, be gentle with yourself.",
    "User said: I wrote two pages\nEliza replied: Two pages is real progress, well done.",
    "User said: I feel tired\nEliza replied: Rest is allowed; one tiny step is enough today.",
    "User said: The course quiz went fine\nEliza replied: Great, that is momentum.",
    "User said: I skipped practice\nEliza replied: That's okay, tomorrow is another chance.",
)


def vector_literal(vec: list[float]) -> str:
    return "[" + ",".join(f"{v:.6f}" for v in vec) + "]"


def migrate(url: str) -> None:
    migrate_sync(url)


def seed_users(
    url: str, subjects: list[str], *, dim: int, memories_per_user: int = 24, seed: int = 7
) -> dict[str, uuid.UUID]:
    """Create users `subjects` with memories and a week of progress; returns subject -> id."""
    rng = random.Random(seed)
    embedder = OfflineEmbeddings(dim)
    vectors = {t: vector_literal(embedder.embed_query(t)) for t in (*FACTS, *PROJECTS, *EXCHANGES)}
    now = datetime.now(UTC)
    ids: dict[str, uuid.UUID] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for subject in subjects:
            row = conn.execute(
                """INSERT INTO users (subject) VALUES (%s)
                   ON CONFLICT (subject) DO UPDATE SET subject = EXCLUDED.subject RETURNING id""",
                (subject,),
            ).fetchone()
            assert row is not None
            ids[subject] = row[0]
        mem_rows = []
        event_rows: list[tuple[uuid.UUID, str, int | None, datetime]] = []
        for uid in ids.values():
            for i in range(memories_per_user):
                kind = i % 6
                tier, text = (
                    ("personal", FACTS[(i + rng.randrange(8)) % len(FACTS)])
                    if kind < 2
                    else ("project", PROJECTS[rng.randrange(len(PROJECTS))])
                    if kind == 2
                    else ("task", EXCHANGES[rng.randrange(len(EXCHANGES))])
                )
                created = now - timedelta(days=rng.uniform(0, 25), minutes=i)
                expires = created + timedelta(days=30) if tier == "task" else None
                mem_rows.append(
                    (
                        uuid.uuid4(),
                        uid,
                        tier,
                        f"{text} ({i})",
                        vectors[text],
                        OfflineEmbeddings.name,
                        Jsonb({"tags": ["seed"]}),
                        created,
                        created,
                        rng.randrange(4),
                        expires,
                    )
                )
            for d in range(7):
                day = now - timedelta(days=d, hours=1)
                if rng.random() < 0.7:
                    event_rows.append((uid, "mission_completed", rng.randrange(10, 40), day))
                if rng.random() < 0.2:
                    event_rows.append((uid, "mission_skipped", None, day))
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO memories (id, user_id, tier, content, embedding, embedder, metadata,
                       created_at, accessed_at, access_count, expires_at)
                   VALUES (%s, %s, %s, %s, %s::vector, %s, %s, %s, %s, %s, %s)""",
                mem_rows,
            )
            cur.executemany(
                "INSERT INTO progress_events (user_id, kind, minutes, at) VALUES (%s, %s, %s, %s)",
                event_rows,
            )
        conn.execute("ANALYZE")
    return ids


def create_threads(url: str, users: dict[str, uuid.UUID]) -> dict[str, str]:
    """One thread per user (as the API creates them); returns subject -> thread id."""
    threads = {s: str(uuid.uuid4()) for s in users}
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO threads (id, user_id) VALUES (%s, %s)",
            [(threads[s], uid) for s, uid in users.items()],
        )
    return threads
