"""Deterministic ids: a write keyed by one happens once, however often a retried, resumed or
repeated run asks for it."""

from __future__ import annotations

import uuid


def stable_id(*parts: object) -> uuid.UUID:
    """Deterministic ids make repeated writes (retries, resumed runs, re-runs) idempotent."""
    return uuid.uuid5(uuid.NAMESPACE_URL, ":".join(str(p) for p in parts))
