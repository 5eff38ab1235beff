"""The OpenAPI document tells the truth: schemathesis sends generated requests, valid and invalid,
to every `/api/v1` operation and `/health` of a real server (`python -m api` on its embedded
Postgres) and checks each answer against the document (status documented, body and headers as
documented, invalid input refused, valid input accepted, no 5xx, auth not ignored). Plain tests
pin the facts the document states for every operation, and the contract bugs the run found."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis

from api.errors import InvalidBody
from tests.conftest import auth
from tests.support import contract
from tests.support.servers import ApiServer

OURS = r"^/(api/v1/|health$)"
# The run's user is an admin, so the admin operations answer more than 403 (their 403 is pinned
# in tests/api/test_limits.py). Its own database: a fixed id keeps runs identical.
ADMIN = uuid.UUID(int=contract.SEED)
schema = contract.schema(token=contract.dev_token(ADMIN)).include(path_regex=OURS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    yield from contract.serve(tmp_path_factory.mktemp("contract"), ADMIN_USER_IDS=str(ADMIN))


@schema.parametrize()
@contract.settings()
def test_contract(case: schemathesis.Case, server: ApiServer) -> None:
    contract.validate(case, server.url)


# --- what the document states ------------------------------------------------------------------

DOC = contract.document()
REF = "#/components/schemas/{}"


def operations(prefix: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in DOC["paths"].items():
        if path.startswith(prefix):
            for method, op in ops.items():
                yield method.upper(), path, op


def body_ref(response: dict[str, Any]) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def test_the_server_publishes_this_document(server: ApiServer) -> None:
    served = httpx.get(f"{server.url}/openapi.json").json()
    assert served == json.loads(json.dumps(DOC))


def test_every_422_is_the_real_invalid_body() -> None:
    assert "HTTPValidationError" not in DOC["components"]["schemas"]
    assert "ValidationError" not in DOC["components"]["schemas"]
    for method, path, op in operations():
        assert body_ref(op["responses"]["422"]) == REF.format("InvalidBody"), (method, path)
    invalid = DOC["components"]["schemas"]["InvalidBody"]
    assert set(invalid["required"]) == {"detail", "errors"}
    assert DOC["components"]["schemas"]["Problem"]["required"] == ["field", "message"]


def test_edge_statuses_on_every_operation() -> None:
    for method, path, op in operations():
        responses = op["responses"]
        for code in ("431", "500", "503"):
            assert body_ref(responses[code]) or path == "/health", (method, path, code)
        assert responses["503"]["headers"]["Retry-After"]["required"] is True
        authenticated = bool(op.get("security"))
        assert ("401" in responses and "403" in responses) == authenticated, (method, path)
        assert ("413" in responses) == ("requestBody" in op), (method, path)
    assert "security" not in DOC["paths"]["/health"]["get"]
    assert "security" in DOC["paths"]["/api/v1/goals"]["get"]


def test_429_where_runs_start_with_retry_after() -> None:
    starts_runs = {
        ("POST", "/api/v1/chat"),
        ("POST", "/api/v1/chat/stream"),
        ("POST", "/api/v1/companion/chat"),
        ("POST", "/api/v1/goals"),
        ("POST", "/api/v1/goals/{goal_id}/decompose"),
        ("GET", "/api/v1/missions/next"),
        ("POST", "/api/v1/nudges/plan"),
        ("POST", "/threads/{thread_id}/runs/wait"),
    }
    for method, path, op in operations():
        if (method, path) in starts_runs:
            assert op["responses"]["429"]["headers"]["Retry-After"]["required"] is True, (method, path)
    assert "429" not in DOC["paths"]["/api/v1/goals"]["get"]["responses"]
    assert "429" not in DOC["paths"]["/health"]["get"]["responses"]


def success(op: dict[str, Any]) -> dict[str, Any]:
    return next((r for code, r in op["responses"].items() if code.startswith("2")), {})


def test_streams_are_event_streams() -> None:
    streams = {(m, p) for m, p, op in operations() if "text/event-stream" in success(op).get("content", {})}
    assert {
        ("POST", "/api/v1/chat/stream"),
        ("GET", "/api/v1/companion/stream/{conversation_id}"),
        ("POST", "/api/v1/goals/{goal_id}/decompose/stream"),
        ("GET", "/api/v1/runs/{run_id}/stream"),
        ("POST", "/threads/{thread_id}/runs/stream"),
        ("POST", "/runs/stream"),
    } <= streams
    for method, path in streams:
        content = success(DOC["paths"][path][method.lower()])["content"]
        assert list(content) == ["text/event-stream"], (method, path)
        assert content["text/event-stream"]["itemSchema"]["required"] == ["event", "data"]


def test_every_own_operation_documents_its_answer() -> None:
    for method, path, op in operations("/api/v1/"):
        success = [c for c in op["responses"] if c.startswith("2")]
        assert success, (method, path)
        for code in success:
            content = op["responses"][code].get("content", {})
            if code == "204" or "text/event-stream" in content:
                continue
            schema_ = content["application/json"]["schema"]
            assert schema_.get("$ref") or schema_.get("items", {}).get("$ref"), (method, path, code)
    health = DOC["paths"]["/health"]["get"]["responses"]
    assert body_ref(health["200"]) == body_ref(health["503"]) == REF.format("HealthOut")


def test_no_parameter_is_documented_as_null() -> None:
    """`?status=null` is the text "null": an optional query parameter is absent or a value."""
    for method, path, op in operations():
        for parameter in op.get("parameters", []):
            assert {"type": "null"} not in parameter["schema"].get("anyOf", []), (method, path, parameter)
            assert parameter["schema"].get("type") != "null"


# --- the contract bugs the run found, each pinned --------------------------------------------


async def test_patch_with_nothing_to_change_answers_the_goal(client: httpx.AsyncClient) -> None:
    """`{}` is a valid patch (every field is optional): it changes nothing and answers the goal,
    as the document says, instead of a 422."""
    user = auth(f"contract-{uuid.uuid4().hex[:8]}")
    created = await client.post(
        "/api/v1/goals", json={"title": "Learn to juggle", "value_category": "craft"}, headers=user
    )
    goal = created.json()["goal"]
    r = await client.patch(f"/api/v1/goals/{goal['id']}", json={}, headers=user)
    assert r.status_code == 200, r.text
    stored = (await client.get(f"/api/v1/goals/{goal['id']}", headers=user)).json()
    assert r.json() == {k: v for k, v in stored.items() if k != "milestones"}
    assert r.json()["title"] == goal["title"] == "Learn to juggle"
    other = auth(f"contract-{uuid.uuid4().hex[:8]}")
    assert (await client.patch(f"/api/v1/goals/{goal['id']}", json={}, headers=other)).status_code == 404
    # Null stays refused where the field cannot be cleared.
    r = await client.patch(f"/api/v1/goals/{goal['id']}", json={"title": None}, headers=user)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize("target_date", [0, 1767225600, 20260101.0, True])
async def test_a_date_is_text_not_a_number(client: httpx.AsyncClient, target_date: object) -> None:
    """pydantic's lax mode reads a number as a Unix time: the API takes only "YYYY-MM-DD"."""
    user = auth(f"contract-{uuid.uuid4().hex[:8]}")
    body = {"title": "Swim 1 km", "value_category": "health", "target_date": target_date}
    r = await client.post("/api/v1/goals", json=body, headers=user)
    assert r.status_code == 422, r.text
    assert [p.field for p in InvalidBody.model_validate(r.json()).errors] == ["target_date"]
    assert (await client.get("/api/v1/goals", headers=user)).json() == []


async def test_a_routes_own_422_has_the_invalid_body(client: httpx.AsyncClient) -> None:
    """A route that refuses input itself (`HTTPException(422)`) answers the same shape as every
    other 422, its message unchanged."""
    r = await client.get("/threads/not-a-uuid", headers=auth("contract-422"))
    assert r.status_code == 422
    body = InvalidBody.model_validate(r.json())
    assert body.detail == "Invalid thread ID: must be a UUID"
    assert body.errors[0].message == body.detail


def test_jobs_answer_every_method_on_one_path() -> None:
    """POST enqueues by name and GET reads by id on one documented path, so a GET of a job name
    is a missing job (404), not an undocumented method."""
    assert "/api/v1/jobs/{job}" in DOC["paths"]
    assert set(DOC["paths"]["/api/v1/jobs/{job}"]) == {"get", "post"}
