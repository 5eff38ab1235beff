"""What every node receives besides state (LangGraph's `context_schema` / `Runtime[Context]`):
the run's thread, clock and timezone, the services its nodes need, and, for a user's run, the
user. Hosts build it once per run (the run engine, `Engine._stream`; tests); LangGraph Studio,
which has no users and passes only its context form, gets one from `studio_context`.

A node declares what it needs of the services with a small `Protocol` (its workflow's
`...Services`, in its nodes module): `Runtime[Context[ChatServices]]`. The process's container
(`services.container.Services`) satisfies every one of them; tests pass in-memory fakes
(tests/support/fakes.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

SvcT = TypeVar("SvcT", covariant=True)  # what the nodes need of the services (a Protocol)
S = TypeVar("S")

# Fields a host sets from the run itself: the user from the credentials, the thread from the run,
# the timezone from the user's profile, the clock once per run (api/agent: a client sets none).
HOST_SET = ("user_id", "thread_id", "timezone", "now")


def _now() -> datetime:
    return datetime.now(UTC)


# Its JSON schema (`/assistants/{id}/schemas`) is what a client may pass: the services and the
# per-run bookkeeping are skipped (pydantic cannot describe the services, and a client must never
# set them). Frozen: one run's context is shared by its parallel nodes.
@dataclass(frozen=True, kw_only=True)
class RunContext(Generic[SvcT]):
    """What every run knows besides its state: its thread, its clock and timezone, and the
    services its nodes need. A system run (nightly_maintenance) has no user."""

    thread_id: str  # the run's thread (checkpoints and transcript are keyed by it)
    services: Annotated[SvcT, SkipJsonSchema()]  # the process's services, as the nodes need them
    timezone: str = "UTC"  # IANA timezone of the user's local day
    now: datetime = field(default_factory=_now)  # the run's clock: one instant for every node
    # node -> when it started (time.perf_counter()), for the fallback handlers' `ms`
    started: Annotated[dict[str, float], SkipJsonSchema()] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, kw_only=True)
class Context(RunContext[SvcT]):
    """A user's run: every read and write of its nodes is scoped to `user_id`."""

    user_id: uuid.UUID  # users.id of the user the run acts for


def make_context(
    user_id: uuid.UUID | None, *, thread_id: str, services: S, timezone: str, now: datetime
) -> RunContext[S]:
    """A run's context as its host builds it: a user's run gets a `Context`, a system run (no
    user: nightly_maintenance) a `RunContext`."""
    if user_id is None:
        return RunContext(thread_id=thread_id, services=services, timezone=timezone, now=now)
    return Context(user_id=user_id, thread_id=thread_id, services=services, timezone=timezone, now=now)


# --- LangGraph Studio (`langgraph dev`) --------------------------------------------------------


@dataclass(eq=False)
class StudioContext:
    """What Studio's context form offers (its JSON schema is the form): the user to act as, their
    timezone, the run's clock. `studio_context` turns it into the run's `Context`."""

    user_id: Annotated[
        str | None, Field(description="users.id to run as (langgraph dev; default: a 'studio' user)")
    ] = None
    timezone: Annotated[str, Field(description="IANA timezone of the user's local day")] = "UTC"
    now: Annotated[
        datetime | None, Field(description="The run's clock, ISO 8601 (default: when it starts)")
    ] = None

    def __post_init__(self) -> None:
        # LangGraph builds the context from a client's JSON as is (`StudioContext(**context)`).
        if isinstance(self.now, str):
            now = datetime.fromisoformat(self.now)
            self.now = now if now.tzinfo else now.replace(tzinfo=UTC)


# One Context per Studio run (its nodes share the clock and the start times); a run's form is one
# object for the whole run, and the entry goes with it.
_studio_runs: WeakKeyDictionary[StudioContext, Context[Any]] = WeakKeyDictionary()


async def studio_context(form: StudioContext | None, config: RunnableConfig | None = None) -> Context[Any]:
    """The context of a run started by LangGraph Studio, which passes only its form (or nothing):
    the process's services, opened once (`shared_services`), the form's user or the Studio dev
    user, the thread from the run's config."""
    if form is not None and form in _studio_runs:
        return _studio_runs[form]
    from services.container import shared_services  # Studio only: hosts pass their services

    svc = await shared_services()
    form = form or StudioContext()
    user = uuid.UUID(form.user_id) if form.user_id else (await svc.users.ensure("dev:studio")).id
    thread = (config or get_config()).get("configurable", {}).get("thread_id", "studio")
    ctx: Context[Any] = Context(
        user_id=user, thread_id=str(thread), services=svc, timezone=form.timezone, now=form.now or _now()
    )
    _studio_runs[form] = ctx
    return ctx


def studio_graph(
    builder: StateGraph[Any, Any, Any, Any], name: str
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph `langgraph.json` points at: compiled without a checkpointer (`langgraph dev`
    brings its own), with Studio's form as its context schema (nodes then get their context from
    `studio_context`). Hosts compile `build()` themselves (graphs/registry.py)."""
    graph: CompiledStateGraph[Any, Any, Any, Any] = builder.compile(name=name)
    graph.context_schema = StudioContext
    return graph
