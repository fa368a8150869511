"""Standard Webhooks signing (https://www.standardwebhooks.com/): the secrets
(``whsec_`` + base64 of 24 random bytes), stored encrypted under app.secret_key, and the
``webhook-signature`` header, one ``v1,<base64 HMAC-SHA256>`` per secret in force."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as random
from collections.abc import Sequence

from learnplat.plugin import SecretBox, SecretScan

PREFIX = "whsec_"
SECRET_BYTES = 24  # the spec asks for 24 to 64


def new_secret() -> str:
    return PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the bytes its base64 part encodes."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of (id, timestamp, body) under `secret`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: every secret's signature, space-separated (receivers
    accept the message when any of them verifies)."""
    return " ".join(signature(s, msg_id, timestamp, body) for s in secrets)


class SecretStore:
    """Encrypts and decrypts the secrets with a key derived from app.secret_key (and the
    secrets it replaced: app.old_secret_keys still decrypt)."""

    def __init__(self, secret_keys: Sequence[bytes]):
        self.box = SecretBox(list(secret_keys), info=b"webhooks-endpoint-secrets")

    def seal(self, secret: str) -> str:
        return self.box.encrypt(secret.encode())

    def open(self, token: str) -> str:
        return self.box.decrypt(token).decode()

    def scan(self, tokens: Sequence[str]) -> SecretScan:
        found = SecretScan()
        for token in tokens:
            found.add(self.box.state(token))
        return found
