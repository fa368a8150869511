"""The identity plugin's part of a generated data set (its ``seed_tenant`` hook).

Sizes: ``users`` (400): 1 admin, ``instructors`` (20) instructors, the rest students;
``login_accounts`` (0) of the students are made by the identity service with the password
``login_password`` (one argon2 hash each: accounts a benchmark or a demo signs in with), the
others in bulk without a password (OAuth-only accounts, as the service would make them).
E-mails are ``<role><n>@<school slug>.example``.

Leaves in ``seed.made``: ``identity.admins``, ``identity.instructors``, ``identity.students``
(user ids) and ``identity.logins`` (the e-mails of the accounts with a password).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from learnplat.plugin import ValidationFailed

from .models import User

if TYPE_CHECKING:
    from learnplat.plugin import Seed

    from .services import IdentityService


def seed_tenant(service: IdentityService, seed: Seed) -> None:
    users, instructors = seed.size("users", 400), seed.size("instructors", 20)
    logins, password = seed.size("login_accounts", 0), seed.size("login_password", "")
    if users < 1 + instructors or logins > users - 1 - instructors:
        raise ValidationFailed.field("users", "at least 1 admin, the instructors and the "
                                              "login accounts", "range")
    if logins and not password:
        raise ValidationFailed.field("login_password", "a password for the login accounts",
                                     "missing")
    roles = ["admin"] + ["instructor"] * instructors
    roles += ["student"] * (users - len(roles))
    email = [f"{role}{n}@{seed.tenant.slug}.example" for n, role in enumerate(roles)]
    first_student = 1 + instructors

    def rows(numbers: range) -> list[dict[str, object]]:
        return [{"email": email[n], "name": f"{roles[n].title()} {n}", "role": roles[n],
                 "email_verified": True, "created_at": seed.now, "updated_at": seed.now}
                for n in numbers]

    ids = seed.bulk_ids(User, rows(range(first_student)), kind="users")
    made_logins = []
    for n in range(first_student, first_student + logins):
        ids.append(service.create_user(email[n], password, f"Student {n}",
                                       email_verified=True).id)
        made_logins.append(email[n])
    seed.rows["users"] += logins
    ids += seed.bulk_ids(User, rows(range(first_student + logins, users)), kind="users")
    seed.made["identity.admins"] = ids[:1]
    seed.made["identity.instructors"] = ids[1:first_student]
    seed.made["identity.students"] = ids[first_student:]
    seed.made["identity.logins"] = made_logins
