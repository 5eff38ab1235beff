"""`GET /missions/next?feeling=`: what a fresh user says they feel counts for energy, so a user
who is thrilled and full of energy is offered the challenge, not the steady triad."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import auth


async def test_a_fresh_user_who_is_thrilled_gets_the_challenge(client: httpx.AsyncClient) -> None:
    user = auth(f"thrilled-{uuid.uuid4().hex[:8]}")
    r = await client.get(
        "/api/v1/missions/next",
        params={"feeling": "thrilled and full of energy"},  # the words the issue reported
        headers=user,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["emotion"]["dominant"] == "joy" and out["emotion"]["scores"]["joy"] > 0.8
    assert (out["path"], out["energy"]) == ("challenge", "high"), out["reason"]
    assert "energy high from how you feel now" in out["reason"]
    [mission] = out["missions"]
    assert (mission["kind"], mission["energy_level"]) == ("challenge", "high")


async def test_a_calm_feeling_keeps_the_steady_day(client: httpx.AsyncClient) -> None:
    user = auth(f"calm-{uuid.uuid4().hex[:8]}")
    r = await client.get("/api/v1/missions/next", params={"feeling": "just an ordinary day"}, headers=user)
    assert r.status_code == 200 and (r.json()["path"], r.json()["energy"]) == ("triad", "medium")
