"""The webhooks sink of the delivery engine: a queued message becomes one signed POST to its
endpoint, in the Standard Webhooks format."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from learnplat.plugin import DestinationInfo, MessageInfo, OutboundRequest, Sink

from .models import Endpoint
from .services import SINK, webhook_id
from .signing import signature_header

if TYPE_CHECKING:
    from .services import WebhooksService


def body_of(message: MessageInfo) -> bytes:
    """The bytes sent: the stored payload as compact JSON (fixed when it was queued, so
    every attempt and redelivery sends the same bytes)."""
    return orjson.dumps(message.payload)


class WebhookSink(Sink):
    name = SINK
    batch_size = 1

    def __init__(self, service: WebhooksService):
        self.service = service

    def request(self, destination: DestinationInfo, messages: Sequence[MessageInfo]
                ) -> OutboundRequest | None:
        endpoint = Endpoint.select().where(Endpoint.id == int(destination.ref)).first()
        if endpoint is None or not endpoint.enabled:
            return None
        message = messages[0]
        secrets = self.service.secrets_in_force(endpoint.id)
        if not secrets:  # cannot happen through the API; refuse to send unsigned
            return None
        msg_id = webhook_id(message.key)
        timestamp = int(time.time())
        body = body_of(message)
        return OutboundRequest(endpoint.url, body, {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        })

    def disabled(self, destination: DestinationInfo, reason: str) -> None:
        self.service.mark_disabled(int(destination.ref), reason)
