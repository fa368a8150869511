"""The delivery engine's sink of grade passback: one destination per platform registration
(ref = its id), one score per request (AGS: a score is one learner's), sent to
``<lineitem>/scores`` with a bearer token the platform issued for our signed client
assertion (the IMS Security Framework's client credentials grant)."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from learnplat.plugin import (
    Answer,
    DestinationInfo,
    MessageInfo,
    NotReady,
    OutboundRequest,
    SecretBox,
    Sink,
    StoreUnavailable,
    Verdict,
    current_tenant,
    db,
)

from ..claims import SCOPE_SCORE
from ..models import PlatformRegistration
from .events import LtiPassbackSettled
from .notify import tell_admins

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

log = logging.getLogger(__name__)

SINK = "lti"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# A cached token is dropped this long before the platform said it expires: a request built
# with it must still reach the platform in time.
TOKEN_MARGIN = 60
ANSWER_SHOWN = 300  # characters of a token endpoint's answer kept in an attempt's reason


def scores_url(lineitem: str) -> str:
    """AGS: the scores endpoint is the line item URL with ``/scores`` added to its path,
    before any query string (``.../lineitems/7?type=x`` -> ``.../lineitems/7/scores?type=x``)."""
    parts = urlsplit(lineitem)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def platform_of(ref: str) -> PlatformRegistration | None:
    """The platform registration a destination's ref names, in the current school."""
    if not ref.isdigit():
        return None
    row: PlatformRegistration | None = PlatformRegistration.select().where(
        PlatformRegistration.id == int(ref)).first()
    return row


class TokenCache:
    """Access tokens per platform registration in the runtime's key-value store (shared by
    every worker), until shortly before the platform said they expire, encrypted (a bearer
    token read from Redis would post grades for an hour). The key holds the registration's
    client_id and token_url: an edited registration asks for a new token. A store that is
    down, or a value no secret in force decrypts, is not an error: the token is fetched
    again."""

    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin
        self._box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        if self._box is None:  # built on first use: the runtime exists by then
            self._box = SecretBox(self.plugin.runtime.secret_keys,
                                  info=b"lti-passback-tokens")
        return self._box

    def key(self, platform_id: int, client_id: str = "", token_url: str = "") -> str:
        digest = hashlib.sha256(f"{client_id}\n{token_url}".encode()).hexdigest()[:16]
        return f"lti:passback:token:{current_tenant().id}:{platform_id}:{digest}"

    def _index(self, platform_id: int) -> str:
        # The key in use for a platform, so a 401 can drop it knowing only the ref.
        return f"lti:passback:token-key:{current_tenant().id}:{platform_id}"

    def get(self, platform_id: int, client_id: str, token_url: str) -> str | None:
        try:
            stored = self.plugin.runtime.kv.get(self.key(platform_id, client_id, token_url))
        except StoreUnavailable:
            return None
        if not stored:
            return None
        try:
            return self.box.decrypt(stored).decode()
        except Exception:  # made under a secret no longer in force: fetch a new one
            return None

    def put(self, platform_id: int, client_id: str, token_url: str, token: str,
            expires_in: float) -> None:
        ttl = expires_in - TOKEN_MARGIN
        if ttl <= 0:
            return  # too short-lived to be worth keeping
        key = self.key(platform_id, client_id, token_url)
        try:
            self.plugin.runtime.kv.set(key, self.box.encrypt(token.encode()), ttl=ttl)
            self.plugin.runtime.kv.set(self._index(platform_id), key, ttl=ttl)
        except StoreUnavailable:
            pass

    def drop(self, platform_id: int) -> None:
        kv = self.plugin.runtime.kv
        try:
            key = kv.get(self._index(platform_id))
            if key:
                kv.delete(key)
            kv.delete(self._index(platform_id))
        except StoreUnavailable:
            pass


