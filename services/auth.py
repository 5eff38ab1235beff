"""Turn a bearer token into a `Principal`; pure logic, the API layer only maps `AuthError` to 401.

Two modes (``AUTH_MODE``):

* ``dev``: the token is ``dev:<user-id>``; nothing is verified, so never expose it publicly.
* ``jwt``: an RS256 JWT checked against a JWKS (``JWT_JWKS_FILE`` or ``JWT_JWKS_URL``) for
  signature, ``exp``, ``aud``, ``iss`` and ``sub``.

The stored subject of a dev user is the token itself, ``dev:<user-id>``, and a JWT whose ``sub``
starts with ``dev:`` is refused: a dev instance on a shared database can never act as a JWT user.
User ids listed in ``ADMIN_USER_IDS`` (the part after ``dev:``, or the JWT ``sub``) get the
"admin" role in either mode.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt.exceptions import InvalidSubjectError

from core.settings import Settings
from core.text import require_storable

log = logging.getLogger(__name__)

ADMIN_ROLE = "admin"
ALGORITHMS = ["RS256"]  # pinned: never let the token header pick "none" or HS256
LEEWAY_S = 30
JWKS_TTL_S = 600.0
JWKS_REFETCH_INTERVAL_S = 30.0
JWKS_FETCH_TIMEOUT_S = 5.0
MAX_TOKEN_CHARS = 8192  # cheap guard before any parsing

DEV_PREFIX = "dev:"
_DEV_TOKEN = re.compile(rf"{DEV_PREFIX}([A-Za-z0-9_.@-]{{1,64}})")
MAX_SUBJECT_CHARS = 255


@dataclass(frozen=True)
class Principal:
    """`subject` is what `users.subject` stores: `dev:<id>` for dev tokens, the JWT `sub` as is
    (never starting with `dev:`), so the two modes never share a user."""

    subject: str
    roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


class AuthError(Exception):
    """Authentication failed; the message is short and safe to return to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _KeySet:
    """RS256 signing keys by ``kid``: loaded once from a file, or fetched and cached from a URL."""

    def __init__(
        self,
        *,
        url: str | None = None,
        keys: dict[str, jwt.PyJWK] | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = JWKS_TTL_S,
        refetch_interval_s: float = JWKS_REFETCH_INTERVAL_S,
    ) -> None:
        self._url = url
        self._keys: dict[str, jwt.PyJWK] = keys or {}
        self._client = http_client
        self._owns_client = http_client is None
        self._clock = clock
        self._ttl_s = ttl_s
        self._refetch_interval_s = refetch_interval_s
        self._loaded_at = -math.inf
        self._last_attempt = -math.inf
        self._lock = asyncio.Lock()
        self.fetches = 0  # observability/tests: how many times the URL was hit

    @classmethod
    def from_file(cls, path: Path) -> _KeySet:
        # Loaded once at start-up so a bad file fails fast, not on the first request.
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read JWKS file {path}: {type(err).__name__}") from None
        keys = _parse_jwks(data)
        if not keys:
            raise ValueError(f"JWKS file {path} has no usable RS256 signing keys")
        return cls(keys=keys)

    async def get(self, kid: str) -> jwt.PyJWK:
        if self._url is not None and (kid not in self._keys or self._stale()):
            async with self._lock:
                # Re-check under the lock: a concurrent request may already have refreshed.
                if (kid not in self._keys or self._stale()) and self._may_fetch():
                    await self._refresh()
        try:
            return self._keys[kid]
        except KeyError:
            raise AuthError("unknown signing key") from None

    def _stale(self) -> bool:
        return self._clock() - self._loaded_at >= self._ttl_s

    def _may_fetch(self) -> bool:
        # Rate limit: garbage kids (or a down endpoint) must not turn into one fetch per request.
        return self._clock() - self._last_attempt >= self._refetch_interval_s

    async def _refresh(self) -> None:
        assert self._url is not None
        self._last_attempt = self._clock()
        self.fetches += 1
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=JWKS_FETCH_TIMEOUT_S)
        try:
            resp = await self._client.get(self._url)
            resp.raise_for_status()
            keys = _parse_jwks(resp.json())
        except (httpx.HTTPError, ValueError) as err:
            # Keep serving the previous keys: a JWKS blip should not log everyone out.
            log.warning("JWKS fetch from %s failed: %s", self._url, type(err).__name__)
            return
        if not keys:
            log.warning("JWKS at %s has no usable RS256 signing keys", self._url)
            return
        self._keys = keys
        self._loaded_at = self._clock()
        log.info("loaded %d signing key(s) from %s", len(keys), self._url)

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        self._client = None


