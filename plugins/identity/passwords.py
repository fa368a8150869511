"""Password hashing (argon2id via argon2-cffi) and the password policy."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from learnplat.plugin import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher()


# An argon2id hash of a public string with argon2-cffi's default parameters (the hasher's):
# verifying against it costs what verifying a real password costs, and it needs no hashing
# at start-up (~0.27 s of CPU in every process: a CLI command, each server worker).
_DUMMY = ("$argon2id$v=19$m=65536,t=3,p=4$h8GjD8hs9XTeHhAp3CBjIA$"
          "qN3SggI/q+nfA9WAx8XYnfq940/z2QLHHMks3//g/Aw")


@functools.cache
def dummy_hash() -> str:
    """Verified when the email is unknown, so a failed login costs the same either way: the
    constant above while the hasher's parameters are the ones it was made with, else one
    made with the hasher in force (once per process)."""
    if not _hasher.check_needs_rehash(_DUMMY):
        return _DUMMY
    return _hasher.hash("learnplat-timing-equaliser")


def normalize_password(password: str) -> str:
    """Surrounding whitespace is never part of a password, whichever way it enters (the API,
    the CLI, a CSV cell) and at login alike: a pasted trailing space must not lock anyone out."""
    return password.strip()


def check_policy(password: str, email: str, field: str = "password") -> None:
    """The password policy, for every way a password enters (after normalize_password)."""
    if len(password) < MIN_LENGTH:
        raise ValidationFailed.field(field, f"use at least {MIN_LENGTH} characters", "too_short")
    if len(password) > MAX_LENGTH:
        raise ValidationFailed.field(field, f"use at most {MAX_LENGTH} characters", "too_long")
    local = email.split("@", 1)[0].lower()
    if password.lower() in (email.lower(), local) or (len(local) >= 4 and local in
                                                      password.lower()):
        raise ValidationFailed.field(field, "must not contain your email", "contains_email")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, new hash when the parameters changed and it should be stored)."""
    if not password_hash:
        try:
            _hasher.verify(dummy_hash(), password)
        except VerificationError:
            pass
        return False, None
    try:
        _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if _hasher.check_needs_rehash(password_hash):
        return True, _hasher.hash(password)
    return True, None


def burn_time(password: str) -> None:
    """Spend one verification's time (unknown email)."""
    verify(None, password)
