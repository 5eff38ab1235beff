"""Channel senders for due nudges: in-app writes a notification row; email and sms POST JSON to
a configured webhook (a provider adapter) and otherwise only log, so nothing leaves the machine
unless configured."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import httpx

from core.logging import get_logger
from core.settings import Settings
from services.notifications import Notifications

log = get_logger("delight.senders")


class Sender(Protocol):
    async def send(self, user_id: uuid.UUID, nudge: dict[str, Any]) -> None: ...


class InAppSender:
    def __init__(self, notifications: Notifications) -> None:
        self.notifications = notifications

    async def send(self, user_id: uuid.UUID, nudge: dict[str, Any]) -> None:
        await self.notifications.record(
            user_id,
            kind="nudge",
            title=nudge.get("subject") or "A small step?",
            body=nudge["message"],
            data={"nudge_id": str(nudge["id"])},
            dedupe_key=f"nudge:{nudge['id']}",
        )


class WebhookSender:
    def __init__(self, channel: str, url: str | None, client: httpx.AsyncClient) -> None:
        self.channel = channel
        self.url = url
        self.client = client

    async def send(self, user_id: uuid.UUID, nudge: dict[str, Any]) -> None:
        payload = {
            "channel": self.channel,
            "user_id": str(user_id),
            "nudge_id": str(nudge["id"]),
            "subject": nudge.get("subject"),
            "message": nudge["message"],
        }
        if self.url is None:
            log.info("nudge not sent (no webhook configured)", extra={"nudge": payload})
            return
        # The nudge id doubles as the provider's idempotency key: a retried dispatch is one send.
        response = await self.client.post(
            self.url, json=payload, headers={"Idempotency-Key": str(nudge["id"])}
        )
        response.raise_for_status()


def build_senders(
    settings: Settings, notifications: Notifications, client: httpx.AsyncClient
) -> dict[str, Sender]:
    return {
        "in_app": InAppSender(notifications),
        "email": WebhookSender("email", settings.email_webhook_url, client),
        "sms": WebhookSender("sms", settings.sms_webhook_url, client),
    }
