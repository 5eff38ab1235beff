"""Channel senders: without a webhook, email/sms nudges are logged (never raised, never sent)."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from services.senders import WebhookSender

NUDGE = {"id": "n-1", "message": "A small step today?", "subject": "Hi"}
USER = uuid.UUID(int=1)


async def test_unconfigured_channel_logs_instead_of_sending(caplog: pytest.LogCaptureFixture) -> None:
    async with httpx.AsyncClient() as client:
        with caplog.at_level(logging.INFO, logger="delight.senders"):
            await WebhookSender("sms", None, client).send(USER, NUDGE)
    [record] = [r for r in caplog.records if r.name == "delight.senders"]
    nudge = record.__dict__["nudge"]  # the log line's `extra`
    assert nudge["channel"] == "sms" and nudge["message"] == NUDGE["message"]


async def test_webhook_failure_raises_so_the_nudge_is_marked_failed() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.HTTPStatusError):
            await WebhookSender("email", "http://provider.test/send", client).send(USER, NUDGE)
