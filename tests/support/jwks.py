"""RS256 tokens and a JWKS file for the API's AUTH_MODE=jwt tests (one signing key, kid k1)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

AUD, ISS = "delight-app", "https://auth.delight.test"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign(key: rsa.RSAPrivateKey, **claims: object) -> str:
    """A token valid for five minutes; `claims` override or add to sub/aud/iss/iat/exp."""
    now = int(time.time())
    body = {"sub": "user-jwt-1", "aud": AUD, "iss": ISS, "iat": now, "exp": now + 300, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def write_jwks(key: rsa.RSAPrivateKey, path: Path) -> Path:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}))
    return path
