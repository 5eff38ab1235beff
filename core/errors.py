"""Typed errors. Services raise these; the API maps them to HTTP status codes."""


class DelightError(Exception):
    """Base class: `message` is safe to show to a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DelightError):
    """The object does not exist or belongs to someone else (never tell which)."""


class Invalid(DelightError):
    """The request is well-formed but not acceptable."""


class Conflict(DelightError):
    """The request conflicts with the object's current state (e.g. completing a completed mission)."""


class Busy(DelightError):
    """A resource (a thread's turn lock) stayed busy past its timeout."""


class Unavailable(DelightError):
    """A dependency (the database, the model) is down or timed out."""


class ModelOutputInvalid(DelightError):
    """The model kept answering with output that fails the schema, after feedback retries."""


class Overloaded(DelightError):
    """Admission refused (a limit on runs in progress, queued or per minute): try again later."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Failed(DelightError):
    """A run failed for a reason of ours (a bug, not the request): the message is generic."""
