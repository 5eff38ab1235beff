"""The API in AUTH_MODE=jwt: RS256 tokens against a JWKS file; `sub` is the user, created on first
use; the stream route takes the token from the query string."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from httpx_sse import aconnect_sse

from api.app import create_app
from core.settings import Settings
from tests.support.jwks import AUD, ISS, new_key, sign, write_jwks


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture(scope="module")
def jwks_path(key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jwks(key, tmp_path_factory.mktemp("jwks") / "jwks.json")


@pytest.fixture(scope="module")
async def jwt_client(pg_url: str, jwks_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    path = jwks_path
    app = create_app(
        Settings(
            database_url=pg_url,
            auth_mode="jwt",
            jwt_jwks_file=path,
            jwt_audience=AUD,
            jwt_issuer=ISS,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jwt", timeout=30) as c:
            yield c


async def test_jwt_subject_is_the_user_and_dev_tokens_are_refused(jwt_client, key) -> None:
    sub = f"auth0|{uuid.uuid4().hex[:10]}"
    headers = {"Authorization": f"Bearer {sign(key, sub=sub)}"}
    r = await jwt_client.post("/api/v1/chat", json={"message": "My dog is called Pixel"}, headers=headers)
    assert r.status_code == 200
    tid = r.json()["thread_id"]
    assert (await jwt_client.get(f"/api/v1/threads/{tid}/state", headers=headers)).status_code == 200
    # Another subject is another user: the thread is not theirs.
    other = {"Authorization": f"Bearer {sign(key, sub='someone-else')}"}
    assert (await jwt_client.get(f"/api/v1/threads/{tid}/state", headers=other)).status_code == 404
    # Dev tokens mean nothing in jwt mode.
    dev = await jwt_client.post(
        "/api/v1/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer dev:{sub}"}
    )
    assert dev.status_code == 401


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"aud": "other-app"}, "invalid audience"),
        ({"iss": "https://evil.test"}, "invalid issuer"),
        ({"exp": int(time.time()) - 3600}, "token expired"),
    ],
)
async def test_jwt_claims_are_checked(jwt_client, key, claims, detail) -> None:
    r = await jwt_client.post(
        "/api/v1/chat",
        json={"message": "hi"},
        headers={"Authorization": f"Bearer {sign(key, **claims)}"},
    )
    assert r.status_code == 401 and r.json()["detail"] == detail


async def test_companion_stream_accepts_the_query_token(jwt_client, key) -> None:
    t = sign(key, sub=f"browser-{uuid.uuid4().hex[:6]}")
    cid = (
        await jwt_client.post(
            "/api/v1/companion/chat",
            json={"message": "hello"},
            headers={"Authorization": f"Bearer {t}"},
        )
    ).json()["conversation_id"]
    async with aconnect_sse(jwt_client, "GET", f"/api/v1/companion/stream/{cid}?token={t}") as source:
        events = [json.loads(e.data) async for e in source.aiter_sse()]
    assert events[-1]["type"] == "complete" and events[0]["type"] == "token"
