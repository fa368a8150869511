"""The cross-tenant sweep: every route of the app, every method, with the other tenant's ids.

Two tenants, A and B, are populated through the API (sweephelpers.populate: courses, modules,
enrollments, progress, quiz attempts, media, notifications, certificates...). Then A's admin,
instructor and student, on A's host, call every route and method the app serves (taken from the
route registry, so a new route is swept without editing this file) with B's ids in the path
(every B row of the route's deepest object, and B/A mixes of one chain), B's ids in the query
filters and in the body. Nothing may answer 5xx, return or change B's data.

Accepted answers, for a request that carries B's ids:
  404  always (B's objects do not exist in A);
  403  only when the caller's role lacks the route's permission altogether (the check runs
       before any lookup, so it says nothing about B's objects), or when a capability (a
       signed link's signature, an upload token) does not verify (CAPABILITY_REFUSED);
  401  only on credential routes (login, refresh, code exchange: B's credentials, a code
       of nothing), and for anonymous callers of routes a school may close to them;
  422  only when B's ids travel in the body or the query (a reference the service refuses) and
       the path holds none of B's ids;
  409, 429  only when the path holds none of B's ids (a conflict with A's own data, a limit
       charged to the caller's address);
  2xx  only when the path holds none of B's ids (a collection filtered by B's ids: an empty or
       A-only answer), and for the public-by-design routes below.
Whatever the status, it must be the one (status and problem code) that the same request
answers when B's ids are replaced by ids that exist nowhere: B's objects are
indistinguishable from missing ones. No response body or header may hold one of B's
identifiers (every string of B's rows that A's rows do not share: uuids, emails, names,
titles, codes, keys), and B's rows (every table with a tenant column, and B's tenant row) and
stored files must be identical before and after; no row of A may come to reference an id that
A does not have.

Then every route again with a token of B on A's host, and with A's token on B's host: 401.
And A's signed links (media, certificate PDF and credential) with B's ids put in: 403/404.

SWEEP_DEBUG=1 (with -s) prints every answer but the 404s, and the slowest operations.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest
from learnplat_identity.testing import PASSWORD, UserFactory
from sweephelpers import (
    Population,
    fresh_token,
    identifiers,
    populate,
    settle,
    snapshot,
    storage_snapshot,
    upload_for,
)

from learnplat.auth import AUTHENTICATED, PUBLIC
from learnplat.http.app import is_websocket_route
from learnplat.http.endpoint import FORM, MULTIPART, spec_of
from learnplat.http.routing import path_fields
from learnplat.testing import Client, make_tenant

ROLES = ("admin", "instructor", "student")
ANONYMOUS = "anonymous"  # no token: on the routes open to anonymous callers
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

# Path parameters that name no object of a tenant: filled with the same value for A and B.
NOT_IDS: dict[str, list[str]] = {"provider": ["google", "github", "nosuchprovider"],
                                 # the reference page's files (/docs/assets/{digest}/{asset})
                                 "digest": ["0123456789abcdef"], "asset": ["reference.js"],
                                 # An LTI registration's names at the peer (strings, lists):
                                 # no learnplat object of either school.
                                 "client_id": ["sweep-client"],
                                 "deployment_ids": ["sweep-deployment"]}
# Parameters whose table the naming rule (`<x>_id` -> the table `<plugin>_<x>` or `..._<x>`)
# does not find.
ALIASES = {"media_id": "media_object", "subject_id": "identity_user",
           "prerequisite_id": "courses_module", "owner_id": "identity_user",
           "student_id": "identity_user", "author_id": "identity_user",
           "counted_attempt_id": "quizzes_attempt",
           # A module (courses_module), not the first table with a module_id column (the
           # LTI grade targets' is first in name order, and mostly null: a course's grade).
           "module_id": "courses_module",
           "delivery_id": "learnplat_outbound_message",  # a webhook delivery
           "statement_id": "learnplat_outbound_message",  # an xAPI statement's log entry
           "passback_id": "learnplat_outbound_message"}  # a grade sent back to an LMS (LTI)
# WebSocket routes (no HTTP responders) and the test that refuses another school's token there.
WEBSOCKETS_TESTED_ELSEWHERE = {
    "/notifications/ws": "tests/notifications/test_notifications_ws.py: "
                         "test_bad_tokens_are_closed_with_policy_violation, "
                         "test_socket_authentication_rules",
}
# Values of path parameters that name no object of any tenant.
GHOST_ID = 2_000_000_000
GHOST = {"public_id": "zzzzzzzzzzzzzzzzzzzz", "slug": "no-such-school-sweep",
         "achievement_id": "course-2000000000"}
# Routes outside any tenant that anyone may read by design: a certificate's verification page
# (its public id is printed on the certificate) and an issuer's public documents (DID, keys,
# revocation list). They answer the same for every host; the sweep still checks that they
# change nothing and never 5xx.
PUBLIC_BY_DESIGN = {
    "/certificates/{public_id}/verify",
    "/certificates/issuers/{slug}/did.json",
    "/certificates/issuers/{slug}/jwks.json",
    "/certificates/issuers/{slug}/status/revocation",
    "/certificates/issuers/{slug}",
    "/certificates/issuers/{slug}/achievements/{achievement_id}",
}
# A capability that does not verify (a signed URL's signature, a direct upload's token): a
# MAC checked before any lookup, so the 403 says nothing of B's objects.
CAPABILITY_REFUSED = {"bad_signature", "invalid_signature", "bad_token"}
# Bodies the schema alone does not describe well enough (a model validator's rule), by the
# schema's title.
EXAMPLES: dict[str, dict[str, Any]] = {
    "QuestionIn": {"type": "short_text", "prompt": "sweep", "points": 1},
    # A webhook endpoint's URL must be one the delivery engine may reach (the tests allow
    # loopback over http).
    "EndpointIn": {"url": "http://127.0.0.1:9/sweep", "event_types": ["enrollment.*"]},
    # A learning record store the engine may reach; a time range in order.
    "LrsIn": {"endpoint": "http://127.0.0.1:9/sweep", "key": "sweep", "secret": "sweep"},
    "StatementsRedeliverIn": {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
    # LTI registrations: URLs the outbound policy lets through (loopback in the tests).
    "LtiToolPlatformIn": {"name": "sweep", "issuer": "https://sweep.example.org",
                          "client_id": "sweep", "deployment_ids": ["sweep"],
                          "auth_login_url": "http://127.0.0.1:9/auth",
                          "token_url": "http://127.0.0.1:9/token",
                          "jwks_url": "http://127.0.0.1:9/jwks"},
    "LtiPlatformToolIn": {"name": "sweep", "login_url": "http://127.0.0.1:9/login",
                          "launch_url": "http://127.0.0.1:9/launch",
                          "jwks_url": "http://127.0.0.1:9/jwks"},
}
# Routes that take credentials in the body: B's credentials are refused with a 401.
CREDENTIAL_ROUTES = {"/auth/login", "/auth/refresh", "/auth/oauth/exchange",
                     # An LTI tool's signed client assertion (B's is no JWT A's tools signed).
                     "/lti/schools/{school}/platform/token"}


@dataclass
class Operation:
    template: str
    method: str
    route: Any
    spec: Any

    @property
    def params(self) -> list[str]:
        return [name for name, _ in path_fields(self.template)]

    @property
    def canonical(self) -> str:
        return re.sub(r"{([a-z_]+)(:[^}]*)?}", r"{\1}", self.template)


def operations(runtime: Any) -> list[Operation]:
    ops = []
    for route in runtime.registry.routes:
        if is_websocket_route(route):
            assert route.path in WEBSOCKETS_TESTED_ELSEWHERE, (
                f"WebSocket route {route.path}: the sweep sends HTTP requests only; test that "
                "a token of another school is refused and list it in WEBSOCKETS_TESTED_ELSEWHERE")
            continue
        for method in METHODS:
            fn = getattr(route.resource, f"on_{method.lower()}", None)
            if fn is not None:
                ops.append(Operation(route.path, method, route, spec_of(fn)))
    return ops


class World:
    """What the sweep knows of one tenant: its rows, its population, and the ids a path
    parameter or a body field named like `course_id` takes there."""

    def __init__(self, runtime: Any, pop: Population):
        self.pop = pop
        self.tenant = pop.tenant
        self.snap = snapshot(runtime, pop.tenant)

    def table_for(self, name: str) -> str | None:
        if name in ALIASES:
            return ALIASES[name]
        stem = name.removesuffix("_ids").removesuffix("_id")
        if stem == name:
            return None
        exact = [t for t in self.snap if t.split("_", 1)[-1] == stem]
        suffix = [t for t in self.snap if t.endswith("_" + stem)]
        # `course_id`: courses_course, not progress_course (a course's progress).
        found = [t for t in exact if t.startswith(stem)] or exact or suffix
        return found[0] if len(found) == 1 else None

    def values(self, name: str) -> list[Any]:
        """Every value `name` takes in this tenant (path parameter, query or body field)."""
        if name in NOT_IDS:
            return NOT_IDS[name]
        if name == "tenant_id":
            return [self.tenant.id]
        if name in ("slug", "school"):  # `school`: a route's tenant_param (LTI peers' URLs)
            return [self.tenant.slug]
        if name == "achievement_id":  # an issuer's achievement: course-{course id}
            return [f"course-{c}" for c in self.values("course_id")]
        table = self.table_for(name)
        if table is not None:
            return [row["id"] for row in self.snap[table]]
        # A column of that name that is no foreign key (a public id, a code).
        for rows in self.snap.values():
            if rows and name in rows[0]:
                return sorted({row[name] for row in rows if row[name] is not None})
        return []

    def rows_of(self, name: str) -> list[dict[str, Any]]:
        table = self.table_for(name)
        if table is not None:
            return self.snap[table]
        return [{name: v} for v in self.values(name)]

    def chains(self, params: list[str], every: bool) -> list[dict[str, Any]]:
        """Consistent values of `params` in this tenant: for every row of the deepest
        parameter's object (or only the first), its parents read from the rows' columns."""
        if not params:
            return [{}]
        deepest = params[-1]
        rows = self.rows_of(deepest)
        assert rows, (f"cannot fill path parameter {deepest!r}: {self.pop.tag} has no such "
                      "object (make one in sweephelpers.populate) or add it to ALIASES")
        out = []
        for row in rows if every else rows[:1]:
            chain = {deepest: row["id"] if self.table_for(deepest) else row[deepest]}
            known = [row]
            for _ in params:
                for name in params:
                    if name in chain:
                        continue
                    for r in list(known):
                        if r.get(name) is not None:
                            chain[name] = r[name]
                            table = self.table_for(name)
                            if table is not None:
                                known += [x for x in self.snap[table] if x["id"] == r[name]]
                            break
            for name in params:
                if name not in chain:
                    values = self.values(name)
                    assert values, f"cannot fill path parameter {name!r}: add it to ALIASES"
                    chain[name] = values[0]
            out.append(chain)
        return out


def dangling_references(snap: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str, Any]]:
    """(table, column, value) of every `<x>_id` column whose value is no id of that tenant's
    `<x>` table: a reference to another tenant's row, or to a deleted one."""
    world = World.__new__(World)
    world.snap = snap
    ids = {table: {row.get("id") for row in rows} for table, rows in snap.items()}
    out = set()
    for table, rows in snap.items():
        for column in (rows[0] if rows else {}):
            target = world.table_for(column) if column != "tenant_id" else None
            if target is None:
                continue
            out |= {(table, column, row[column]) for row in rows
                    if row[column] is not None and row[column] not in ids[target]}
    return out


