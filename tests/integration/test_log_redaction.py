"""Database errors in logs carry no parameter values: real errors from the embedded Postgres,
through psycopg and through SQLAlchemy (the memory store's client), logged the ways the service
logs them (repr in `extra`, str in `extra`, `log.exception`, uvicorn's traceback), keep their
class, message and SQL but never the user text or embeddings they were given."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from core.logging import JsonFormatter
from services.db import sqlalchemy_url

SECRET = "secret-user-text"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.redaction.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def log_every_way(logger: logging.Logger, err: BaseException) -> None:
    logger.warning("node failed", extra={"error": repr(err)})
    logger.warning("run failed", extra={"error": f"{type(err).__name__}: {err}"})
    logger.warning("as object", extra={"error": err})
    try:
        raise err
    except type(err):
        logger.exception("background turn failed")
    logger.error("Exception in ASGI application\n", exc_info=err)
    logger.error("formatted %s", err)


async def database_errors(services, pg_url: str) -> list[BaseException]:
    errors: list[BaseException] = []
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        for sql, params in (
            ("SELECT %s::uuid", (SECRET,)),
            ("SELECT %s::jsonb", (f'{{"note": "{SECRET} \\ud800"}}',)),
            ("SELECT %s::int", (SECRET,)),
            ("INSERT INTO users (subject) VALUES (%s), (%s)", (SECRET, SECRET)),
        ):
            try:
                await conn.execute(sql, params)
            except psycopg.Error as err:
                errors.append(err)
    engine = create_async_engine(sqlalchemy_url(pg_url))  # SQLAlchemy (Alembic's client) errors too
    try:
        async with engine.connect() as conn:
            try:
                await conn.execute(
                    text("SELECT CAST(:n AS int), CAST(:t AS text)"), {"n": SECRET, "t": SECRET}
                )
            except Exception as err:
                errors.append(err)
    finally:
        await engine.dispose()
    try:  # the memory store's insert: content and embedding are statement parameters
        await services.memory.add(uuid.uuid4(), "personal", f"{SECRET}\x00", {}, now=datetime.now(UTC))
    except Exception as err:
        errors.append(err)
    return errors


async def test_database_errors_are_logged_without_their_values(services, pg_url, captured) -> None:
    logger, stream = captured
    errors = await database_errors(services, pg_url)
    assert len(errors) == 6
    assert any(SECRET in str(e) for e in errors)  # the raw errors do carry the values

    for err in errors:
        log_every_way(logger, err)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 6 * 6
    out = stream.getvalue()
    assert SECRET not in out
    assert "[parameters: redacted]" in out and "DETAIL:  [redacted]" in out
    # What helps an operator stays: the error class, the primary message, the SQL.
    assert "InvalidTextRepresentation" in out and "UniqueViolation" in out
    assert "invalid input syntax for type uuid" in out and "[SQL: SELECT CAST(" in out
    assert "PostgreSQL text fields cannot contain NUL" in out


def test_plain_messages_are_untouched(captured) -> None:
    logger, stream = captured
    logger.info("turn done", extra={"graph": "chat", "reason": 'the user said "hello"', "ms": 1.5})
    entry = json.loads(stream.getvalue())
    assert entry["reason"] == 'the user said "hello"' and entry["msg"] == "turn done"
