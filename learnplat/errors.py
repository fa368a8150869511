"""Domain errors with stable codes; the HTTP layer maps each to an RFC 9457 problem document.

Services raise these and never import Falcon, so the same service works from a request, a task
or the CLI.

Every code an answer can carry is in the catalogue of problem types that the reference page
(``/docs#problem-types``) lists: a subclass here declares its code by existing (its docstring
explains it), a code raised on a core class (``Conflict(..., code="x")``) is declared in
`CORE_PROBLEMS`, a plugin's in its ``Plugin.problems``. Under ``server.check_responses`` an
answer with an undeclared code is a defect (learnplat.http.problems).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_TYPE = "urn:learnplat:problem:{code}"


@dataclass(frozen=True)
class ProblemCode:
    """A problem code's declaration in the catalogue of problem types (``Plugin.problems``,
    `CORE_PROBLEMS`): the status(es) an answer with it has, what it means to a school's
    developer and what to do about it, and the answer's `title` when it is not the title of
    the error class of that status (``Conflict``: "Conflict")."""

    status: int | tuple[int, ...]
    explanation: str
    title: str = ""

    @property
    def statuses(self) -> tuple[int, ...]:
        return self.status if isinstance(self.status, tuple) else (self.status,)


class LearnplatError(Exception):
    """The base of every domain error: an answer of `status` with the problem `code` and
    `title`; the detail says what was wrong this time."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.extra = extra
        self.headers: dict[str, str] = {}

    def to_problem(self) -> dict[str, Any]:
        doc = {
            "type": PROBLEM_TYPE.format(code=self.code),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        doc.update(self.extra)
        return doc


class BadRequest(LearnplatError):
    """The request cannot be read: malformed JSON, an empty body, a key twice in one object, a
    NUL in the query string, an unreadable header. Fix the request; retrying it unchanged
    fails again."""

    status, code, title = 400, "bad_request", "Malformed request"


class Unauthorized(LearnplatError):
    """No bearer token where one is needed, or one that is malformed, expired or from another
    school. Sign in (``POST /auth/login``) or refresh the token (``POST /auth/refresh``) and
    send it as ``Authorization: Bearer <access_token>``."""

    status, code, title = 401, "not_authenticated", "Not authenticated"

    def __init__(self, detail: str | None = None, **kw: Any):
        super().__init__(detail, **kw)
        self.headers["WWW-Authenticate"] = 'Bearer realm="learnplat"'


class PermissionDenied(LearnplatError):
    """Signed in, but the caller's role may not do this (the operation's `x-permission` says
    which permission it needs)."""

    status, code, title = 403, "permission_denied", "Not allowed"


class NotFound(LearnplatError):
    """Nothing here for this caller in this school: the object does not exist, is not visible
    to the caller, the school named by X-Tenant or the domain does not exist, or the feature
    is switched off for the school. learnplat answers 404 rather than 403 for what a caller
    may not know exists."""

    status, code, title = 404, "not_found", "Not found"


class Conflict(LearnplatError):
    """The request is valid but conflicts with the current state (a duplicate, a change made
    meanwhile by someone else). Read the current state and decide again."""

    status, code, title = 409, "conflict", "Conflict"


class Vetoed(Conflict):
    """A before_* hook refused the action; the detail is the plugin's reason."""

    code, title = "vetoed", "Refused by a plugin"


class PayloadTooLarge(LearnplatError):
    """The body is larger than the operation takes (`limit`, in bytes, when given): 1 MiB for
    JSON unless the operation says otherwise."""

    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(LearnplatError):
    """The body's Content-Type is not one the operation takes (``application/json``, or
    ``multipart/form-data`` for uploads)."""

    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class ValidationFailed(LearnplatError):
    """Invalid input; `errors` names each bad field as {field, message, type}."""

    status, code, title = 422, "validation_failed", "Invalid input"

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None):
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]) or "input"
        super().__init__(detail or f"invalid {summary}", errors=errors)
        self.errors = errors

    @classmethod
    def field(cls, field: str, message: str, type: str = "invalid") -> ValidationFailed:
        return cls([{"field": field, "message": message, "type": type}])


class UnsafeURL(ValidationFailed):
    """A URL learnplat will not send requests to (a webhook endpoint, a learning record
    store). `reason` says why: `scheme` (not http or https), `https_required` (http where the
    operator requires https), `credentials` (a user name or password in the URL), `no_host`
    (no host, or one that is not a valid name), `unresolvable` (the name does not resolve),
    `address` (the host is, or resolves to, an address that is not public: loopback,
    private, link-local, cloud metadata, shared, multicast, reserved, unspecified,
    documentation...; the detail names the address and its class) or `port`. Use a public
    https URL; an operator can allow private networks with ``outbound.allowed_networks``."""

    code, title = "unsafe_url", "Unsafe URL"

    def __init__(self, reason: str, message: str, field: str = "url"):
        super().__init__([{"field": field, "message": message, "type": "unsafe_url"}],
                         detail=message)
        self.reason = reason
        self.message = message
        self.extra["reason"] = reason


class RateLimited(LearnplatError):
    """A rate-limit budget is spent (the caller's, the school's or the client address's).
    Wait the seconds in Retry-After (also `retry_after` in the body); the RateLimit and
    RateLimit-Policy headers of every answer show how close a client is."""

    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None, **extra: Any):
        super().__init__(detail or f"retry after {retry_after} seconds",
                         retry_after=max(1, int(retry_after)), **extra)
        self.headers["Retry-After"] = str(max(1, int(retry_after)))


class ServiceUnavailable(LearnplatError):
    """A backing service (database, Redis, file store, a sign-in provider's configuration) is
    unavailable. Retry after the seconds in Retry-After; nothing was changed."""

    status, code, title = 503, "service_unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 5):
        super().__init__(detail)
        self.headers["Retry-After"] = str(retry_after)


# Codes raised on a core class with ``code=`` (no class of their own) by the core itself.
# Falcon's refusals (method_not_allowed...) and internal_error: learnplat.http.problems.
CORE_PROBLEMS: dict[str, ProblemCode] = {
    "unsupported_type": ProblemCode(
        415, "The uploaded file's type (read from its content, not its name or the part's "
        "Content-Type) is not one this upload takes; `allowed` lists those it does."),
    "not_an_image": ProblemCode(
        415, "The uploaded file is not an image that can be read: not an image at all, or "
        "truncated or corrupt."),
}
