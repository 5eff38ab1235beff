"""services.auth: dev tokens, RS256 JWT checks, and the JWKS cache against a real local server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from core.settings import Settings
from services.auth import Authenticator, AuthError, Principal

AUD = "delight"
ISS = "https://issuer.test"


# --- helpers ----------------------------------------------------------------------------------


def _jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "user-1", "aud": AUD, "iss": ISS, "iat": now, "exp": now + 300}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: rsa.RSAPrivateKey, kid: str, **overrides: Any) -> str:
    return jwt.encode(_claims(**overrides), key, algorithm="RS256", headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], secret: bytes | None) -> str:
    """Hand-built token: PyJWT refuses to create these, which is exactly the point."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims()).encode())}"
    sig = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a mutable JWKS and counting hits."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps(server.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key1() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_file(tmp_path: Path, key1: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [_jwk(key1, "k1")]}))
    return path


@pytest.fixture
def file_auth(jwks_file: Path) -> Authenticator:
    settings = Settings(
        auth_mode="jwt",
        jwt_jwks_file=jwks_file,
        jwt_audience=AUD,
        jwt_issuer=ISS,
        admin_user_ids=["boss"],
    )
    return Authenticator.from_settings(settings)


@pytest.fixture
def dev_auth() -> Authenticator:
    return Authenticator.from_settings(Settings(auth_mode="dev", admin_user_ids=["root@ops"]))


