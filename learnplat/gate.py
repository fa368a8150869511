"""The gate every caller passes, whatever carries it: an HTTP request, a WebSocket handshake,
and the next ones (an LTI launch, a SAML post, a console with cookie sessions).

It decides the same things in the same order for all of them: which school (an unknown or
disabled one, or a plugin switched off there: `NotFound`), within its context and a unit of
work, who is calling (the `authenticate` hook turns `Credentials` into a `Principal`; a bad
credential: `Unauthorized`), and what it costs (the rate-limit budgets, charged in the same
key-value round trip as the authentication's reads; spent: `RateLimited`, which wins over the
other refusals). A transport only translates: the HTTP middleware (learnplat.http.middleware)
maps the errors to problem+json and the decisions to RateLimit headers, a WebSocket route to
close codes. docs/architecture.md, "The gate".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import db
from .answers import GENERATION_TTL, generation_key, new_token
from .client_address import client_address, parse_trusted
from .errors import NotFound, RateLimited, Unauthorized
from .kv import StoreUnavailable
from .ratelimit import refused
from .tenancy import TenantInfo, _current

if TYPE_CHECKING:
    from .auth import Principal
    from .gcra import Decision
    from .runtime import Runtime

log = logging.getLogger(__name__)

# What the gate hands the `authenticate` hook for its key-value reads: ``round_trip(keys,
# user_id)`` returns the values of `keys`, read in the round trip that charges the caller's
# budgets to `user_id` (None: the client address).
RoundTrip = Callable[[list[str], Any], list[str | None]]
# A URL signed for a user (a media stream): the school and user its requests are charged to,
# or None when the signature is not valid (then the client address pays).
SignedCaller = Callable[[], "tuple[TenantInfo | None, Any] | None"]

_NO_COOKIES: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Credentials:
    """What a caller presents to say who it is, whatever the transport carried it in.

    `authorization` is a scheme and its credential as an HTTP ``Authorization`` header writes
    them (``Bearer eyJ...``); a WebSocket's token arrives as the same. `cookies` are the
    caller's cookies, for a plugin whose sessions live in one (an admin console). A new kind of
    credential (a signed LTI launch, a SAML assertion) is a new field here, never a transport
    object handed to the hook.
    """

    authorization: str = ""
    cookies: Mapping[str, str] = field(default_factory=lambda: _NO_COOKIES)

    @classmethod
    def bearer_token(cls, token: str | None) -> Credentials:
        """A bearer token given outside a header (a WebSocket's ``?token=``)."""
        return cls(f"Bearer {token}" if token else "")

    @property
    def scheme(self) -> str:
        """The authorization's scheme in lower case ("bearer"), "" without one."""
        return self.authorization.partition(" ")[0].lower()

    @property
    def bearer(self) -> str | None:
        """The bearer token, or None when the authorization is not a (non-empty) one."""
        scheme, _, token = self.authorization.partition(" ")
        token = token.strip()
        return token if token and scheme.lower() == "bearer" else None

    def __bool__(self) -> bool:
        return bool(self.authorization or self.cookies)


NO_CREDENTIALS = Credentials()


@dataclass(frozen=True)
class Arrival:
    """A caller at the gate as its transport saw it: what it presents, where it comes from
    (`client_addr`, resolved through the trusted proxies by `Gate.client_address`), the Host
    it asked for and the school it named (``X-Tenant``, a WebSocket's ``?tenant=``)."""

    credentials: Credentials = NO_CREDENTIALS
    client_addr: str = ""
    host: str | None = None
    tenant_slug: str | None = None


@dataclass(frozen=True)
class Toll:
    """What passing costs: `cost` units of the caller's `budget` ("api" or "heartbeat") and
    of its school's. `exempt` passes free (health probes; a socket's periodic re-check)."""

    budget: str = "api"
    cost: int = 1
    exempt: bool = False


API = Toll()
FREE = Toll(exempt=True)


class Gate:
    """The process's gate (see the module doc): settings read once, no per-caller state."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        server = runtime.settings.server
        self.proxies = parse_trusted(server.trusted_proxies)
        self.forwarded_header = server.forwarded_header
        self.host_only = runtime.settings.tenancy.select_by == "host"

    def client_address(self, peer: str | None, header: Callable[[str], str | None]) -> str:
        """The caller's address: the connection's `peer`, or what the trusted proxies wrote in
        the forwarded header (`header(name)` reads one; asked only when proxies are trusted)."""
        forwarded = header(self.forwarded_header) if self.proxies else None
        return client_address(peer, forwarded, self.proxies, self.forwarded_header)

    def passage(self, arrival: Arrival, toll: Toll = API, *, generation: str | None = None,
                caller_generation: str | None = None,
                signed_caller: SignedCaller | None = None) -> Passage:
        """One caller's way through (its steps are the Passage's methods). `generation` and
        `caller_generation` name the cached answers' generations read in the same round trip
        (learnplat.answers); `signed_caller` charges a signed URL's user."""
        return Passage(self, arrival, toll, generation, caller_generation, signed_caller)

    @contextmanager
    def admit(self, arrival: Arrival, plugin: str, *, toll: Toll = API,
              write: bool = False) -> Iterator[Passage]:
        """The whole gate at once, for a caller that is not an HTTP request (a WebSocket
        handshake, in a thread: the database is synchronous). Inside the block the passage
        holds the school (``passage.tenant``), runs in its context and a unit of work
        (committed when the block ends without error, else rolled back; its connection given
        back either way), and the caller is authenticated (``passage.principal``, None when
        it presented no credentials) and charged. Raises `NotFound` (unknown or disabled
        school, `plugin` switched off there), `Unauthorized` and `RateLimited` as the HTTP
        middleware does, before the block runs."""
        passage = self.passage(arrival, toll)
        ok = False
        try:
            passage.hold_connection()
            passage.find_tenant(plugin, required=True)
            passage.enter()
            passage.open_unit(write)
            passage.authenticate()
            passage.enforce()
            yield passage
            ok = True
        finally:
            passage.close(ok)


