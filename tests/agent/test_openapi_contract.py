"""The Agent Server API keeps its published contract: schemathesis generates requests for every
Agent Server operation of the app's OpenAPI document (valid ones and invalid ones, fixed seed,
bounded examples) and sends them to the real server; every answer must match the document
(status, content type, headers, body schema), valid requests must be accepted, invalid ones
refused, and nothing may answer 5xx. Checks not run, and why: `contract.EXCLUDED`
(ensure_resource_availability and use_after_free need OpenAPI links, which are not declared).

Then the bugs the contract run found, each pinned by a focused test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis

from tests.support import contract
from tests.support.servers import ApiServer

# Every Agent Server operation (tagged `agent: ...`), /ok and /info included. Without the coverage
# phase (its wrong-type values cost ~2.5 s per operation to build, ~100 s here; the bugs it found
# are pinned below) and with more generated examples instead, which cost milliseconds each.
EXAMPLES = 15
schema = contract.schema(examples=EXAMPLES, coverage=False).include(tag_regex="^agent")


def test_every_agent_server_operation_documents_its_answers() -> None:
    """A response model for every success that has a body, and the error bodies."""
    doc = contract.document()
    operations = [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if any(tag.startswith("agent") for tag in op.get("tags", ()))
    ]
    assert len(operations) >= 35
    for method, path, op in operations:
        answers = op["responses"]
        successes = {code: r for code, r in answers.items() if code.startswith("2")}
        assert successes, (method, path)
        for code, r in successes.items():
            if code in ("202", "204"):
                continue
            content = next(iter(r["content"].values()))
            assert content.get("schema") not in (None, {}), (method, path, code)
        errors = {code: r for code, r in answers.items() if code[0] in "45"}
        if path not in ("/ok", "/info"):
            assert {"401", "422"} <= set(errors), (method, path)
        for code, r in errors.items():
            ref = r["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/InvalidBody" if code == "422" else "/ErrorBody"), (method, path, code)


@schema.parametrize()
@contract.settings(EXAMPLES)
def test_contract(case: schemathesis.Case, agent_api: ApiServer) -> None:
    contract.validate(case, agent_api.url)


# --- what the contract run found ---------------------------------------------------------------


@pytest.fixture
def http(agent_api: ApiServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer dev:{uuid.uuid4()}"}
    with httpx.Client(base_url=agent_api.url, headers=headers, timeout=30) as client:
        yield client


def _threads(http: httpx.Client) -> int:
    return int(http.post("/threads/count", json={}).json())


@pytest.mark.parametrize("number", [2**70, 1e300, -(2**64), -9.223372036854776e18])
def test_a_number_no_answer_could_carry_is_refused_before_anything_is_written(
    http: httpx.Client, number: float
) -> None:
    # Was: the thread was stored, then its answer failed (500), and so did every read of it.
    r = http.post("/threads", json={"metadata": {"n": number}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("metadata"), r.text
    assert _threads(http) == 0
    ok = http.post("/threads", json={"metadata": {"n": 2**62, "x": 1.5e18}})
    assert ok.status_code == 200 and ok.json()["metadata"] == {"n": 2**62, "x": 1.5e18}


def test_numbers_and_flags_are_not_coerced(http: httpx.Client) -> None:
    # Was: `false` read as offset 0, "5" as limit 5.
    for body in ({"offset": False}, {"limit": "5"}, {"limit": True}):
        r = http.post("/threads/search", json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == next(iter(body)), (body, r.text)
    assert http.post("/threads/search", json={"limit": 5.0}).status_code == 200  # a JSON integer


def test_an_empty_thread_id_is_refused_not_replaced(http: httpx.Client) -> None:
    # Was: a thread with a new random id.
    r = http.post("/threads", json={"thread_id": ""})
    assert r.status_code == 422 and "thread ID" in r.json()["errors"][0]["message"], r.text
    assert _threads(http) == 0


def test_methods_a_path_does_not_serve_are_405_with_allow(http: httpx.Client) -> None:
    # Was: GET /threads/search read as the thread "search" (422), GET .../runs/wait as the run
    # "wait"; the read-only assistants answered 405 without `Allow`.
    thread = str(uuid.uuid4())
    for method, path, allow in (
        ("GET", "/threads/search", "POST"),
        ("DELETE", "/threads/count", "POST"),
        ("GET", "/assistants/search", "POST"),
        ("GET", f"/threads/{thread}/runs/wait", "POST"),
        ("DELETE", f"/threads/{thread}/runs/stream", "POST"),
        ("GET", f"/threads/{thread}/state/checkpoint", "POST"),
        ("PATCH", "/assistants/chat", "GET"),
    ):
        r = http.request(method, path)
        assert r.status_code == 405 and r.headers.get("allow") == allow, (method, path, r.status_code)


def test_a_route_refusal_names_its_field_in_the_422_body(http: httpx.Client) -> None:
    # Was: `{"detail": ...}` only, where every other 422 has `errors`.
    thread = http.post("/threads", json={}).json()["thread_id"]
    r = http.post(
        f"/threads/{thread}/runs/wait", json={"assistant_id": "chat", "webhook": "https://x.example"}
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "webhook", "message": "not supported by this service"}]
    r = http.get("/threads/not-a-uuid")
    assert r.status_code == 422 and "thread ID" in r.json()["errors"][0]["message"]


def test_another_threads_checkpoint_or_thread_is_not_found(http: httpx.Client) -> None:
    # Was: 422 for the checkpoint before the thread was even looked up.
    mine = http.post("/threads", json={}).json()["thread_id"]
    other = str(uuid.uuid4())
    ref = {"checkpoint": {"thread_id": other, "checkpoint_id": "x"}}
    assert http.post(f"/threads/{mine}/state/checkpoint", json=ref).status_code == 404
    assert http.post(f"/threads/{other}/state/checkpoint", json=ref).status_code == 404