@pytest.fixture
def jwks_server(key1: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.jwks = {"keys": [_jwk(key1, "k1")]}
    yield server
    server.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def url_auth(jwks_server: JwksServer, clock: FakeClock) -> Any:
    settings = Settings(
        auth_mode="jwt",
        jwt_jwks_url=jwks_server.url,
        jwt_audience=AUD,
        jwt_issuer=ISS,
        admin_user_ids=[],
    )
    auth = Authenticator.from_settings(settings, clock=clock)
    yield auth
    await auth.aclose()


async def _fails(auth: Authenticator, token: str | None, message: str) -> None:
    with pytest.raises(AuthError) as exc:
        await auth.authenticate(token)
    assert exc.value.message == message
    if token:
        assert token not in str(exc.value)  # never echo the token back


# --- dev mode ---------------------------------------------------------------------------------


async def test_dev_token_ok(dev_auth: Authenticator) -> None:
    p = await dev_auth.authenticate("dev:alice_01.x@example-co")
    # Stored as the token itself: the dev namespace, apart from every JWT subject.
    assert p == Principal(subject="dev:alice_01.x@example-co")
    assert not p.is_admin


@pytest.mark.parametrize(
    "token",
    [
        "alice",
        "dev:",
        "dev:has space",
        "dev:a/b",
        "Bearer dev:alice",
        "dev:" + "a" * 65,
        "dev:a\nb",
    ],
)
async def test_dev_token_malformed(dev_auth: Authenticator, token: str) -> None:
    await _fails(dev_auth, token, "malformed dev token")


@pytest.mark.parametrize("token", [None, "", "   "])
async def test_missing_token(dev_auth: Authenticator, token: str | None) -> None:
    await _fails(dev_auth, token, "missing bearer token")


async def test_dev_admin_from_settings(dev_auth: Authenticator) -> None:
    p = await dev_auth.authenticate("dev:root@ops")
    assert p.is_admin and p.roles == frozenset({"admin"})


# --- jwt mode, JWKS file ----------------------------------------------------------------------


async def test_jwt_valid_via_file(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    p = await file_auth.authenticate(_sign(key1, "k1"))
    assert p == Principal(subject="user-1")
    assert file_auth.jwks_fetches == 0


async def test_jwt_expired(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    await _fails(file_auth, _sign(key1, "k1", exp=int(time.time()) - 60), "token expired")


async def test_jwt_leeway_accepts_just_expired(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    p = await file_auth.authenticate(_sign(key1, "k1", exp=int(time.time()) - 5))
    assert p.subject == "user-1"


async def test_jwt_wrong_audience(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    await _fails(file_auth, _sign(key1, "k1", aud="someone-else"), "invalid audience")


async def test_jwt_wrong_issuer(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    await _fails(file_auth, _sign(key1, "k1", iss="https://evil.test"), "invalid issuer")


@pytest.mark.parametrize("claim", ["sub", "exp", "aud", "iss"])
async def test_jwt_missing_required_claim(
    file_auth: Authenticator, key1: rsa.RSAPrivateKey, claim: str
) -> None:
    await _fails(file_auth, _sign(key1, "k1", **{claim: None}), f"missing claim: {claim}")


async def test_jwt_empty_sub(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    await _fails(file_auth, _sign(key1, "k1", sub=""), "invalid subject")


async def test_jwt_wrong_signing_key(file_auth: Authenticator, key2: rsa.RSAPrivateKey) -> None:
    await _fails(file_auth, _sign(key2, "k1"), "invalid signature")


async def test_jwt_hs256_with_public_key_as_secret_rejected(
    file_auth: Authenticator, key1: rsa.RSAPrivateKey
) -> None:
    pem = key1.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = _forge({"alg": "HS256", "typ": "JWT", "kid": "k1"}, pem)
    await _fails(file_auth, token, "unsupported algorithm")


async def test_jwt_alg_none_rejected(file_auth: Authenticator) -> None:
    token = _forge({"alg": "none", "typ": "JWT", "kid": "k1"}, None)
    await _fails(file_auth, token, "unsupported algorithm")


async def test_jwt_unknown_kid(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    await _fails(file_auth, _sign(key1, "nope"), "unknown signing key")


async def test_jwt_garbage(file_auth: Authenticator) -> None:
    await _fails(file_auth, "not.a.jwt", "malformed token")


async def test_jwt_roles_claim(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    p = await file_auth.authenticate(_sign(key1, "k1", roles=["admin", "coach"]))
    assert p.is_admin and p.roles == frozenset({"admin", "coach"})

    p = await file_auth.authenticate(_sign(key1, "k1", role="admin"))
    assert p.is_admin

    p = await file_auth.authenticate(_sign(key1, "k1", roles=["coach"]))
    assert not p.is_admin

    await _fails(file_auth, _sign(key1, "k1", roles="admin coach"), "invalid roles claim")


async def test_jwt_admin_from_settings(file_auth: Authenticator, key1: rsa.RSAPrivateKey) -> None:
    p = await file_auth.authenticate(_sign(key1, "k1", sub="boss"))
    assert p.is_admin


def test_jwks_file_without_usable_keys(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}))
    settings = Settings(
        auth_mode="jwt", jwt_jwks_file=path, jwt_audience=AUD, jwt_issuer=ISS, admin_user_ids=[]
    )
    with pytest.raises(ValueError, match="no usable RS256"):
        Authenticator.from_settings(settings)


# --- jwt mode, JWKS URL -----------------------------------------------------------------------


async def test_jwks_url_valid_and_cached(
    url_auth: Authenticator, jwks_server: JwksServer, key1: rsa.RSAPrivateKey
) -> None:
    for _ in range(3):
        assert (await url_auth.authenticate(_sign(key1, "k1"))).subject == "user-1"
    assert jwks_server.hits == 1


async def test_jwks_url_key_rotation(
    url_auth: Authenticator,
    jwks_server: JwksServer,
    clock: FakeClock,
    key1: rsa.RSAPrivateKey,
    key2: rsa.RSAPrivateKey,
) -> None:
    await url_auth.authenticate(_sign(key1, "k1"))
    assert jwks_server.hits == 1

    jwks_server.jwks = {"keys": [_jwk(key1, "k1"), _jwk(key2, "k2")]}
    clock.advance(31)  # past the refetch window, well inside the cache TTL
    p = await url_auth.authenticate(_sign(key2, "k2", sub="rotated"))
    assert p.subject == "rotated"
    assert jwks_server.hits == 2

    await url_auth.authenticate(_sign(key2, "k2"))
    await url_auth.authenticate(_sign(key1, "k1"))
    assert jwks_server.hits == 2


async def test_jwks_url_refetch_rate_limited(
    url_auth: Authenticator, jwks_server: JwksServer, clock: FakeClock, key1: rsa.RSAPrivateKey
) -> None:
    await url_auth.authenticate(_sign(key1, "k1"))
    clock.advance(31)

    # A burst of garbage kids, concurrent and then sequential: exactly one refetch.
    tokens = [_sign(key1, f"garbage-{i}") for i in range(20)]
    results = await asyncio.gather(*(url_auth.authenticate(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, AuthError) and r.message == "unknown signing key" for r in results)
    for t in tokens:
        await _fails(url_auth, t, "unknown signing key")
    clock.advance(29)
    await _fails(url_auth, _sign(key1, "garbage-late"), "unknown signing key")
    assert jwks_server.hits == 2

    # Known keys keep working while refetches are throttled.
    assert (await url_auth.authenticate(_sign(key1, "k1"))).subject == "user-1"

    clock.advance(2)  # window over: one more refetch is allowed
    await _fails(url_auth, _sign(key1, "garbage-after"), "unknown signing key")
    assert jwks_server.hits == 3


async def test_jwks_url_forged_headers_never_fetch(url_auth: Authenticator, jwks_server: JwksServer) -> None:
    await _fails(url_auth, _forge({"alg": "none", "kid": "x"}, None), "unsupported algorithm")
    await _fails(url_auth, _forge({"alg": "HS256", "kid": "x"}, b"s"), "unsupported algorithm")
    assert jwks_server.hits == 0


async def test_jwks_url_ttl_refresh_and_outage_keeps_keys(
    url_auth: Authenticator, jwks_server: JwksServer, clock: FakeClock, key1: rsa.RSAPrivateKey
) -> None:
    await url_auth.authenticate(_sign(key1, "k1"))
    clock.advance(601)  # cache expired: a known kid triggers a refresh
    await url_auth.authenticate(_sign(key1, "k1"))
    assert jwks_server.hits == 2

    jwks_server.close()  # endpoint down: stale keys keep serving
    clock.advance(601)
    assert (await url_auth.authenticate(_sign(key1, "k1"))).subject == "user-1"
    assert url_auth.jwks_fetches == 3
