"""Domain errors with stable codes; the HTTP layer maps each to an RFC 9457 problem document.

Services raise these and never import Falcon, so the same service works from a request, a task
or the CLI.
"""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE = "urn:learnplat:problem:{code}"


class LearnplatError(Exception):
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
    status, code, title = 400, "bad_request", "Malformed request"


class Unauthorized(LearnplatError):
    status, code, title = 401, "not_authenticated", "Not authenticated"

    def __init__(self, detail: str | None = None, **kw: Any):
        super().__init__(detail, **kw)
        self.headers["WWW-Authenticate"] = 'Bearer realm="learnplat"'


class PermissionDenied(LearnplatError):
    status, code, title = 403, "permission_denied", "Not allowed"


class NotFound(LearnplatError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(LearnplatError):
    status, code, title = 409, "conflict", "Conflict"


class Vetoed(Conflict):
    """A before_* hook refused the action; the detail is the plugin's reason."""

    code, title = "vetoed", "Refused by a plugin"


class PayloadTooLarge(LearnplatError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(LearnplatError):
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


class RateLimited(LearnplatError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None, **extra: Any):
        super().__init__(detail or f"retry after {retry_after} seconds",
                         retry_after=max(1, int(retry_after)), **extra)
        self.headers["Retry-After"] = str(max(1, int(retry_after)))


class ServiceUnavailable(LearnplatError):
    status, code, title = 503, "service_unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 5):
        super().__init__(detail)
        self.headers["Retry-After"] = str(retry_after)