class LtiPassbackSink(Sink):
    """Scores to the platforms that launched the school's courses (AGS 2.0 score service)."""

    name = SINK
    batch_size = 1

    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin
        self.tokens = TokenCache(plugin)

    def settled(self, messages: Sequence[MessageInfo], status: str, answer: Answer) -> None:
        """Every passback's outcome is an event (webhooks and the audit trail see it)."""
        for m in messages:
            p: dict[str, Any] = m.payload if isinstance(m.payload, dict) else {}
            sent = p.get("score")
            score: dict[str, Any] = sent if isinstance(sent, dict) else {}
            error = None if status == "delivered" else (
                answer.error or f"HTTP {answer.status}")
            self.plugin.runtime.events.record(LtiPassbackSettled(
                passback_id=m.id, platform_id=int(p.get("platform_id") or 0),
                course_id=int(p.get("course_id") or 0), module_id=p.get("module_id"),
                user_id=int(p.get("user_id") or 0), status=status,
                score_given=score.get("scoreGiven"), score_maximum=score.get("scoreMaximum"),
                attempts=m.attempts + 1, http_status=answer.status,
                error=error[:500] if error else None))

    def request(self, destination: DestinationInfo, messages: Sequence[MessageInfo]
                ) -> OutboundRequest | None:
        platform = platform_of(destination.ref)
        if platform is None or not platform.enabled:
            return None  # the registration was removed or switched off: nowhere to send
        payload = messages[0].payload
        return OutboundRequest(
            url=scores_url(payload["lineitem"]),
            body=json.dumps(payload["score"], separators=(",", ":")).encode(),
            headers={"Content-Type": SCORE_TYPE})

    def authorize(self, destination: DestinationInfo, request: OutboundRequest
                  ) -> Mapping[str, str]:
        with db.transaction():  # the registration, and the school's key (made on first use)
            platform = platform_of(destination.ref)
            if platform is None:
                raise NotReady("the platform registration no longer exists")
            pid, client_id, token_url = platform.id, platform.client_id, platform.token_url
            cached = self.tokens.get(pid, client_id, token_url)
            assertion = None if cached else self.assertion(client_id, token_url)
        if cached:
            return {"Authorization": f"Bearer {cached}"}
        assert assertion is not None
        token, expires_in = self.fetch_token(token_url, assertion)
        self.tokens.put(pid, client_id, token_url, token, expires_in)
        return {"Authorization": f"Bearer {token}"}

    def assertion(self, client_id: str, token_url: str) -> str:
        """The client assertion (RFC 7523 as the IMS Security Framework profiles it): issued
        by and about our client id, for the platform's token endpoint, used once."""
        return self.plugin.keys.sign({"iss": client_id, "sub": client_id, "aud": token_url,
                                      "jti": str(uuid.uuid4())})

    def fetch_token(self, token_url: str, assertion: str) -> tuple[str, float]:
        """(access_token, expires_in) from the platform, or NotReady with its answer."""
        body = urlencode({"grant_type": "client_credentials",
                          "client_assertion_type": ASSERTION_TYPE,
                          "client_assertion": assertion, "scope": SCOPE_SCORE}).encode()
        answer = self.plugin.runtime.outbound.fetch(OutboundRequest(
            url=token_url, body=body, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "application/json"}))
        if answer.status is None:
            raise NotReady(f"token endpoint did not answer: {answer.error}")
        text = answer.head.decode("utf-8", "replace").strip()
        if not answer.ok:
            raise NotReady(f"token endpoint answered {answer.status}: {text[:ANSWER_SHOWN]}")
        try:
            data: Any = json.loads(text)
            token = data["access_token"]
            expires_in = float(data.get("expires_in") or 0)
        except (ValueError, TypeError, KeyError):
            raise NotReady(f"token endpoint answered {answer.status} without an access "
                           f"token: {text[:ANSWER_SHOWN]}") from None
        if not isinstance(token, str) or not token:
            raise NotReady(f"token endpoint answered {answer.status} without an access "
                           f"token: {text[:ANSWER_SHOWN]}")
        return token, expires_in

    def verdict(self, answer: Answer, messages: Sequence[MessageInfo]) -> Verdict:
        """2xx: the platform took the score. 409: lti1p3platform's and AGS's "older than the
        score held" (our timestamp is the event's, so a newer grade stands): nothing more to
        send, delivered. 401: the token expired or was revoked early: it is dropped and the
        score retried with a new one. 400, 404, 410, 422: the platform refuses this score
        (no such line item or user, a malformed score): rejected, shown to the instructor,
        redeliverable. Anything else (403, 429, 5xx, no answer): retried on the schedule."""
        status = answer.status
        if answer.ok or status == 409:
            return Verdict.DELIVERED
        if status == 401:
            for ref in {m.ref for m in messages}:
                if ref.isdigit():
                    self.tokens.drop(int(ref))
            return Verdict.RETRY
        if status in (400, 404, 410, 422):
            return Verdict.REJECTED
        return Verdict.RETRY

    def disabled(self, destination: DestinationInfo, reason: str) -> None:
        """The engine gave up on the platform (failing for days): the passbacks show it (its
        destination's disabled_reason) and the school's admins are told; enabling the
        registration again (or a redelivery after it is fixed) sends what waits."""
        platform = platform_of(destination.ref)
        tell_admins(self.plugin, platform, reason)
