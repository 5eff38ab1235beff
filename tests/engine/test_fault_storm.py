"""A fault storm through the real ChatOpenAI path: the OpenAI-compatible server answers 10 % of
requests 429, 5 % 500 and hangs 2 % (past LLM_TIMEOUT_S), with the default retries. Over 300
turns no answer is a 500, a turn whose reply could not be written answers 503 with Retry-After,
and no user message is lost: each is in its thread's transcript, `ok` or marked `failed`."""

from __future__ import annotations

import asyncio
import uuid

import httpx

USERS, TURNS = 10, 30


async def test_three_hundred_turns_in_a_fault_storm_answer_no_500_and_lose_no_message(
    openai_app, model
) -> None:
    app = openai_app(
        llm_timeout_s=0.5,  # a hung request is given up after this, then retried
        llm_backoff_max_s=0.05,
        branch_timeout_s=3.0,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as c:
            users = [f"storm-{uuid.uuid4().hex[:6]}" for _ in range(USERS)]
            threads = {}
            for u in users:  # each user's conversation, started before the storm
                r = await c.post(
                    "/api/v1/chat", json={"message": "hello"}, headers={"Authorization": f"Bearer dev:{u}"}
                )
                assert r.status_code == 200
                threads[u] = r.json()["thread_id"]
            model.storm(rate_429=0.10, rate_500=0.05, rate_hang=0.02, hang_s=2.0, seed=11)

            outcomes: dict[str, list[tuple[str, int]]] = {u: [] for u in users}

            async def talk(u: str) -> None:
                for i in range(TURNS):
                    text = f"turn {i} of {u}: today was a day"
                    r = await c.post(
                        "/api/v1/chat",
                        json={"message": text, "thread_id": threads[u]},
                        headers={"Authorization": f"Bearer dev:{u}"},
                    )
                    if r.status_code == 503:
                        assert int(r.headers["retry-after"]) > 0 and r.json()["detail"]
                    outcomes[u].append((text, r.status_code))

            await asyncio.gather(*(talk(u) for u in users))

            codes = [code for turns in outcomes.values() for _, code in turns]
            assert len(codes) == USERS * TURNS
            assert set(codes) <= {200, 503}, sorted(set(codes))
            assert codes.count(200) >= 0.9 * len(codes)  # retries absorb most faults
            for u in users:
                rows = await app.state.services.db.fetch(
                    "SELECT content, status FROM chat_messages WHERE thread_id = %s AND role = 'user' "
                    "ORDER BY created_at",
                    (threads[u],),
                )
                said = [(r["content"], r["status"]) for r in rows][1:]  # after "hello"
                expected = [(text, "ok" if code == 200 else "failed") for text, code in outcomes[u]]
                assert said == expected
            # The model down for good: the reply cannot be written, the turn says so (503 with
            # Retry-After) and its message is kept, marked.
            model.storm(rate_429=0, rate_500=1.0, rate_hang=0, hang_s=0, seed=0)
            u = users[0]
            r = await c.post(
                "/api/v1/chat",
                json={"message": "is anyone there?", "thread_id": threads[u]},
                headers={"Authorization": f"Bearer dev:{u}"},
            )
            assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
            assert r.json()["detail"] == "the model is unavailable just now, try again shortly"
            last = await app.state.services.db.fetchrow(
                """SELECT content, status FROM chat_messages WHERE thread_id = %s
                   ORDER BY created_at DESC LIMIT 1""",
                (threads[u],),
            )
            assert (last["content"], last["status"]) == ("is anyone there?", "failed")
    assert len(model.requests) > 4 * USERS * TURNS  # the storm was met: many requests were retries
