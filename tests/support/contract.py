"""Schemathesis against a running service: the published OpenAPI document is the contract, and
every answer the server gives to generated requests (valid and invalid ones) must match it.

Use it from a test module:

    schema = contract.schema().include(path_regex="^/api/v1/")

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
        yield from contract.serve(tmp_path_factory.mktemp("contract"))

    @schema.parametrize()
    @contract.settings()
    def test_contract(case: schemathesis.Case, server: ApiServer) -> None:
        contract.validate(case, server.url)

The document is the app's own (`create_app().openapi()`, no server needed to build it), so pytest
collects one test per operation, `test_contract[METHOD /path]`; the cases go over real HTTP to
the server `python -m api` runs, and a plain test can assert that the server publishes the same
document (`test_the_server_publishes_this_document`). (schemathesis' lazy
`schemathesis.pytest.from_fixture` sets a node attribute pytest 9.2 no longer has.) The coverage
phase builds its cases when pytest collects the module: most of a run's time, about a second per
operation on two cores. Requests carry a dev bearer token
(`dev:<uuid>`, accepted from loopback only) of a fresh user per schema, so the run never sees
another test's data; the `ignored_auth` check sends them without it as well.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from schemathesis import Case
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi import checks as openapi_checks

from tests.support.servers import ApiServer, start

SEED = 20261129
# Schemathesis' default answers to a valid request.
POSITIVE_STATUSES: list[str | int] = ["2xx", 401, 403, 404, 409, "5xx"]
# Generated cases per operation and generation mode (positive, negative). Bounded so the whole
# service is covered in about a minute on two cores; the seed makes every run the same.
EXAMPLES = 6
REQUEST_TIMEOUT_S = 30

# Checks not run, each with why. Everything else schemathesis has runs on every case.
EXCLUDED: dict[Callable[..., Any], str] = {
    # Creating a resource and reading it back through another operation needs OpenAPI links
    # (stateful testing); without them the check only guesses, and the service's deliberate 404
    # for another user's object looks like a missing resource.
    openapi_checks.ensure_resource_availability: "needs OpenAPI links; not declared",
    openapi_checks.use_after_free: "needs OpenAPI links; not declared",
}


def dev_token(user: uuid.UUID | None = None) -> str:
    """A dev-auth bearer token for `user` (a fresh one by default)."""
    return f"dev:{user or uuid.uuid4()}"


def config(
    token: str | None = None, *, examples: int = EXAMPLES, seed: int = SEED, coverage: bool = True
) -> schemathesis.Config:
    """Schemathesis' configuration: the bearer token on every request, both generation modes,
    the example, coverage and fuzzing phases, a fixed seed, bounded examples. The coverage phase
    (boundary and wrong-type values for every parameter) is built when pytest collects the
    module and costs ~2 s per operation with path parameters; `coverage=False` leaves it out."""
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
            "phases": {"coverage": {"enabled": coverage}},
            "headers": {"Authorization": f"Bearer {token or dev_token()}"},
            "request-timeout": REQUEST_TIMEOUT_S,
            "generation": {
                "mode": "all",
                "max-examples": examples,
                "deterministic": True,
                "database": "none",
                # The service ignores query parameters it does not know (a browser's cache-buster,
                # a proxy's tag): a request with one is not invalid, so none are invented.
                "allow-extra-parameters": False,
            },
            "checks": {
                # A valid request that starts a run can be refused for load (429 with
                # Retry-After, documented on every such operation): per-user run rate and
                # queue limits are deliberate.
                "positive_data_acceptance": {"expected-statuses": [*POSITIVE_STATUSES, 429]},
            },
        }
    )


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document the service publishes at /openapi.json (built without starting it).
    Shared: do not modify it."""
    from api.app import create_app

    return create_app().openapi()


def schema(*, token: str | None = None, examples: int = EXAMPLES, coverage: bool = True) -> BaseSchema:
    """The service's schema for `schema.parametrize()`, configured as above."""
    return schemathesis.openapi.from_dict(
        document(), config=config(token, examples=examples, coverage=coverage)
    )


def load(url: str, *, token: str | None = None, examples: int = EXAMPLES) -> BaseSchema:
    """The schema a running server publishes at `url` (for a one-off run outside pytest)."""
    return schemathesis.openapi.from_url(f"{url}/openapi.json", config=config(token, examples=examples))


def settings(examples: int = EXAMPLES) -> hypothesis.settings:
    """Hypothesis' side: no deadline (a case is a real HTTP round trip to a server that may run a
    graph), no example database (runs stay reproducible), and no shrinking budget wasted on
    slow operations: the first failure is reported as found."""
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )


def validate(case: Case, base_url: str, **kwargs: Any) -> None:
    """Send `case` to the server at `base_url` and run every check but the excluded ones on the
    answer."""
    case.call_and_validate(
        base_url=base_url, excluded_checks=list(EXCLUDED), timeout=REQUEST_TIMEOUT_S, **kwargs
    )


def serve(data: Path, **env: str) -> Iterator[ApiServer]:
    """The real server (`python -m api`, the embedded Postgres in `data`) for a module's contract
    run, stopped afterwards. Use as the body of a module-scoped fixture."""
    api = start(data, **env)
    try:
        yield api
    finally:
        api.stop()
