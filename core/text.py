"""What Postgres can store as text: the one check behind every text input (request bodies, query,
path, headers, token claims). Postgres `text` cannot hold NUL, and a lone UTF-16 surrogate (which
JSON's `\\ud800` escape produces) is not encodable as UTF-8 nor accepted by `jsonb`."""

from __future__ import annotations

import re

from core.errors import InvalidText

_SURROGATE = re.compile("[\ud800-\udfff]")

NUL_MESSAGE = "must not contain NUL characters (\\u0000)"
SURROGATE_MESSAGE = "must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)"


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored in Postgres text or jsonb, or None when it can."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii() and _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def require_storable(field: str, text: str) -> str:
    """`text` unchanged, or `InvalidText` naming `field` (the API answers 422)."""
    if (reason := unstorable(text)) is not None:
        raise InvalidText(field, reason)
    return text
