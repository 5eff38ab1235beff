"""The Agent Server API tests drive one real API process (`python -m api`, uvicorn on TCP) on a
database of their own, with the real `langgraph-sdk` client. The offline model streams its reply
a token every 40 ms, so a run is still going when a test acts on it (cancel, interrupt)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.support.servers import ApiServer


@pytest.fixture(scope="session")
def agent_api(pg_url: str, template_database: str) -> Iterator[ApiServer]:
    import psycopg

    from tests.conftest import database_url

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "delight_template"')
    logs = Path(tempfile.mkdtemp(prefix="delight-agent-"))
    server = ApiServer(
        logs / "api.log",
        DATABASE_URL=database_url(pg_url, name),
        ADMIN_USER_IDS="admin",
        RUN_RATE_PER_MINUTE="0",
        SIM_LLM_TOKEN_MS="40",
    )
    try:
        yield server.wait_healthy()
    finally:
        server.stop()


@pytest.fixture
def sdk(agent_api: ApiServer) -> Callable[..., LangGraphClient]:
    """`sdk()` a client for a new user, `sdk("name")` for that user (dev bearer tokens)."""

    def make(user: str | None = None) -> LangGraphClient:
        who = user or f"u-{uuid.uuid4().hex[:10]}"
        return get_client(url=agent_api.url, headers={"Authorization": f"Bearer dev:{who}"})

    return make


def say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def first_token(stream: AsyncIterator[Any]) -> list[Any]:
    """Read a run's stream up to its first reply token (the run is then mid-reply)."""
    seen = []
    async for part in stream:
        seen.append(part)
        if part.event in ("messages", "messages/partial") or (
            part.event == "custom" and isinstance(part.data, dict) and part.data.get("type") == "token"
        ):
            return seen
    raise AssertionError(f"the run ended before its first token: {[p.event for p in seen]}")


async def until(predicate: Any, limit: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        value = await predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def refused(call: Any) -> int:
    """The HTTP status a call is refused with (the SDK raises typed errors for plain requests and
    httpx's own for the ones it may reconnect: wait, join)."""
    try:
        await call
    except httpx.HTTPStatusError as err:
        return err.response.status_code
    raise AssertionError("the call succeeded")


@contextlib.asynccontextmanager
async def opened(stream: AsyncIterator[Any]) -> AsyncIterator[AsyncIterator[Any]]:
    """A stream closed when the block ends (the HTTP connection with it), read or not."""
    # The SDK types its streams as AsyncIterator; they are async generators (they have aclose).
    async with contextlib.aclosing(stream) as s:  # type: ignore[type-var]
        yield s
