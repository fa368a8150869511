"""The one rule for an e-mail address entering learnplat: registration, the CLI (`users create`,
`users import`, `tenants create`'s admin) and OAuth sign-ups all go through `check_email`, so no
door accepts an address another refuses."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from learnplat.plugin import ValidationFailed

MAX_LENGTH = 254  # RFC 5321's limit on a forward path


def normalize_email(email: str) -> str:
    """How addresses are stored and compared: without surrounding spaces, lower-cased."""
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why `email` cannot be an account's address, or None when it can.

    email-validator's syntax rules without a DNS lookup (no network at sign-up): a domain with
    a dot, no special-use or reserved names (``.local``, ``.test``, ``localhost``...), no display
    names (``Ann <ann@example.org>``), at most 254 characters.
    """
    normalized = normalize_email(email)
    if len(normalized) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters"
    try:
        validate_email(normalized, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"not a valid email address: {exc}"
    return None


def check_email(email: str, field: str = "email") -> str:
    """The normalized address, or 422 naming `field`."""
    problem = email_problem(email)
    if problem:
        raise ValidationFailed.field(field, problem, "value_error")
    return normalize_email(email)
