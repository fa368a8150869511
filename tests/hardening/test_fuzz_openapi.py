"""schemathesis against the OpenAPI document the app serves (GET /openapi.json), as an admin,
an instructor and a student of one populated school.

For every operation, bounded and derandomized (repeatable in CI):
- positive examples with the path parameters of real objects the role may act on (a course
  it owns or follows, its module, quiz, attempt, rating, thread, notification...), so the
  authenticated routes really run;
- positive examples with generated path parameters (unknown ids: 404, never 500);
- negative examples (invalid bodies and queries) with real path parameters: a 4xx, never
  accepted.

Checks: not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance, negative_data_rejection, plus ours: every 4xx/5xx is
application/problem+json with type/title/status/detail, and data the document calls valid is
not answered 400/413/415/422. Tokens are minted afresh for every request and the actors
restored after operations that change users, so logout, deactivation and role changes cannot
starve the run; rate limits stay off (learnplat.testing's default). Finally, for each role,
the operations its permissions allow must not answer only 401/403, and many must answer 2xx.

On PostgreSQL+Redis (CI) each role runs EXAMPLES per operation it may use and one of each
kind per operation it may not; the embedded default (SQLite), what `bin/serve` runs, gets a
smaller budget of one of each kind; LEARNPLAT_TEST_FUZZ_EXAMPLES asks for more on either.
Requests run as a server thread runs them (learnplat.testing.ServedApp), with the tenant cache
on: a request that leaves its thread out of step fails the run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import hypothesis
import pytest
from fuzzhelpers import (
    ROLES,
    Actors,
    Tally,
    now,
    populate,
    problem_check,
)
from hypothesis import HealthCheck, Phase, given

from learnplat.testing import backend, served

schemathesis = pytest.importorskip("schemathesis")

# Examples per operation a role may use: (positive, real ids), (positive, generated ids),
# (negative, real ids). LEARNPLAT_TEST_FUZZ_EXAMPLES="8,2,4" runs a longer fuzzing, also on
# SQLite, which otherwise skips it (CI fuzzes on PostgreSQL+Redis; the SQLite run keeps the
# suite's budget).
_ASKED = os.environ.get("LEARNPLAT_TEST_FUZZ_EXAMPLES", "")
EXAMPLES = tuple(int(n) for n in (
    _ASKED or ("4,1,2" if backend() == "postgres" else "1,1,1")).split(","))
DENIED_EXAMPLES = (1, 1, 1)

# Operations that change the state other operations depend on run after the rest; DELETE last.
_LIFECYCLE = ("/approve", "/reject", "/withdraw", "/archive", "/restore", "/submit",
              "/auth/logout", "/role", "/regenerate", "/revoke")
# Operations that act on another user (a victim), never on the fuzzing actor.
_ON_VICTIM = {("PUT", "/users/{user_id}/role"), ("DELETE", "/users/{user_id}"),
              ("POST", "/users/{user_id}/unlock")}


def _order(op: Any) -> tuple[int, str]:
    if op.method.upper() == "DELETE":
        rank = 3
    elif any(op.path.endswith(s) for s in _LIFECYCLE):
        rank = 2
    elif op.method.upper() == "GET":
        rank = 0
    else:
        rank = 1
    return rank, op.label


def _allowed(op: Any, role: str, permissions: dict[str, dict[str, str]]) -> bool:
    perm = op.definition.raw.get("x-permission")
    if perm in ("public", "authenticated"):
        return True
    return bool(permissions.get(perm, {}).get(role))


def _fixed_path(op: Any, ids: dict[str, Any]) -> dict[str, Any]:
    names = [p["name"] for p in op.definition.raw.get("parameters", [])
             if p.get("in") == "path"]
    fixed = {n: ids[n] for n in names if n in ids}
    if "user_id" in fixed and (op.method.upper(), op.path) in _ON_VICTIM:
        fixed["user_id"] = ids["victim_id"]
    if "course_id" in fixed and op.path.endswith(("/submit", "/withdraw")):
        fixed["course_id"] = ids["draft_id"]
    return fixed


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance,
            response_schema_conformance, negative_data_rejection]


def fuzz(schema: Any, tenant: Any, actors: Actors, role: str, ids: dict[str, Any],
         permissions: dict[str, dict[str, str]]) -> tuple[Tally, list[str]]:
    from schemathesis import GenerationMode

    checks = _checks()
    tally = Tally(role)
    allowed: list[str] = []
    started = now()
    def exercise(case: Any, op: Any, mode: Any) -> None:
        headers = {"Authorization": f"Bearer {actors.token(role)}", "X-Tenant": tenant.slug}
        response = case.call(headers=headers)
        tally.add(op.label, response.status_code)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except BaseExceptionGroup as group:  # schemathesis' FailureGroup: record, go on
            for failure in group.exceptions:
                tally.fail(op.label, type(failure).__name__, str(group))
        problem = problem_check(response)
        if problem:
            tally.fail(op.label, "problem+json", problem)
        if (mode == GenerationMode.POSITIVE and response.status_code in (400, 413, 415, 422)
                and not beyond_schema(op, response)):
            tally.fail(op.label, "positive data refused",
                       f"{response.status_code} {response.text[:600]}\n"
                       f"{case.as_curl_command(headers=headers)[:900]}")
        if op.method.upper() != "GET" and op.path.startswith(("/users", "/auth")):
            actors.restore()

    ops = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
    for op in ops:
        if op.path == "/notifications/ws":
            continue
        # An operation the role may not use answers 401/403 before it reads anything: a few
        # examples show that (and that the refusal is a problem document).
        examples = EXAMPLES if _allowed(op, role, permissions) else DENIED_EXAMPLES
        if examples is EXAMPLES:
            allowed.append(op.label)
        fixed = _fixed_path(op, ids)
        plans = [(GenerationMode.POSITIVE, fixed, examples[0]),
                 (GenerationMode.POSITIVE, None, examples[1]),
                 (GenerationMode.NEGATIVE, fixed, examples[2])]
        for mode, path_parameters, n in plans:
            if n == 0:
                continue
            strategy = op.as_strategy(generation_mode=mode, path_parameters=path_parameters,
                                      headers={"X-Tenant": tenant.slug})

            try:
                _runner(strategy, n, lambda case, op=op, mode=mode: exercise(case, op, mode))()
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to negate: no body or query, and the path is fixed
    tally.seconds = now() - started
    return tally, allowed


def _runner(strategy: Any, n: int, body: Any) -> Any:
    """A hypothesis test of `n` derandomized examples of `strategy`, no shrinking (a finding
    is recorded, not raised, so nothing is shrunk)."""

    @hypothesis.settings(max_examples=n, derandomize=True, database=None, deadline=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        body(case)

    return run


# 422s that no JSON Schema can foresee, because they depend on the school's data or compare
# two fields: each is named in the operation's description or its field's.
_BEYOND_SCHEMA_TYPES = {
    "mismatch",          # a reorder must list exactly this course's modules / quiz's questions
    "unknown_question",  # answers are keyed by this quiz's question ids
    "not_found",         # prerequisite_id must be a module of the same course
    "unknown",           # a user, course or question id that this school does not have
    "contains_email",    # the password must not contain the email
    "beyond_duration",   # a playback position beyond the duration (two fields compared)
    "bad_filename",      # Unicode control/format characters (no portable JSON Schema class)
    "idempotency_key_reused",  # the fuzzer sent one Idempotency-Key with another request
    "unsafe_url",        # a URL the delivery engine may not reach (DNS, the address's class)
    "unknown_event_type",  # a webhook's event pattern matching no published event
    "bad_range",         # a time range whose `until` is not after its `since` (two fields)
    "needed_here",       # optional in the body, needed by this school's state (an LRS's secret)
    "invalid_url",       # a URL only browsers visit: a host, https unless the policy says not
    "unusable_key",      # a JWK whose numbers make no RSA key (no schema checks the math)
}
_BEYOND_SCHEMA_MESSAGES = (
    "seconds",                               # progress: the school's max video length
    "index of an option", "option indices",  # an answer index below len(options)
    "between 2000 and 2200",                 # a date-time's range (no JSON Schema keyword)
)


def beyond_schema(op: Any, response: Any) -> bool:
    """Whether a refusal of data the document calls valid depends on what no schema can
    say: the school's data, a comparison of two fields, an uploaded file's bytes (415 or a
    422 on the file), a configured size limit (413), an opaque cursor."""
    status = response.status_code
    if status == 413:
        return True
    if "/lti/schools/{school}/" in op.path and status == 400 and _problem_title(
            response) == "LTI launch refused":
        # An LTI peer's message checked against the protocol's state: a pending launch or
        # login, a nonce never seen, a signature by the registered key. Every field may be
        # absent from the request so that the refusal names the failed check (and is
        # audited) instead of a generic 422.
        return True
    multipart = "multipart/form-data" in (op.definition.raw.get("requestBody") or {}).get(
        "content", {})
    if multipart and status in (400, 415):  # the bytes, and how parts are named
        return True
    try:
        errors = response.json().get("errors") or []
    except Exception:
        return False
    if not errors:
        return False
    return all(e.get("type") in _BEYOND_SCHEMA_TYPES or e.get("field") == "cursor"
               or (multipart and e.get("field") == "file" and e.get("type") != "missing")
               or any(m in (e.get("message") or "") for m in _BEYOND_SCHEMA_MESSAGES)
               for e in errors)


def _problem_title(response: Any) -> str:
    try:
        return str(response.json().get("title", ""))
    except Exception:
        return ""


@pytest.fixture(scope="module")
def permissions(lp_runtime: Any) -> dict[str, dict[str, str]]:
    """permission -> {role: "any"|"own"} as the loaded plugins declare them."""
    out: dict[str, dict[str, str]] = {}
    for name, perm in lp_runtime.registry.permissions.items():
        out[name] = {role: scope for role, scope in perm.grants.items() if scope}
    return out


@pytest.mark.parametrize("role", ROLES)
def test_fuzz_openapi(role: str, lp_app: Any, lp_client: Any, lp_users: Any, lp_runtime: Any,
                      lp_tenant: Any, permissions: dict[str, dict[str, str]],
                      lp_tenant_cache: None) -> None:
    users, ids = populate(lp_client, lp_users, lp_runtime, lp_tenant, role)
    actors = Actors(lp_runtime, lp_tenant, users)
    # Served as a server thread serves it, with the tenant cache on as in production: a
    # request that leaves the thread out of step fails the run (learnplat.testing.ServedApp).
    schema = schemathesis.openapi.from_wsgi("/openapi.json", served(lp_app))
    assert schema.raw_schema == json.loads(lp_client.get("/openapi.json").text)
    tally, allowed = fuzz(schema, lp_tenant, actors, role, ids, permissions)
    print(f"FUZZ {role}: {len(tally.statuses)} operations ({len(allowed)} allowed to the role, "
          f"{len(tally.with_success(allowed))} of them answered 2xx, "
          f"{len(tally.only_denied(allowed))} only 401/403), {tally.examples} requests, "
          f"5xx: {sum(c for s in tally.statuses.values() for k, c in s.items() if k >= 500)}, "
          f"actors restored {actors.restored} times, {tally.seconds:.1f} s")
    print(tally.summary())
    failures = "\n\n".join(f"{label} [{kind}]\n{msg}"
                           for (label, kind), msg in sorted(tally.failures.items()))
    assert not tally.failures, f"{len(tally.failures)} findings:\n{failures}"
    denied = tally.only_denied(allowed)
    assert len(denied) <= max(2, len(allowed) // 20), (
        f"{role}: {len(denied)} of {len(allowed)} operations it may use answered only 401/403:"
        f" {denied}")
    succeeded = tally.with_success(allowed)
    assert len(succeeded) >= len(allowed) // 2, (
        f"{role}: only {len(succeeded)} of {len(allowed)} allowed operations answered 2xx")


@hypothesis.settings(max_examples=400, derandomize=True, database=None)
@given(text=hypothesis.strategies.text(alphabet=" \t\x1c\x85\u3000\ufeff\x00ab,", max_size=14),
       minimum=hypothesis.strategies.integers(0, 4),
       maximum=hypothesis.strategies.integers(0, 10))
def test_string_patterns_match_what_schema_accepts(text: str, minimum: int,
                                                   maximum: int) -> None:
    """The pattern the document gives a Schema string (stripped, no NUL) names exactly the
    strings the API accepts, surrounding white space of every kind pydantic strips
    included (U+001C is not one of them, U+0085 is)."""
    import re

    from pydantic import Field, ValidationError

    from learnplat.plugin import Schema

    class Probe(Schema):
        value: str = Field(min_length=minimum, max_length=maximum)

    prop = Probe.model_json_schema()["properties"]["value"]
    documented = (re.search(prop["pattern"], text) is not None
                  and len(text) <= prop.get("maxLength", len(text)))
    try:
        Probe(value=text)
        accepted = True
    except ValidationError:
        accepted = False
    if documented:
        assert accepted, (text, prop["pattern"])
    if accepted and text == text.strip():
        assert documented, (text, prop["pattern"])


def test_tiny_floats_are_read_as_zero(lp_client: Any, lp_users: Any) -> None:
    """Found by the fuzzing on PostgreSQL: a float below single precision's range (a pass
    mark of 3e-283) made PostgreSQL's REAL column refuse the row, a 500. A magnitude below
    1e-30 is read as 1e-30."""
    t = lp_client.as_(lp_users.make("instructor").token)
    cid = t.post("/courses", json={"title": "Tiny"}).json["id"]
    mid = t.post(f"/courses/{cid}/modules", json={"title": "M"}).json["id"]
    r = t.post(f"/courses/{cid}/modules/{mid}/quiz", json={
        "title": "Q", "pass_mark": 3e-283, "questions": [
            {"type": "true_false", "prompt": "?", "answer": True, "points": 1e-300}]})
    assert r.status_code == 201, r.text
    quiz = r.json
    assert 0 < quiz["pass_mark"] < 1e-29
    r = t.put(f"/courses/{cid}/modules/{mid}/quiz/{quiz['id']}", json={"pass_mark": 2.9e-283})
    assert r.status_code == 200, r.text
    assert 0 < r.json["pass_mark"] < 1e-29


def test_booleans_are_not_numbers(lp_client: Any, lp_users: Any) -> None:
    """Found by the negative fuzzing: `estimated_minutes: true` was read as 1 (pydantic's lax
    mode) although the document says integer. A boolean for a number field is a 422."""
    t = lp_client.as_(lp_users.make("instructor").token)
    cid = t.post("/courses", json={"title": "Bools"}).json["id"]
    mid = t.post(f"/courses/{cid}/modules", json={"title": "M"}).json["id"]
    r = t.put(f"/courses/{cid}/modules/{mid}", json={"estimated_minutes": True})
    assert r.status_code == 422, r.text
    assert r.json["errors"][0]["field"] == "estimated_minutes"
    r = t.put(f"/courses/{cid}/modules/{mid}", json={"estimated_minutes": 7, "required": False})
    assert r.status_code == 200 and r.json["estimated_minutes"] == 7, r.text
