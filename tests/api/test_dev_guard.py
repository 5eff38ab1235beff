"""Dev auth (`Bearer dev:<id>`, unverified) must never face a network, however the app is served:
`create_app` refuses a non-loopback HOST with the same one-line error as `python -m api`, and a
request from a non-loopback client is refused whatever address the server was bound to."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from core.settings import ROOT
from tests.conftest import auth
from tests.support.servers import clean_env

ONE_LINE = "invalid configuration: AUTH_MODE=dev only binds loopback (set HOST=127.0.0.1)"


def test_uvicorn_factory_refuses_dev_auth_on_a_public_host() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", "0"],
        cwd=ROOT,
        env=clean_env(HOST="0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [ONE_LINE]


@pytest.mark.parametrize(
    ("client_host", "status"),
    [("192.0.2.10", 403), ("10.1.2.3", 403), ("::1", 200), ("::ffff:127.0.0.1", 200), ("127.0.0.9", 200)],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/memories"), ("POST", "/threads/search"), ("POST", "/assistants/search")],
)
async def test_dev_tokens_only_from_loopback_clients(
    app, client_host: str, status: int, method: str, path: str
) -> None:
    """The Delight routes and the Agent Server API check the caller the same way."""
    transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        body: dict[str, object] | None = {} if method == "POST" else None
        r = await c.request(method, path, headers=auth("remote"), json=body)
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json() == {"detail": "dev auth serves loopback clients only"}
