"""State of the nightly_maintenance workflow (seed: "Parallel Background Jobs"): four independent
tasks, each writing its own result."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.reducers import merge_keyed


class MaintenanceInput(TypedDict):
    day: str  # ISO date the run is for (UTC)


class MaintenanceState(MaintenanceInput, total=False):
    # task name -> {"ok": bool, ...}: each parallel task writes its own key; failures are isolated
    results: Annotated[dict[str, Any], merge_keyed]
    failed: Annotated[list[str], operator.add]  # the tasks whose result is not ok (set by report)
