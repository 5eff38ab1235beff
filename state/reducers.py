"""The reducers of graph state, each defined once. A key that parallel branches (or a retried
`Send` task) write needs one, else LangGraph raises `InvalidUpdateError`:

- `add_usage`: the model usage of a run (tokens, cost, calls), summed across its calls;
- `merge_keyed`: one entry per key (a mission id, a milestone sequence, a task name), so a task
  that runs again replaces its own entry instead of adding a second one;
- lists of degraded nodes use `operator.add` (each fallback appends its node's name).

They live in `state/` because a state's type names its reducer (`Annotated[Json, add_usage]`),
and state imports nothing above it (nodes, graphs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, overload

from state.schemas import Usage

Json = dict[str, Any]
K = TypeVar("K")
V = TypeVar("V")

USAGE_FIELDS = ("input_tokens", "output_tokens", "cost_usd", "calls")


def _sum(left: Mapping[str, Any], right: Mapping[str, Any]) -> Json:
    return {
        "input_tokens": int(left.get("input_tokens") or 0) + int(right.get("input_tokens") or 0),
        "output_tokens": int(left.get("output_tokens") or 0) + int(right.get("output_tokens") or 0),
        "cost_usd": round(float(left.get("cost_usd") or 0.0) + float(right.get("cost_usd") or 0.0), 8),
        "calls": int(left.get("calls") or 0) + int(right.get("calls") or 0),
    }


def empty_usage(*, by_site: bool = False) -> Json:
    """No usage yet, in the JSON form (with an empty per-call-site breakdown if asked)."""
    return {**_sum({}, {}), "by_site": {}} if by_site else _sum({}, {})


def usage_entry(site: str, usage: Usage) -> Json:
    """One call site's usage, with its per-site breakdown (narrative_beat's `usage`)."""
    one = _sum(usage.model_dump(include=set(USAGE_FIELDS)), {})
    return {**one, "by_site": {site: one}}


@overload
def add_usage(left: Usage, right: Usage | None) -> Usage: ...
@overload
def add_usage(left: None, right: Usage) -> Usage: ...
@overload
def add_usage(left: Json | None, right: Json | None) -> Json: ...
def add_usage(left: Usage | Json | None, right: Usage | Json | None) -> Usage | Json:
    """The usage reducer: token, cost and call counts summed. Over `Usage` for the chat graph,
    whose state holds models; over its JSON form for the graphs whose state is plain JSON, where
    a per-call-site breakdown (`by_site`, see `usage_entry`) is summed site by site when either
    side carries one."""
    if isinstance(left, Usage) or isinstance(right, Usage):
        a = left if isinstance(left, Usage) else Usage()
        b = right if isinstance(right, Usage) else Usage()
        return a + b
    a_json: Mapping[str, Any] = left or {}
    b_json: Mapping[str, Any] = right or {}
    total = _sum(a_json, b_json)
    if "by_site" not in a_json and "by_site" not in b_json:
        return total
    by_site: dict[str, Json] = dict(a_json.get("by_site") or {})
    for site, one in (b_json.get("by_site") or {}).items():
        by_site[site] = _sum(by_site.get(site, {}), one)
    return {**total, "by_site": by_site}


def merge_keyed(left: Mapping[K, V] | None, right: Mapping[K, V] | None) -> dict[K, V]:
    """Entries of both sides; the right one wins for a key both have (a re-run task's new entry
    replaces its old one)."""
    return {**(left or {}), **(right or {})}
