"""The OpenAPI 3.1 document's `webhooks` section: one entry per published event type, the
POST a school's endpoint receives (the three Standard Webhooks headers, the JSON body
``{type, timestamp, data}`` with `data` the event's public schema, as components)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

COMPONENTS = "#/components/schemas/"

HEADERS = [
    ("webhook-id", "The message's id: the same on every attempt and redelivery of it "
                   "(deduplicate on it).", "msg_88213"),
    ("webhook-timestamp", "When this attempt was signed, in Unix seconds: refuse one more "
                          "than five minutes away from your clock (a replay).", "1788426764"),
    ("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256 of "
                          "\"{webhook-id}.{webhook-timestamp}.{body}\">`, one per signing "
                          "secret in force (two during a rotation); accept when any matches.",
     "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
]


def _relink(node: Any, names: dict[str, str]) -> Any:
    """`node` with its local `#/$defs/X` references pointing at the components."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = COMPONENTS + names[value.removeprefix("#/$defs/")]
            else:
                out[key] = _relink(value, names)
        return out
    if isinstance(node, list):
        return [_relink(v, names) for v in node]
    return node


def _operation_id(name: str) -> str:
    return "webhook_" + name.replace(".", "_")


def describe(runtime: Runtime, document: dict[str, Any]) -> None:
    """Add the `webhooks` section (and its schemas) to `document`, in place."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    webhooks: dict[str, Any] = {}
    events = runtime.registry.events
    for name in sorted(events):
        decl = events[name]
        if not decl.type.published:
            continue
        schema = copy.deepcopy(decl.type.public_schema())
        defs = schema.pop("$defs", {})
        cls = decl.type.__name__
        names = {d: f"{cls}{d}" if d != cls else f"{cls}Nested" for d in defs}
        # A component's title is its name: generated clients name their classes after it.
        for d, sub in defs.items():
            components[names[d]] = {**_relink(sub, names), "title": names[d]}
        data_name, envelope = f"{cls}EventData", f"{cls}Webhook"
        components[data_name] = {**_relink(schema, names), "title": data_name}
        components[envelope] = {
            "type": "object", "title": envelope,
            "description": f"The body of each `{name}` delivery.",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"type": "string", "const": name},
                "timestamp": {"type": "string", "format": "date-time",
                              "description": "When the event happened (RFC 3339, UTC)."},
                "data": {"$ref": COMPONENTS + data_name},
            },
        }
        webhooks[name] = {"post": {
            "operationId": _operation_id(name),
            "summary": decl.description or name,
            "description": (f"{decl.description}\n\nPublished by the `{decl.plugin}` "
                            "plugin; delivered in the Standard Webhooks format to each "
                            "endpoint subscribed to it (docs/webhooks.md)."),
            "tags": ["webhooks"],
            "parameters": [{"name": h, "in": "header", "required": True,
                            "description": text, "schema": {"type": "string"},
                            "example": example} for h, text, example in HEADERS],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": COMPONENTS + envelope}}}},
            "responses": {
                "2XX": {"description": "Received: the delivery is done."},
                "410": {"description": "Gone: the endpoint is disabled, nothing more is "
                                       "sent to it."},
                "default": {"description": "Anything else (and no answer within the "
                                           "timeout): retried, for about three days."},
            },
        }}
    document["webhooks"] = webhooks