def fill(template: str, values: dict[str, Any]) -> str:
    return re.sub(r"{([a-z_]+)(:[^}]*)?}", lambda m: str(values[m.group(1)]), template)


# --- request bodies and queries -----------------------------------------------------------------

def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example(schema: dict[str, Any], defs: dict[str, Any], name: str, b: World,
            carried: set[str]) -> Any:
    """A minimal valid value of `schema` whose id fields hold B's ids (named in `carried`)."""
    schema = _resolve(schema, defs)
    if schema.get("title") in EXAMPLES:
        return dict(EXAMPLES[schema["title"]])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, defs).get("type") != "null"]
            if "properties" in schema:  # an object whose alternatives each require some keys
                option = _resolve(options[0], defs)
                narrowed = option.get("properties", {})
                merged = {k: v for k, v in schema.items() if k != key}
                merged["required"] = [*schema.get("required", []), *option.get("required", [])]
                merged["properties"] = {k: {**_resolve(sub, defs), **narrowed.get(k, {})}
                                        for k, sub in schema["properties"].items()}
                return example(merged, defs, name, b, carried)
            return example(options[0], defs, name, b, carried)
    kind = schema.get("type")
    ids = b.values(name) if name.endswith(("_id", "_ids")) else []
    if kind == "integer":
        if ids:
            carried.add(name)
            return ids[0]
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return False  # dry runs, not flags that would act
    if "const" in schema:  # a discriminator's value (a question's type)
        return schema["const"]
    if kind == "string":
        if "enum" in schema:
            return schema["enum"][0]
        if name == "email" or schema.get("format") == "email":
            carried.add(name)
            return b.pop.users["admin"].email
        if name == "password":
            return PASSWORD
        if name in ("refresh_token", "token"):
            carried.add(name)
            return b.pop.users["admin"].refresh_token
        if schema.get("format") == "date-time":
            return "2031-01-01T00:00:00Z"
        size = max(1, schema.get("minLength", 1))
        candidates = ["sweep" * -(-size // 5), "0" * max(size, 32), "en"]
        pattern = schema.get("pattern")
        return next((c for c in candidates if not pattern or re.search(pattern, c)),
                    candidates[0])
    if kind == "array":
        if name == "emails":
            carried.add(name)
            return [u.email for u in b.pop.users.values()]
        if ids:
            carried.add(name)
            return ids
        item = example(schema.get("items", {}), defs, name.removesuffix("s"), b, carried)
        return [item] * max(1, schema.get("minItems", 0))
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if not props and "additionalProperties" in schema:
            # {question id: answer} maps: keyed by B's questions.
            questions = b.values("question_id")
            if questions and name in ("answers", "grades"):
                carried.add(name)
                value = {"points": 0} if name == "grades" else 1
                return {str(questions[0]): value}
            names = schema.get("propertyNames", {}).get("enum")
            extra = schema["additionalProperties"]
            if names and isinstance(extra, dict):
                return {names[0]: example(extra, defs, names[0], b, carried)}
            return {}
        required = set(schema.get("required", []))
        return {key: example(sub, defs, key, b, carried) for key, sub in props.items()
                if key in required or (key.endswith(("_id", "_ids")) and b.values(key)
                                       and not required & {"user_id", "course_id", "role"})}
    return None


def body_of(op: Operation, b: World, carried: set[str]) -> dict[str, Any]:
    spec = op.spec
    if spec.body is not None:
        schema = spec.body.model_json_schema(ref_template="#/$defs/{model}")
        value = example(schema, schema.get("$defs", {}), "", b, carried)
        if not _valid(spec.body, value):
            full = {**example({**schema, "required": list(schema.get("properties", {}))},
                              schema.get("$defs", {}), "", b, set()), **value}
            value = _one_of(spec.body, value, full)
        assert _valid(spec.body, value), (
            f"{op.method} {op.template}: the sweep cannot build a valid {spec.body.__name__} "
            f"(tried {value!r}): add one to EXAMPLES")
        if spec.content_type == FORM:  # a peer's form post (LTI): the same fields, encoded
            from urllib.parse import urlencode

            return {"body": urlencode(value, doseq=True),
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
        if spec.content_type and spec.content_type.endswith("+json"):  # an IMS media type
            import json

            return {"body": json.dumps(value), "headers": {"Content-Type": spec.content_type}}
        return {"json": value}
    if spec.content_type == MULTIPART:
        files = [n for n, kind in spec.multipart_fields.items() if kind == "file"] or ["file"]
        body, headers = upload_for(op.template, files[0])
        return {"body": body, "headers": headers}
    return {}


def _valid(model: type[pydantic.BaseModel], value: Any) -> bool:
    try:
        model.model_validate(value)
    except pydantic.ValidationError:
        return False
    return True


def _one_of(model: type[pydantic.BaseModel], value: dict[str, Any], full: dict[str, Any]
            ) -> dict[str, Any]:
    """Models that want one (or some) of their optional fields: the required ones with the
    first optional field (or pair of them) that validates, B's ids first."""
    required = {k: v for k, v in full.items() if model.model_fields[k].is_required()}
    optional = sorted((k for k in full if k not in required), key=lambda k: k not in value)
    for size in (1, 2):
        for keys in itertools.combinations(optional, size):
            candidate = {**required, **{k: full[k] for k in keys}}
            if _valid(model, candidate):
                return candidate
    return full


def query_of(op: Operation, b: World, carried: set[str]) -> dict[str, Any]:
    if op.spec.query is None:
        return {}
    out = {}
    schema = op.spec.query.model_json_schema(ref_template="#/$defs/{model}")
    for name, info in op.spec.query.model_fields.items():
        if info.is_required():  # a signed URL's expiry and signature: well-formed, wrong
            value = example(schema["properties"][name], schema.get("$defs", {}), name, b,
                            carried)
            out[name] = str(2_000_000_000 if isinstance(value, int) else value)
            continue
        values = b.values(name) if name.endswith("_id") or name == "instructor" else []
        if name == "instructor":
            values = [b.pop.users["instructor"].id]
        if values:
            carried.add(name)
            out[name] = str(values[0])
    return out


# --- the scan ----------------------------------------------------------------------------------

class Scanner:
    def __init__(self, secrets: set[str]):
        self.secrets = secrets
        self.pattern = re.compile("|".join(
            rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])"
            for s in sorted(secrets, key=len, reverse=True)))

    def leaks(self, text: str, sent: str) -> list[str]:
        return sorted({m.group(0) for m in self.pattern.finditer(text)
                       if m.group(0) not in sent})


@dataclass
class Finding:
    what: str
    request: str
    status: int
    detail: str
    op: str = ""

    def __str__(self) -> str:
        return f"{self.what}: {self.request} -> {self.status} {self.detail[:300]}"


@pytest.fixture(scope="module")
def tenants(lp_runtime: Any, lp_app: Any) -> tuple[World, World]:
    a, b = (make_tenant(lp_runtime, domains=[f"{name}-{uuid.uuid4().hex[:8]}.sweep.test"])
            for name in ("alpha", "bravo"))
    client = Client(lp_app)
    users = UserFactory(lp_runtime, a)
    pop_a = populate(lp_runtime, client, users, a, f"alpha{a.id}x{a.slug[-6:]}")
    pop_b = populate(lp_runtime, client, users, b, f"bravo{b.id}x{b.slug[-6:]}")
    return World(lp_runtime, pop_a), World(lp_runtime, pop_b)


def b_scanner(runtime: Any, world_a: World, world_b: World) -> Scanner:
    """B's identifiers, less what A holds now: another test of this module may have put one
    of them in A (the sweep registers B's email in A, which A may then show)."""
    # A's rows as populated count too: a DELETE of the sweep (DELETE /xapi/lrs) may have
    # removed all of A's copies of shared vocabulary ("learnplat" in its xAPI statements).
    a_rows = {**{f"populated:{t}": rows for t, rows in world_a.snap.items()},
              **snapshot(runtime, world_a.tenant)}
    return Scanner(identifiers(world_b.snap, a_rows, world_b.tenant))


def _send(client: Any, method: str, path: str, kwargs: dict[str, Any]) -> Any:
    return client.request(method, path, **kwargs)


def test_every_route_with_the_other_tenants_ids(lp_runtime: Any, lp_app: Any,
                                                tenants: tuple[World, World]) -> None:
    world_a, world_b = tenants
    users = UserFactory(lp_runtime, world_a.tenant)
    spare = {role: users.make(role) for role in ROLES}
    settle(lp_runtime)
    b_before = snapshot(lp_runtime, world_b.tenant)
    # Nothing of B left to deliver: a request of A that runs the dispatcher must not be what
    # changes B's rows (an event of B delivered late would look like a cross-tenant write).
    pending = [e for e in b_before.get("learnplat_event", []) if e["status"] == "pending"]
    assert not pending, pending
    files_before = storage_snapshot(lp_runtime, world_b.tenant)
    a_before = snapshot(lp_runtime, world_a.tenant)
    scanner = Scanner(identifiers(b_before, a_before, world_b.tenant))
    # The checks can fail: B's own admin reading B's course on B's host is a leak to them.
    own = Client(lp_app, world_b.tenant, world_b.pop.users["admin"].token)
    control = own.get(f"/courses/{world_b.pop.course_id}")
    assert control.status_code == 200 and scanner.leaks(control.text, "")
    ops = operations(lp_runtime)
    grants = {role: lp_runtime.registry.grants_for(role) for role in ROLES}
    grants[ANONYMOUS] = {}
    findings: list[Finding] = []
    statuses: Counter[int] = Counter()
    sent = 0
    refused_paths: set[str] = set()
    planted: set[str] = set()
    ghost_sent = 0
    op_time: Counter[str] = Counter()
    started = time.monotonic()
    a_client = Client(lp_app, world_a.tenant)
    # Credential routes first: registering B's email in A (allowed: schools are separate)
    # would otherwise let the login with B's credentials in, to that new account of A.
    ops.sort(key=lambda op: op.canonical not in CREDENTIAL_ROUTES)
    a_dangling = dangling_references(a_before)
    for op in ops:
        params = op.params
        # A school the path names (Route.tenant_param: the URLs LTI peers call) is the
        # caller's, A's, as the host is: B's school there is the other test's (B's token).
        own = op.route.tenant_param
        ids = [p for p in params if p not in NOT_IDS and p != own]
        # (values, which of them are B's)
        combos: list[tuple[dict[str, Any], frozenset[str]]] = []
        b_chains = [{**c, **({own: world_a.tenant.slug} if own else {})}
                    for c in world_b.chains(params, every=True)]
        combos += [(c, frozenset(ids)) for c in b_chains]
        a_chain = world_a.chains(params, every=False)[0]
        for size in range(1, len(ids)):
            for subset in itertools.combinations(ids, size):
                mixed = {p: (b_chains[0][p] if p in subset else a_chain[p]) for p in params}
                combos.append((mixed, frozenset(subset)))
        probe: set[str] = set()
        body_of(op, world_b, probe)
        query_of(op, world_b, probe)
        if ids and probe and op.method != "DELETE":
            combos.append((a_chain, frozenset()))  # A's objects, B's ids in body or query
        public = op.canonical in PUBLIC_BY_DESIGN
        roles = list(ROLES)
        if op.spec.permission == PUBLIC or op.spec.anonymous:
            roles.append(ANONYMOUS)
        for role in roles:
            if role == ANONYMOUS:
                token = None
            elif op.spec.own_credentials:  # an LTI service: the credentials of A's tool
                token = world_a.pop.lti_token
            elif not params and op.method not in ("GET", "HEAD"):
                # Logout and the like may end the caller's session: a token of its own.
                token = fresh_token(lp_runtime, world_a.tenant, spare[role].id)
            else:
                token = world_a.pop.users[role].token
            client = a_client.as_(token)
            denied = role != ANONYMOUS and op.spec.permission not in (PUBLIC, AUTHENTICATED) \
                and op.spec.permission not in grants[role]
            # A role without the permission is refused before any lookup: one request shows it.
            ghosts: dict[frozenset[str], tuple[int, str | None]] = {}
            for values, b_params in combos[:1] if denied else combos:
                b_in_path = bool(b_params)
                carried: set[str] = set()
                kwargs = body_of(op, world_b, carried)
                query = query_of(op, world_b, carried)
                if query:
                    kwargs["params"] = query
                path = fill(op.template, values)
                t0 = time.perf_counter()
                r = _send(client, op.method, path, kwargs)
                op_time[f"{op.method} {op.canonical}"] += time.perf_counter() - t0
                sent += 1
                statuses[r.status_code] += 1
                label = f"{role} {op.method} {path} {sorted(carried)}"
                headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
                # What the sweep itself sent to A (B's email registered in A) is A's data
                # from then on: an answer quoting it leaks nothing.
                planted.update(scanner.leaks(repr(kwargs.get("json")) + path + repr(query),
                                             ""))
                if not public:
                    found = [s for s in scanner.leaks(r.text + "\n" + headers, "")
                             if s not in planted]
                    if found:
                        findings.append(Finding("LEAK", label, r.status_code, repr(found),
                                                op.canonical))
                if op.method == "GET" and _code(r) in CAPABILITY_REFUSED:
                    refused_paths.add(path)
                if op.method == "HEAD" and r.status_code == 403 and path in refused_paths:
                    continue  # as its GET twin: a refused signature (no body to say so)
                if r.status_code != 404 and os.environ.get("SWEEP_DEBUG"):
                    print("DBG", r.status_code, label, r.text[:150])
                if b_in_path and not public:
                    # B's objects must be indistinguishable from objects that do not exist.
                    if b_params not in ghosts:
                        ghost = _send(client, op.method, fill(op.template, {
                            p: (GHOST.get(p, GHOST_ID) if p in b_params else v)
                            for p, v in values.items()}), kwargs)
                        ghost_sent += 1
                        ghosts[b_params] = (ghost.status_code, _code(ghost))
                    if (r.status_code, _code(r)) != ghosts[b_params]:
                        findings.append(Finding(
                            f"ORACLE (no such object: {ghosts[b_params]})", label,
                            r.status_code, r.text, op.canonical))
                verdict = judge(op, role, r, b_in_path, carried, grants, public)
                if verdict:
                    findings.append(Finding(verdict, label, r.status_code, r.text, op.canonical))
    elapsed = time.monotonic() - started
    settle(lp_runtime)
    b_after = snapshot(lp_runtime, world_b.tenant)
    changed = {t: (b_before[t], b_after[t]) for t in b_before if b_before[t] != b_after[t]}
    print(f"\nsweep: {len(ops)} operations x {len(ROLES)} roles (+ anonymous on open routes), "
          f"{sent} requests with B's ids + {ghost_sent} with ids of nothing, in "
          f"{elapsed:.1f}s; statuses {dict(sorted(statuses.items()))}")
    if os.environ.get("SWEEP_DEBUG"):
        print(op_time.most_common(20))
    by_kind: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        by_kind.setdefault((f.what, f.request.split()[1], f.op), []).append(f)
    assert not findings, f"{len(findings)} findings:\n" + "\n".join(
        f"{len(fs)}x {fs[0]}" for fs in by_kind.values())
    assert not changed, f"B's rows changed: {changed}"
    new_refs = dangling_references(snapshot(lp_runtime, world_a.tenant)) - a_dangling
    assert not new_refs, f"A's rows now reference ids A does not have (B's?): {new_refs}"
    assert storage_snapshot(lp_runtime, world_b.tenant) == files_before
    assert sent > 1000 and statuses[404] > sent // 2, statuses


def judge(op: Operation, role: str, r: Any, b_in_path: bool, carried: set[str],
          grants: dict[str, dict[str, str]], public: bool) -> str | None:
    """Why this answer is wrong (None: accepted), by the rules of the module docstring."""
    status = r.status_code
    if status >= 500:
        return "5xx"
    if status == 404:
        return None
    if public:
        return None if status < 500 else "5xx"
    if status == 403 and _code(r) in CAPABILITY_REFUSED:
        return None
    if role == ANONYMOUS and status == 401:
        return None  # the route is open to anonymous callers only when the school says so
    if status == 403:
        lacks = op.spec.permission != PUBLIC and op.spec.permission not in grants[role] \
            and op.spec.permission != "authenticated"
        return None if lacks else "403 for a role that holds the permission (an oracle?)"
    if status == 401:
        return None if op.canonical in CREDENTIAL_ROUTES else "401"
    if status == 422:
        return None if carried and not b_in_path else "422"
    if status == 400 and op.route.tenant_param and not b_in_path and _code(r):
        return None  # a peer's protocol message (LTI) refused: the sweep sends no real one
    if status == 429 and not b_in_path:
        return None  # registration's own per-address limit (on even in tests): not about B
    if status == 409 and not b_in_path:
        return None  # a conflict with A's own data (B's email registered in A twice)
    if status < 400:
        return "2xx with B's ids in the path" if b_in_path else None
    return f"unexpected {status}"


def _code(r: Any) -> str | None:
    """The problem code of an answer, if it is a problem document."""
    if r.content and "json" in r.headers.get("content-type", ""):
        return (r.json or {}).get("code")
    return None


def test_a_token_of_the_other_tenant_is_refused(lp_runtime: Any, lp_app: Any,
                                                 tenants: tuple[World, World]) -> None:
    """B's token on A's host (named by X-Tenant or by its domain), and A's token on B's host
    (with A's ids): 401 on every route of a tenant."""
    world_a, world_b = tenants
    b_before = snapshot(lp_runtime, world_b.tenant)
    findings = []
    sent = 0
    for op in operations(lp_runtime):
        values = world_a.chains(op.params, every=False)[0]
        carried: set[str] = set()
        kwargs = body_of(op, world_a, carried)
        path = fill(op.template, values)
        b_token, a_token = world_b.pop.users["admin"].token, world_a.pop.users["admin"].token
        # A route outside the tenants (health, signed links) has a school only when X-Tenant
        # names one; with it, the token is checked against that school like anywhere else.
        for host, token, by_domain in ((world_a, b_token, False), (world_b, a_token, False),
                                       *([(world_a, b_token, True)] if op.route.tenant_scoped
                                         else [])):
            if op.route.tenant_param:  # the path names the school: the host's
                path = fill(op.template, {**values, op.route.tenant_param: host.tenant.slug})
            if by_domain:  # the school named by its domain (Host), not X-Tenant
                r = Client(lp_app, None, token).request(
                    op.method, path, host=host.tenant.domains[0], **kwargs)
            else:
                r = Client(lp_app, host.tenant, token).request(op.method, path, **kwargs)
            sent += 1
            if r.status_code != 401:
                findings.append(f"{op.method} {path} on {host.pop.tag} (by domain: "
                                f"{by_domain}): {r.status_code} {r.text[:200]}")
    settle(lp_runtime)
    assert not findings, "\n".join(findings)
    assert sent > 300
    after = snapshot(lp_runtime, world_b.tenant)
    changed = [t for t in b_before if b_before[t] != after[t] and t != "identity_audit"]
    assert not changed, changed


def test_signed_links_do_not_cross_tenants(lp_runtime: Any, lp_app: Any,
                                           tenants: tuple[World, World]) -> None:
    """A signed link of A (a media URL, a certificate's PDF and credential) with B's tenant or
    object ids put in its path is refused (403 or 404), and reveals nothing of B."""
    world_a, world_b = tenants
    scanner = b_scanner(lp_runtime, world_a, world_b)
    pop = world_a.pop
    student = Client(lp_app, world_a.tenant, pop.users["student"].token)
    video = student.get(f"/courses/{pop.course_id}/modules/{pop.module_ids[1]}/video")
    assert video.status_code == 200, video.text
    cert = student.get(f"/courses/{pop.course_id}/certificate")
    assert cert.status_code == 200 and cert.json["pdf_url"], cert.text
    links = [video.json["url"], cert.json["pdf_url"], cert.json["credential_url"]]
    media_b = world_b.values("media_id")
    certs_b = world_b.values("public_id")
    anonymous = Client(lp_app)
    tried = 0
    for link in links:
        path, _, query = link.partition("?")
        path = "/" + path.split("/", 3)[-1] if path.startswith("http") else path
        assert anonymous.get(path, query_string=query).status_code == 200, link
        parts = path.split("/")
        variants = []
        if parts[1] == "media":  # /media/{tenant_id}/{media_id}
            variants = [f"/media/{t}/{m}" for t in (world_a.tenant.id, world_b.tenant.id)
                        for m in [parts[3], *media_b]][1:]
        else:  # /certificates/{public_id}/{kind}
            variants = [f"/certificates/{c}/{parts[3]}" for c in certs_b]
        for variant in variants:
            for method in ("GET", "HEAD") if parts[1] == "media" else ("GET",):
                r = anonymous.request(method, variant, query_string=query)
                tried += 1
                assert r.status_code in (403, 404), (method, variant, r.status_code, r.text)
                assert not scanner.leaks(r.text + repr(dict(r.headers)), ""), variant
    assert tried >= 10


def test_answers_read_on_the_other_tenant_are_not_served_here(
        lp_runtime: Any, lp_app: Any, tenants: tuple[World, World]) -> None:
    """Every read (GET) route, asked first on B's host by B's users (so whatever a process
    caches, B's answer is in it), then the same path and query on A's host by A's users:
    A's answer holds nothing of B and is the one for an object that does not exist."""
    world_a, world_b = tenants
    scanner = b_scanner(lp_runtime, world_a, world_b)
    findings = []
    warmed = 0
    for op in operations(lp_runtime):
        if op.method != "GET" or not op.route.tenant_scoped:
            continue
        values = world_b.chains(op.params, every=False)[0]
        path = fill(op.template, values)
        query = {}
        if op.spec.query is not None:
            query = query_of(op, world_b, set())
        for role in (*ROLES, ANONYMOUS):
            kwargs = {"params": query} if query else {}
            b_token = None if role == ANONYMOUS else world_b.pop.users[role].token
            a_token = None if role == ANONYMOUS else world_a.pop.users[role].token
            there = Client(lp_app, world_b.tenant, b_token).get(path, **kwargs)
            warmed += there.status_code == 200
            # A school the path names is the host's: A's there, as X-Tenant is.
            own = op.route.tenant_param
            here = Client(lp_app, world_a.tenant, a_token).get(
                fill(op.template, {**values, own: world_a.tenant.slug}) if own else path,
                **kwargs)
            leaked = scanner.leaks(here.text + repr(dict(here.headers)), "")
            if leaked or here.status_code >= 500 or (
                    here.status_code < 300 and any(p not in NOT_IDS and p != own
                                                   for p in op.params)):
                findings.append(f"{role} GET {path}: {here.status_code} {leaked} "
                                f"{here.text[:200]}")
    assert not findings, "\n".join(findings)
    print(f"\n{warmed} answers of B read on B's host, none of them served on A's host")
    assert warmed > 50  # B's own users really read B's data first
