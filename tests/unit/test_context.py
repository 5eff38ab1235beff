"""The run's context: hosts pass a full `Context`; LangGraph Studio passes only its form, which
`studio_context` turns into one (the process's services, the form's user and clock, the thread
from the run's config), for the nodes and for the fallback handlers alike."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from graphs import personalized_nudge
from nodes.context import Context, RunContext, StudioContext, make_context
from tests.support.fakes import FakeServices, ScriptedChatModel, connection_error, fake_services

NOW = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)


@pytest.fixture
def studio(monkeypatch: pytest.MonkeyPatch) -> FakeServices[ScriptedChatModel]:
    """The fakes as the process's services, as `langgraph dev` would open them."""
    svc = fake_services()

    async def shared() -> FakeServices[ScriptedChatModel]:
        return svc

    monkeypatch.setattr("services.container.shared_services", shared)
    return svc


async def test_studio_form_becomes_the_runs_context(
    studio: FakeServices[ScriptedChatModel], caplog: pytest.LogCaptureFixture
) -> None:
    user = uuid.uuid4()
    studio.nudges.last_active(datetime(2025, 1, 10, 15, 0, tzinfo=UTC), "UTC")
    studio.goals.add(user, "Learn the guitar")
    studio.goals.fail(connection_error(), op="list")  # a branch falls back: its handler runs too
    graph = personalized_nudge.graph  # what langgraph.json points at
    assert graph.context_schema is StudioContext

    caplog.set_level(logging.INFO, logger="delight.graph")
    out = await graph.ainvoke(
        {},
        {"configurable": {"thread_id": "studio-thread"}},
        context={"user_id": str(user), "timezone": "UTC", "now": NOW.isoformat()},
    )

    assert out["scheduled"] is True and out["degraded"] == ["load_active_goals"]
    assert {c.args["user_id"] for c in studio.memory.calls} == {user}  # the form's user
    assert studio.nudges.rows[next(iter(studio.nudges.rows))].user_id == str(user)
    assert [m["now"] for m in studio.memory.added] == [NOW]  # the form's clock
    assert out["days_inactive"] == 5  # counted to that clock, not today
    (degraded,) = [r for r in caplog.records if r.getMessage() == "branch degraded"]
    assert degraded.__dict__["thread_id"] == "studio-thread"  # the handler has the run's context


def test_hosts_build_a_users_context_or_a_system_one() -> None:
    svc = fake_services()
    user = uuid.uuid4()
    ctx = make_context(user, thread_id="t", services=svc, timezone="Asia/Tokyo", now=NOW)
    assert isinstance(ctx, Context) and ctx.user_id == user and ctx.services is svc
    system = make_context(None, thread_id="t", services=svc, timezone="UTC", now=NOW)
    assert isinstance(system, RunContext) and not isinstance(system, Context)


def test_studio_form_reads_its_clock_from_json() -> None:
    form: Any = StudioContext(now="2025-01-15T17:00:00")  # type: ignore[arg-type]  # JSON, as Studio sends it
    assert form.now == NOW
