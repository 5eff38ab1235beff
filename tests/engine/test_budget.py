"""The per-user daily model budget, through the real ChatOpenAI path: past LLM_DAILY_BUDGET_USD
(priced from the usage ledger) a user's turns still answer, from the free path, and no request
reaches the model; admins see the ledger and the guard."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.openai_server import FakeOpenAI


def completions(server: FakeOpenAI) -> list[dict[str, Any]]:
    return [b for b in server.requests if "messages" in b]


async def test_past_the_daily_budget_turns_take_the_free_path_and_admins_see_it(openai_app, model) -> None:
    app = openai_app(llm_daily_budget_usd=0.00005)  # less than one turn
    user = f"spender-{uuid.uuid4().hex[:6]}"
    me, admin = {"Authorization": f"Bearer dev:{user}"}, {"Authorization": "Bearer dev:admin"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
            first = await c.post("/api/v1/chat", json={"message": "I ran 5 km today"}, headers=me)
            assert first.status_code == 200 and first.json()["reply"] == model.reply_text
            assert first.json()["usage"]["cost_usd"] > 0.00005
            called = len(completions(model))
            assert called == 2  # the analysis and the reply

            second = await c.post(
                "/api/v1/chat",
                json={"message": "and 6 km tomorrow", "thread_id": first.json()["thread_id"]},
                headers=me,
            )
            assert second.status_code == 200 and second.json()["reply"]  # still answered
            assert second.json()["reply"] != model.reply_text  # by the free path
            assert second.json()["usage"]["cost_usd"] == 0
            assert len(completions(model)) == called  # the model was not called

            uid = (await app.state.services.users.ensure(f"dev:{user}")).id
            seen = await c.get(f"/api/v1/admin/usage/{uid}", headers=admin)
            assert seen.status_code == 200
            body = seen.json()
            assert body["over_budget"] is True and body["budget_usd"] == 0.00005
            assert body["today_usd"] == pytest.approx(first.json()["usage"]["cost_usd"])
            assert body["days"][0]["calls"] == 4 and "offline (over budget)" in body["days"][0]["models"]
            assert (await c.get(f"/api/v1/admin/usage/{uid}", headers=me)).status_code == 403
            assert (await c.get(f"/api/v1/admin/usage/{uuid.uuid4()}", headers=admin)).status_code == 404

            # Another user is not affected by this one's spend.
            other = await c.post(
                "/api/v1/chat", json={"message": "hello"}, headers={"Authorization": "Bearer dev:frugal"}
            )
            assert other.json()["reply"] == model.reply_text