def _parse_jwks(data: Any) -> dict[str, jwt.PyJWK]:
    """Usable keys only: RSA/RS256, for signatures, with a kid. Other keys are skipped."""
    if not isinstance(data, dict):
        raise ValueError("JWKS is not a JSON object")
    try:
        keyset = jwt.PyJWKSet.from_dict(data)
    except jwt.PyJWTError:
        # PyJWT's messages may echo the JWK itself; keep key material out of logs.
        raise ValueError("JWKS has no usable keys") from None
    return {
        k.key_id: k
        for k in keyset.keys
        if k.key_id
        and k.key_type == "RSA"
        and k.algorithm_name == "RS256"
        and k.public_key_use in (None, "sig")
    }


# Specific (and safe) messages for the failures an operator most needs to tell apart.
_JWT_ERRORS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "invalid audience"),
    (jwt.InvalidIssuerError, "invalid issuer"),
    (InvalidSubjectError, "invalid subject"),
    (jwt.InvalidAlgorithmError, "unsupported algorithm"),
    (jwt.InvalidSignatureError, "invalid signature"),
    (jwt.DecodeError, "malformed token"),
]


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        *,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mode = settings.auth_mode
        self._admins = frozenset(settings.admin_user_ids)
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._keys: _KeySet | None = None
        if self._mode == "jwt":
            # A file wins over a URL: it is the explicit, offline choice.
            if settings.jwt_jwks_file is not None:
                self._keys = _KeySet.from_file(settings.jwt_jwks_file)
            elif settings.jwt_jwks_url:
                self._keys = _KeySet(url=settings.jwt_jwks_url, http_client=http_client, clock=clock)
            else:  # Settings validates this; guard anyway for hand-built settings
                raise ValueError("AUTH_MODE=jwt needs JWT_JWKS_URL or JWT_JWKS_FILE")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Authenticator:
        """`http_client`, if given, stays owned by the caller; `clock` is for tests."""
        return cls(settings, http_client=http_client, clock=clock)

    @property
    def jwks_fetches(self) -> int:
        return self._keys.fetches if self._keys else 0

    async def authenticate(self, token: str | None) -> Principal:
        if not token or not token.strip():
            raise AuthError("missing bearer token")
        token = token.strip()
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("token too large")
        if self._mode == "dev":
            return self._dev(token)
        return await self._jwt(token)

    def _principal(self, user_id: str, subject: str, roles: frozenset[str] = frozenset()) -> Principal:
        if user_id in self._admins:
            roles |= {ADMIN_ROLE}
        return Principal(subject=subject, roles=roles)

    def _dev(self, token: str) -> Principal:
        m = _DEV_TOKEN.fullmatch(token)
        if m is None:
            raise AuthError("malformed dev token")
        return self._principal(m.group(1), token)

    async def _jwt(self, token: str) -> Principal:
        assert self._keys is not None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        # Check alg and kid before any key lookup, so forged headers never trigger a JWKS fetch.
        if header.get("alg") not in ALGORITHMS:
            raise AuthError("unsupported algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token has no key id")
        key = await self._keys.get(kid)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.MissingRequiredClaimError as err:
            raise AuthError(f"missing claim: {err.claim}") from None
        except jwt.PyJWTError as err:
            msg = next((m for t, m in _JWT_ERRORS if isinstance(err, t)), "invalid token")
            raise AuthError(msg) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
            raise AuthError("invalid subject")
        if subject.startswith(DEV_PREFIX):  # the dev namespace (see the module docstring)
            raise AuthError("invalid subject")
        # A signed `sub` is still input: NUL or a lone surrogate answers 422, before any write.
        require_storable("sub", subject)
        return self._principal(subject, subject, _roles(claims))

    async def aclose(self) -> None:
        if self._keys is not None:
            await self._keys.aclose()


def _roles(claims: dict[str, Any]) -> frozenset[str]:
    roles = claims.get("roles")
    if roles is None:
        role = claims.get("role")
        roles = [] if role is None else [role]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("invalid roles claim")
    return frozenset(roles)
