"""What a browser app on another origin needs from the HTTP layer: CORS (configured, per auth
mode), offline docs, the Agent Server graph route, and the page at `/`."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from pydantic import ValidationError

from api.app import create_app
from core.settings import Settings, describe_error
from graphs.registry import WORKFLOWS, compile_workflow
from tests.conftest import auth

APP = "http://localhost:5173"


def preflight(
    origin: str, method: str = "POST", headers: str = "authorization,content-type"
) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


# --- CORS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [APP, "http://127.0.0.1:3000", "http://[::1]:8080", "http://localhost"])
async def test_dev_mode_answers_preflight_from_loopback_origins(
    client: httpx.AsyncClient, origin: str
) -> None:
    r = await client.options("/api/v1/companion/chat", headers=preflight(origin))
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == origin
    assert {"POST", "GET", "PATCH", "DELETE"} <= set(r.headers["access-control-allow-methods"].split(", "))
    allowed = {h.lower() for h in r.headers["access-control-allow-headers"].split(", ")}
    assert {"authorization", "content-type", "last-event-id"} <= allowed
    assert "access-control-allow-credentials" not in r.headers  # bearer tokens, no cookies


async def test_preflight_for_resuming_an_event_stream_is_allowed(client: httpx.AsyncClient) -> None:
    r = await client.options(
        "/api/v1/companion/stream/x", headers=preflight(APP, "GET", "authorization,last-event-id")
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == APP


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example:80", "null"])
async def test_other_origins_get_no_cors_grant(client: httpx.AsyncClient, origin: str) -> None:
    r = await client.options("/api/v1/companion/chat", headers=preflight(origin))
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = await client.get("/api/v1/companion/history", headers={**auth("cors-x"), "Origin": origin})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_a_header_the_app_does_not_send_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.options("/api/v1/chat", headers=preflight(APP, "POST", "authorization,x-debug"))
    assert r.status_code == 400


async def test_cross_origin_responses_and_the_event_stream_carry_the_grant(client: httpx.AsyncClient) -> None:
    user = f"cors-{uuid.uuid4().hex[:8]}"
    r = await client.get("/api/v1/companion/history", headers={**auth(user), "Origin": APP})
    assert r.headers["access-control-allow-origin"] == APP and "Origin" in r.headers["vary"]
    cid = (
        await client.post(
            "/api/v1/companion/chat", json={"message": "hi"}, headers={**auth(user), "Origin": APP}
        )
    ).json()["conversation_id"]
    async with aconnect_sse(
        client, "GET", f"/api/v1/companion/stream/{cid}?token=dev:{user}", headers={"Origin": APP}
    ) as source:
        assert source.response.headers["access-control-allow-origin"] == APP
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert [json.loads(e.data) async for e in source.aiter_sse()][-1]["type"] == "complete"
    # Errors too: a browser app can read why it was refused.
    r = await client.get("/api/v1/companion/history", headers={"Origin": APP})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == APP
    r = await client.post(
        "/api/v1/chat",
        content=b"x" * (65 * 1024),
        headers={**auth(user), "Origin": APP, "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.headers["access-control-allow-origin"] == APP


def _jwt(**kw: Any) -> Settings:
    return Settings(
        auth_mode="jwt", jwt_jwks_file=Path("jwks.json"), jwt_audience="delight", jwt_issuer="issuer", **kw
    )


async def _preflight_on(settings: Settings, origin: str) -> httpx.Response:
    # Preflights are answered by the middleware alone: no lifespan (database) needed.
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return await c.options("/api/v1/companion/chat", headers=preflight(origin))


async def test_jwt_mode_allows_no_origin_unless_configured() -> None:
    assert _jwt().allowed_origins == []
    assert (await _preflight_on(_jwt(), APP)).status_code == 400
    app = "https://app.delight.example"
    configured = _jwt(cors_origins=[app])
    assert (await _preflight_on(configured, app)).headers["access-control-allow-origin"] == app
    assert (await _preflight_on(configured, APP)).status_code == 400


async def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://app.delight.example, http://192.168.1.20:*")
    s = Settings(_env_file=None)
    assert s.allowed_origins == ["https://app.delight.example", "http://192.168.1.20:*"]
    r = await _preflight_on(s, "http://192.168.1.20:4173")
    assert r.headers["access-control-allow-origin"] == "http://192.168.1.20:4173"
    assert (await _preflight_on(s, "http://192.168.1.200:4173")).status_code == 400
    assert (await _preflight_on(s, APP)).status_code == 400  # set: the loopback default is gone
    monkeypatch.setenv("CORS_ORIGINS", "")
    assert Settings(_env_file=None).allowed_origins == []
    monkeypatch.setenv("CORS_ORIGINS", "*")
    r = await _preflight_on(Settings(_env_file=None), "https://anywhere.example")
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "bad", ["https://app.example.com/", "app.example.com", "https://app.example.com/x", "ftp://a"]
)
def test_a_malformed_origin_stops_start_up_with_one_line(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("CORS_ORIGINS", f"http://localhost:3000,{bad}")
    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None)
    line = describe_error(err.value)
    assert line.startswith("invalid configuration: CORS_ORIGINS: ") and repr(bad) in line


# --- docs, page ------------------------------------------------------------------------------


async def test_docs_pages_load_their_assets_from_this_service(client: httpx.AsyncClient) -> None:
    for page, assets in (
        ("/docs", ["/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"]),
        ("/redoc", ["/docs-assets/redoc.standalone.js"]),
    ):
        html = (await client.get(page)).text
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert all(r.startswith("/") for r in refs), refs  # nothing from a CDN or font service
        for asset in assets:
            assert asset in refs
            r = await client.get(asset)
            assert r.status_code == 200 and len(r.content) > 100_000


async def test_the_page_and_its_assets_are_served_without_auth(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert "static/app.js" in refs and "static/app.css" in refs
    for name in ("app.js", "graph.js", "sse.js", "app.css"):
        asset = await client.get(f"/static/{name}")
        assert asset.status_code == 200
    assert (await client.get("/static/../core/settings.py")).status_code == 404


# --- Agent Server: assistants/{id}/graph ------------------------------------------------------


async def test_assistant_graph_is_the_workflows_drawable_graph(client: httpx.AsyncClient) -> None:
    r = await client.get("/assistants/chat/graph", headers=auth("graph-reader"))
    assert r.status_code == 200
    body = r.json()
    expected = compile_workflow("chat", Settings(), None).get_graph().to_json()
    for n in expected["nodes"]:
        n.get("data", {}).pop("id", None)
    assert body == json.loads(json.dumps(expected, default=str))
    ids = {n["id"] for n in body["nodes"]}
    assert {"__start__", "detect_emotion", "compose_reply", "remember_exchange", "__end__"} <= ids
    assert "__error_handler__retrieve_memories" in ids
    assert {"source": "compose_reply", "target": "remember_exchange"} in body["edges"]
    # The decomposition's conditional edges are marked as such.
    decomposition = (await client.get("/assistants/goal_decomposition/graph", headers=auth("g"))).json()
    assert any(e.get("conditional") for e in decomposition["edges"])


async def test_assistant_id_may_be_the_agent_servers_uuid_for_the_graph(client: httpx.AsyncClient) -> None:
    assistant = uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "chat")
    by_uuid = await client.get(f"/assistants/{assistant}/graph", headers=auth("g"))
    by_name = await client.get("/assistants/chat/graph", headers=auth("g"))
    assert by_uuid.status_code == 200 and by_uuid.json() == by_name.json()
    xray = await client.get("/assistants/chat/graph?xray=true", headers=auth("g"))
    assert xray.status_code == 200 and xray.json()["nodes"]
    assert set(WORKFLOWS) >= {"chat", "goal_decomposition"}


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/assistants/nope/graph", 404, "assistant 'nope' not found"),
        (f"/assistants/{uuid.uuid4()}/graph", 404, "not found"),
        ("/assistants/chat/graph?xray=maybe", 422, "invalid xray value"),
        ("/assistants/chat/graph?xray=0", 422, "invalid xray value"),
    ],
)
async def test_assistant_graph_bad_input(
    client: httpx.AsyncClient, path: str, status: int, detail: str
) -> None:
    r = await client.get(path, headers=auth("g"))
    assert r.status_code == status and detail in r.json()["detail"].lower()
    assert (await client.get("/assistants/chat/graph")).status_code == 401
