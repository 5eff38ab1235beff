"""Structured logs: one JSON object per line, so every node's line can be grepped and parsed."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


# Database errors carry the values they were given: SQLAlchemy appends the statement's
# parameters to str(exc) (user text, whole embeddings), Postgres' DETAIL/CONTEXT lines quote
# rows, keys and JSON, and some primary messages quote the refused value. Log lines keep the
# error's class, message and SQL, never those values. Whatever form the error reaches a log
# in (str, repr with escaped newlines, a traceback), it passes through `redact`.
_QUOTED = r'"(?:[^"\\\n]|\\.)*"'
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # One line: SQLAlchemy writes the parameters with repr(), which escapes newlines.
    (re.compile(r"\[parameters: [^\n]*"), "[parameters: redacted]"),
    # libpq's "FIELD:  text" lines, to the end of the line (of the whole value when a repr
    # escaped the newlines: more is dropped then, never less).
    (re.compile(r"(DETAIL|CONTEXT|HINT|QUERY|WHERE|STATEMENT):  [^\n]*"), r"\1:  [redacted]"),
    # Primary messages that quote the value: `invalid input syntax for type uuid: "..."`,
    # `malformed array literal: "..."`, `value "..." is out of range`, `time zone "..."`.
    (re.compile(rf"(for (?:type|enum) [^:\n]{{1,80}}|literal): {_QUOTED}"), r'\1: "[redacted]"'),
    (re.compile(rf"\b(value|time zone) {_QUOTED}"), r'\1 "[redacted]"'),
]


def redact(text: str) -> str:
    """`text` with the values database errors quote replaced by `[redacted]`."""
    if "[parameters: " not in text and ":  " not in text and '"' not in text:
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, BaseException):
        return redact(repr(value))
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        entry.update({k: _safe(v) for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is now (test runners swap it; atexit hooks log late)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request access lines from uvicorn duplicate our own request logs.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
