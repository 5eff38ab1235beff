"""One settings class for the whole service, read from the environment (and `.env`).

Every field is documented in the README's configuration table; an invalid value stops start-up
with one line (see `load_settings`).
"""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

ROOT = Path(__file__).resolve().parent.parent


# Loopback origins on any port: what a developer's web app runs on (dev mode's CORS default).
LOOPBACK_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*")
_ORIGIN = re.compile(r"^https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}|\*))?$")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hhmm(value: str) -> tuple[int, int]:
    hour, sep, minute = value.partition(":")
    if not (sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ValueError("must be HH:MM (24-hour)")
    return int(hour), int(minute)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # --- server ---
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Request limits (api/limits.py): body 413, head 431.
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    max_headers: int = Field(100, ge=10, le=1000)
    # Browser origins allowed to call the API (CORS): CORS_ORIGINS=https://app.example.com,...
    # An entry may end in `:*` (any port) or be `*` (any origin). Unset: the loopback origins
    # in dev mode, none in jwt mode; set but empty: none.
    cors_origins: Annotated[list[str] | None, NoDecode] = None

    # --- database ---
    database_url: str | None = None
    data_dir: Path = ROOT / ".data" / "pg"
    db_pool_min: int = Field(2, ge=1)
    db_pool_max: int = Field(20, ge=1)
    db_timeout_s: float = Field(5.0, gt=0)

    # --- models ---
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    chat_model: str = "gpt-4o-mini"
    premium_model: str = "gpt-4o"
    embedding_model: str = "text-embedding-3-small"
    embedding_dim: int = Field(256, ge=8, le=2000)
    structured_output_method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling"
    llm_timeout_s: float = Field(30.0, gt=0)
    llm_max_attempts: int = Field(3, ge=1, le=10)
    llm_validation_retries: int = Field(2, ge=0, le=5)
    llm_backoff_initial_s: float = Field(0.5, ge=0)
    llm_backoff_max_s: float = Field(8.0, ge=0)
    # A user's model spend per local day (priced from the usage ledger) past which their runs'
    # model calls take the free path (the offline model): the premium model is not called. 0: off.
    llm_daily_budget_usd: float = Field(0.10, ge=0)
    # USD per 1M tokens: {"model": [input, output]}
    model_prices: dict[str, tuple[float, float]] = {
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4o": (2.50, 10.00),
    }

    # --- chat graph ---
    branch_timeout_s: float = Field(3.0, gt=0)
    reply_timeout_s: float = Field(60.0, gt=0)
    history_turns: int = Field(10, ge=0, le=100)

    # --- runs (engine/) ---
    # A run's process renews its lease every third of this; a run whose lease lapses (its process
    # died) is settled by another process: failed (chat) or resumed (background runs).
    run_lease_s: float = Field(15.0, ge=1, le=30)
    # Runs executing at once in one process; past it a user's request answers 429 at once. It
    # bounds the backlog a saturated process admits (a turn's latency there is about this over
    # the turns/s the process sustains), so it does not follow DB_POOL_MAX: a run holds a
    # connection only per statement.
    run_max_running: int = Field(20, ge=1)
    # Queued (pending) runs allowed per thread and per user; past them 429.
    run_max_pending_per_thread: int = Field(32, ge=0)
    run_max_pending_per_user: int = Field(64, ge=0)
    # Runs a user may start per minute (chat turns and every workflow run); 0 turns it off.
    run_rate_per_minute: int = Field(60, ge=0)
    # Longest run; past it the run ends with status `timeout`.
    run_timeout_s: float = Field(600.0, gt=0)
    # Tries of a background run whose process died or that failed transiently.
    run_max_attempts: int = Field(3, ge=1, le=20)
    # Checkpoint writes and a run's finish commit without waiting for Postgres' WAL flush
    # (synchronous_commit off for those transactions only). A crash of Postgres itself (not of
    # this process) may lose the last fraction of a second of them; the run row, written with a
    # flushed commit at submit, then settles the run as after a process crash. Off by default:
    # it saves a flush (~0.5-3 ms here) per write, not measurable per turn (README, Benchmarks).
    run_async_commit: bool = False

    # --- goals and missions ---
    decompose_concurrency: int = Field(3, ge=1, le=20)
    mission_concurrency: int = Field(5, ge=1, le=50)

    # --- background jobs ---
    # Unset: the API runs jobs on an in-process scheduler (no Redis needed). `make worker`
    # defaults to redis://127.0.0.1:6379.
    redis_url: str | None = None
    job_queue: str = "delight:jobs"  # ARQ queue name (separate environments sharing a Redis)
    job_timeout_s: float = Field(300.0, gt=0)
    job_max_tries: int = Field(3, ge=1, le=20)
    job_retry_base_s: float = Field(2.0, ge=0)
    job_concurrency: int = Field(5, ge=1, le=100)
    nightly_at: str = "02:00"  # UTC, HH:MM
    weekly_at: str = "mon 03:00"  # UTC, weekday HH:MM
    nudge_sweep_minute: int = Field(0, ge=0, le=59)  # hourly, at this minute
    email_webhook_url: str | None = None  # unset: email nudges are logged, not sent
    sms_webhook_url: str | None = None  # unset: sms nudges are logged, not sent

    # --- memory ---
    memory_quota_personal: int = Field(5, ge=0)
    memory_quota_project: int = Field(3, ge=0)
    memory_quota_task: int = Field(3, ge=0)
    memory_candidates_per_tier: int = Field(20, ge=1)
    memory_recency_half_life_days: float = Field(14.0, gt=0)
    memory_recency_floor: float = Field(0.5, ge=0, le=1)
    memory_frequency_weight: float = Field(0.1, ge=0)
    memory_frequency_cap: float = Field(1.5, ge=1)
    memory_merge_threshold: float = Field(0.95, gt=0, le=1)
    memory_min_similarity: float = Field(0.15, ge=0, le=1)
    task_memory_ttl_days: int = Field(30, ge=1)
    embedding_cache_size: int = Field(4096, ge=0)

    # --- progress ---
    dci_window_days: int = Field(7, ge=1, le=90)

    # --- simulation (offline model and embedder only; benchmarks; 0 = off) ---
    # Simulated wait before a model call's first token (ms).
    sim_llm_first_token_ms: float = Field(0.0, ge=0)
    # Simulated wait per streamed output chunk of a model call (ms).
    sim_llm_token_ms: float = Field(0.0, ge=0)
    # Simulated wait per embedding request that misses the cache (ms).
    sim_embed_ms: float = Field(0.0, ge=0)
    # Each simulated call's waits are scaled by a seeded uniform factor in [1 - j, 1 + j].
    sim_jitter: float = Field(0.0, ge=0, lt=1)
    # Seed of the simulated jitter (the same seed gives the same sequence of factors).
    sim_seed: int = 0

    # --- auth ---
    auth_mode: Literal["dev", "jwt"] = "dev"
    jwt_jwks_url: str | None = None
    jwt_jwks_file: Path | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # ADMIN_USER_IDS=alice,bob (a JSON list works too)
    admin_user_ids: Annotated[list[str], NoDecode] = []

    @field_validator("admin_user_ids", "cors_origins", mode="before")
    @classmethod
    def _csv(cls, v: object) -> object:
        if isinstance(v, str):
            if v.lstrip().startswith("["):
                return json.loads(v)
            return [part.strip() for part in v.split(",") if part.strip()]
        return v

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, v: list[str] | None) -> list[str] | None:
        for origin in v or []:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], port may be *, no path")
        return v

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return v

    @field_validator("nightly_at")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        parse_hhmm(v)
        return v

    @field_validator("weekly_at")
    @classmethod
    def _weekly(cls, v: str) -> str:
        day, _, at = v.partition(" ")
        if day.lower() not in WEEKDAYS:
            raise ValueError("must look like 'mon 03:00'")
        parse_hhmm(at)
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        if self.auth_mode == "jwt":
            if not (self.jwt_jwks_url or self.jwt_jwks_file):
                raise ValueError("AUTH_MODE=jwt needs JWT_JWKS_URL or JWT_JWKS_FILE")
            if not (self.jwt_audience and self.jwt_issuer):
                raise ValueError("AUTH_MODE=jwt needs JWT_AUDIENCE and JWT_ISSUER")
        return self

    @property
    def uses_openai(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def allowed_origins(self) -> list[str]:
        """CORS_ORIGINS, or its default for the auth mode."""
        if self.cors_origins is not None:
            return self.cors_origins
        return list(LOOPBACK_ORIGINS) if self.auth_mode == "dev" else []

    @property
    def memory_quotas(self) -> dict[str, int]:
        return {
            "personal": self.memory_quota_personal,
            "project": self.memory_quota_project,
            "task": self.memory_quota_task,
        }


def describe_error(err: ValidationError) -> str:
    """One line naming each bad setting as its environment variable."""
    parts = []
    for e in err.errors():
        name = "_".join(str(p) for p in e["loc"]).upper() or "settings"
        parts.append(f"{name}: {e['msg']}")
    return "invalid configuration: " + "; ".join(parts)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def load_settings() -> Settings:
    """Entry points call this: a bad setting exits with one clear line, not a traceback."""
    try:
        return get_settings()
    except ValidationError as err:
        print(describe_error(err), file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as err:  # a value pydantic-settings could not even decode (bad JSON)
        print(f"invalid configuration: {err}", file=sys.stderr)
        raise SystemExit(2) from None
