"""The run engine: every graph execution is a durable, cross-process run (engine/engine.py)."""

from engine.engine import Engine, RunRequest
from engine.events import Event

__all__ = ["Engine", "Event", "RunRequest"]