class Passage:
    """One caller's way through the gate: its steps in order, and what they found.

    ``find_tenant`` -> ``enter`` -> ``open_unit`` (or a short ``unit``) -> ``authenticate``
    -> ``charge_visitor`` when nothing charged the caller yet -> ``enforce``; ``close`` ends
    what was opened. `decisions` is None until the caller was charged (then the rate-limit
    decisions, empty when limits are off or the store is down); `generation` and
    `caller_generation` are the tokens read with them.
    """

    __slots__ = ("_cleanup", "_generation_user", "arrival", "caller_generation",
                 "caller_generation_name", "decisions", "gate", "generation",
                 "generation_name", "principal", "signed_caller", "tenant", "toll")

    def __init__(self, gate: Gate, arrival: Arrival, toll: Toll, generation: str | None,
                 caller_generation: str | None, signed_caller: SignedCaller | None):
        self.gate = gate
        self.arrival = arrival
        self.toll = toll
        self.generation_name = generation
        self.caller_generation_name = caller_generation
        self.signed_caller = signed_caller
        self.tenant: TenantInfo | None = None
        self.principal: Principal | None = None
        self.decisions: list[Decision] | None = None
        self.generation: str | None = None
        self.caller_generation: str | None = None
        self._generation_user: Any = None
        self._cleanup: list[Callable[[bool], None]] = []

    # -- the school --------------------------------------------------------------------------

    def find_tenant(self, plugin: str | None, required: bool = True) -> TenantInfo | None:
        """The school the caller names (``X-Tenant``/``?tenant=``, else its Host's domain;
        only the Host with ``tenancy.select_by = "host"``), enabled and with `plugin` enabled
        there. None when it names none and none is `required`; else `NotFound`, after charging
        the client address (guessing school names is limited too: `RateLimited` once spent)."""
        slug = self.arrival.tenant_slug
        try:
            tenant = self.gate.runtime.tenants.select(slug, self.arrival.host,
                                                      self.gate.host_only)
            if tenant is None or not tenant.enabled:
                if required or slug:
                    raise NotFound("no such school at this address: name it with its domain"
                                   if self.gate.host_only else
                                   "no such school: name one with X-Tenant or its domain")
                return None
            if plugin is not None and not tenant.plugin_enabled(plugin):
                raise NotFound("this feature is not enabled for this school")
        except NotFound:
            self.charge(None, None)
            self.enforce()
            raise
        self.tenant = tenant
        return tenant

    def enter(self) -> None:
        """Act for the school found until `close` (what `tenant_context` does for a block)."""
        assert self.tenant is not None, "find_tenant first"
        token = _current.set(self.tenant)
        self._cleanup.append(lambda _ok: _current.reset(token))

    # -- the unit of work --------------------------------------------------------------------

    def hold_connection(self) -> None:
        """Give the thread's connection back at `close`. None is taken now: the unit's first
        statement takes one from the pool (an answer served from Redis never does)."""
        self._cleanup.append(_close_connection)

    def open_unit(self, write: bool) -> db.UnitOfWork:
        """Open the caller's unit of work (BEGIN with its first statement; ``BEGIN IMMEDIATE``
        on SQLite when `write`) in the school's context, until `close`: committed when the
        caller succeeded, or when it asked to keep its writes (``db.keep_on_failure``)."""
        txn = db.transaction(write=write)
        uow = txn.__enter__()
        self._cleanup.append(lambda ok: _end_transaction(txn, ok or uow.commit_on_failure))
        return uow

    def unit(self, write: bool = False) -> AbstractContextManager[db.UnitOfWork]:
        """A short unit of work for a block (only the authentication of a route whose
        responder runs its own transactions: long uploads and downloads)."""
        return db.transaction(write=write)

    def close(self, ok: bool) -> None:
        """End what the passage opened, newest first: every step runs even when one fails (a
        failed commit must still give the connection back); the first error is raised."""
        error: Exception | None = None
        steps, self._cleanup = self._cleanup, []
        for step in reversed(steps):
            try:
                step(ok)
            except Exception as exc:
                error, ok = error or exc, False
        if error is not None:
            raise error

    # -- the caller --------------------------------------------------------------------------

    def authenticate(self) -> Principal | None:
        """The caller, by the `authenticate` hook, inside the school found; None for a caller
        that presented no credentials (a visitor: charged by address, or as a signed URL's
        user). A plugin that reads the key-value store does it with the `round_trip` it is
        given, which charges the budgets in the same round trip; otherwise they are charged
        here, once. `Unauthorized` for credentials no plugin accepts, or a principal of another
        school; `RateLimited` instead once the budget is spent."""
        tenant = self.tenant
        assert tenant is not None, "find_tenant first"
        credentials = self.arrival.credentials
        if not credentials:
            self.charge_visitor()
            return None
        try:
            principal = self.gate.runtime.hook.authenticate(
                runtime=self.gate.runtime, credentials=credentials, tenant=tenant,
                round_trip=self.round_trip)
            if principal is None:
                if not credentials.authorization:
                    # Cookies alone that no plugin claims (another site's, a consent banner's)
                    # are no claim to be anyone: a visitor.
                    if self.decisions is None:
                        self.charge_visitor()
                    return None
                raise Unauthorized("unsupported or invalid credentials")
            if principal.tenant_id != tenant.id:
                raise Unauthorized("the token belongs to another school")
        except Unauthorized:
            if self.decisions is None:
                # A bad token is an anonymous caller: its address pays (so guessing tokens is
                # limited too). A refused token of a known user (revoked, deactivated) was
                # charged to that user in the round trip. Either way 429 wins over 401 once
                # the budget is spent.
                self.charge(tenant, None)
            self.enforce()
            raise
        if self.decisions is None:
            self.charge(tenant, principal.user_id)
        elif self.caller_generation is not None and \
                self._generation_user != principal.user_id:
            self.caller_generation = None  # read for another id than the caller's: not theirs
        self.principal = principal
        return principal

    def charge_visitor(self) -> None:
        """Charge a caller without credentials. A URL signed for a user (a video's range
        requests) is charged to that user and school, as the user's token would be, whether
        or not the caller also names a school; a forged, altered or expired one, like any
        visitor, to the client address."""
        signed = None
        if self.signed_caller is not None and self.gate.runtime.limits.settings.enabled:
            signed = self.signed_caller()
        self.charge(*(signed or (self.tenant, None)))

    def round_trip(self, reads: list[str], user_id: Any) -> list[str | None]:
        """Read `reads` from the key-value store and charge the caller's budgets as `user_id`
        (None: anonymous, by client address), in one round trip. Raises the store's
        `StoreUnavailable` (the limits then fail open: nothing is refused)."""
        return self._round_trip(self.tenant, reads, user_id)

    def charge(self, tenant: TenantInfo | None, user_id: Any) -> None:
        """Charge the caller's budgets as `user_id` of `tenant` (None: by client address)."""
        try:
            self._round_trip(tenant, [], user_id)
        except StoreUnavailable:
            pass  # limits fail open (logged by the limiter)

    def enforce(self) -> None:
        """`RateLimited` when a budget the caller was charged to is spent."""
        worst = refused(self.decisions or ())
        if worst is not None:
            raise RateLimited(math.ceil(worst.retry_after),
                              f"the {worst.policy} rate limit is spent; retry after "
                              f"{math.ceil(worst.retry_after)} s", policy=worst.policy)

    def _round_trip(self, tenant: TenantInfo | None, reads: list[str],
                    user_id: Any) -> list[str | None]:
        runtime = self.gate.runtime
        limits = runtime.limits
        toll = self.toll
        checks = [] if toll.exempt else limits.checks(tenant, user_id, self.arrival.client_addr,
                                                      toll.budget, toll.cost)
        # The answer's generations ride along: the tenant's, and the caller's own.
        gens = []
        if tenant is not None and self.generation_name:
            gens.append(("generation", generation_key(tenant.id, self.generation_name)))
        if tenant is not None and self.caller_generation_name and user_id is not None:
            gens.append(("caller_generation",
                         generation_key(tenant.id, self.caller_generation_name, user_id)))
        if not checks and not reads and not gens:
            self.decisions = []
            return []
        try:
            values, self.decisions = limits.round_trip(
                [*reads, *(key for _, key in gens)], checks)
        except StoreUnavailable as exc:
            self.decisions = limits.fail_open(exc)
            raise
        if gens:
            tokens = values[len(reads):]
            del values[len(reads):]
            self._generation_user = user_id
            for (attr, key), token in zip(gens, tokens, strict=True):
                setattr(self, attr, token)
                if token is None:  # unknown: start one; this caller computes afresh
                    try:
                        runtime.kv.add(key, new_token(), GENERATION_TTL)
                    except Exception:  # only an optimisation: the next caller tries again
                        log.debug("could not start generation %s", key, exc_info=True)
        return values


class _Rollback(Exception):
    """Thrown into the unit of work to roll back a caller that did not succeed."""


def _end_transaction(txn: Any, ok: bool) -> None:
    if ok:
        txn.__exit__(None, None, None)
    else:
        txn.__exit__(_Rollback, _Rollback(), None)


def _close_connection(_ok: bool) -> None:
    if not db.database.is_closed():
        db.database.close()
