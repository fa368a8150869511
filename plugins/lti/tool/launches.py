"""Launches into learnplat (LTI 1.3 core, learnplat as tool): the OIDC login initiation, the
id_token checks, the account linked to (platform, sub), enrollment, the grade target for
passback and the sign-in; Deep Linking requests go to the content picker (picker.py).

Where a launch may enter: the target_link_uri is the school's launch URL
(``LtiUrls.tool_launch()``) with ``?course=<id>`` and optionally ``&module=<id>``; the custom
parameters ``course_id``/``module_id`` (``custom`` claim) take precedence, for platforms that
launch every link at one URL. The course must be a published course of this school.

The login's state and nonce are kept in the database (LtiToolLogin), not in a cookie: a
launch inside the platform's iframe loses third-party cookies in today's browsers, and
another server process may receive the launch. The state is single use and lives
LOGIN_SECONDS; it is burnt on the first launch attempt, successful or not."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, urlencode, urlsplit

import falcon
from learnplat_courses.api import COURSES
from learnplat_enrollment.api import ENROLLMENT
from learnplat_identity.api import IDENTITY

from learnplat.plugin import NotFound, ValidationFailed, current_tenant, utcnow

from .. import claims as c
from ..models import GradeTarget, PlatformAccount, PlatformRegistration
from ..pages import refuse
from ..peers import PeerTokenError
from .models import LtiToolLogin

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

LOGIN_SECONDS = 600  # an OIDC login must come back as a launch within this
KEEP_SECONDS = 86400  # how long finished logins are kept (replayed nonces are recognised)
ROLE = "tool"  # pages.refuse's role: learnplat refused as tool
# PeerKeys.verify's failed check -> the launch problem code.
TOKEN_CODES = {"malformed": "lti_bad_signature", "keys_unavailable": "lti_keys_unavailable",
               "unknown_key": "lti_bad_signature", "bad_signature": "lti_bad_signature",
               "expired": "lti_expired", "not_yet_valid": "lti_expired",
               "wrong_issuer": "lti_unknown_issuer", "wrong_audience": "lti_unknown_client",
               "missing_claim": "lti_missing_claim"}
MESSAGE_TYPES = (c.RESOURCE_LINK_REQUEST, c.DEEP_LINKING_REQUEST)


@dataclass(frozen=True)
class Target:
    course_id: int
    module_id: int | None = None


@dataclass(frozen=True)
class Launch:
    """A launch whose id_token passed every check."""

    platform: PlatformRegistration
    claims: dict[str, Any]
    deployment_id: str
    message_type: str
    role: str  # the learnplat role the LTI roles map to (claims.role_from)


def _with_query(url: str, **params: Any) -> str:
    fields = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(fields)}"


class ToolLaunches:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin

    @property
    def runtime(self) -> Any:
        return self.plugin.runtime

    def refuse(self, code: str, detail: str, fix: str, ip: str,
               platform: PlatformRegistration | None = None, **audit: Any) -> NoReturn:
        if platform is not None:
            audit = {"platform_id": platform.id, **audit}
        refuse(self.runtime, code, detail, fix, role=ROLE, ip=ip, audit=audit,
               status=status_of(self.plugin, code))

    # -- OIDC login initiation --------------------------------------------------------------

    def find_platform(self, iss: str, client_id: str, ip: str) -> PlatformRegistration:
        """The registration a login names: by issuer, and client_id when given (required
        when the issuer has several registrations)."""
        rows = list(PlatformRegistration.select().where(PlatformRegistration.issuer == iss))
        if not rows:
            self.refuse("lti_unknown_issuer", f"no platform with issuer {iss!r} is registered "
                        "in this school",
                        "register the platform (POST /lti/platforms, or `learnplat lti "
                        "platforms add`) with this issuer, or check the platform sends this "
                        "school's login URL", ip, issuer=iss[:200])
        if client_id:
            rows = [r for r in rows if r.client_id == client_id]
            if not rows:
                self.refuse("lti_unknown_client", f"the platform {iss!r} has no registration "
                            f"with client_id {client_id!r} in this school",
                            "register this client_id for the platform (POST /lti/platforms) "
                            "or fix the client_id the platform sends", ip,
                            issuer=iss[:200], client_id=client_id[:200])
        elif len(rows) > 1:
            self.refuse("lti_client_id_required", f"{len(rows)} registrations have issuer "
                        f"{iss!r} and the login names no client_id",
                        "make the platform send client_id in its login initiation (LTI 1.3 "
                        "§5.1.1), or remove the registrations it does not use", ip,
                        issuer=iss[:200])
        row = rows[0]
        if not row.enabled:
            self.refuse("lti_platform_disabled", f"the platform registration {row.id} is "
                        "disabled", f"enable it: PATCH /lti/platforms/{row.id} "
                        '{"enabled": true}', ip, row)
        return row

    def login(self, fields: dict[str, str], ip: str) -> str:
        """The URL of the platform's authorization endpoint to redirect the browser to,
        with a new state and nonce stored."""
        for name in ("iss", "login_hint", "target_link_uri"):
            if not fields.get(name):
                self.refuse("lti_bad_request", f"the login initiation has no {name!r}",
                            "the platform must send iss, login_hint and target_link_uri "
                            "(LTI 1.3 §5.1.1): check the login URL registered there", ip)
        platform = self.find_platform(fields["iss"], fields.get("client_id", ""), ip)
        deployment = fields.get("lti_deployment_id", "")
        if deployment and deployment not in platform.deployment_ids:
            self.refuse_deployment(platform, deployment, ip)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()
        # Logins a day past their expiry go (the (tenant, expires_at) index): a used nonce
        # only matters while an id_token carrying it is valid, which is minutes.
        LtiToolLogin.delete().where(
            LtiToolLogin.expires_at < now - dt.timedelta(seconds=KEEP_SECONDS)).execute()
        LtiToolLogin.create(state=state, nonce=nonce, platform_id=platform.id,
                            target_link_uri=fields["target_link_uri"][:2000], created_at=now,
                            expires_at=now + dt.timedelta(seconds=LOGIN_SECONDS))
        params = {"scope": "openid", "response_type": "id_token",
                  "response_mode": "form_post", "prompt": "none",
                  "client_id": platform.client_id,
                  "redirect_uri": self.plugin.urls.tool_launch(),
                  "login_hint": fields["login_hint"], "state": state, "nonce": nonce}
        if fields.get("lti_message_hint"):
            params["lti_message_hint"] = fields["lti_message_hint"]
        return _with_query(platform.auth_login_url, **params)

    def refuse_deployment(self, platform: PlatformRegistration, deployment: str,
                          ip: str) -> NoReturn:
        self.refuse("lti_deployment_not_registered",
                    f"deployment {deployment!r} is not registered for platform {platform.id}",
                    f"register deployment {deployment!r} for platform {platform.id}: PATCH "
                    f"/lti/platforms/{platform.id} (deployment_ids)", ip, platform,
                    deployment_id=deployment[:255])

    # -- the launch -------------------------------------------------------------------------

    def _consume_state(self, state: str, ip: str) -> LtiToolLogin:
        """The login `state` names, burnt now (single use) whatever happens next."""
        row = LtiToolLogin.get_or_none(LtiToolLogin.state == state) if state else None
        if row is None:
            self.refuse("lti_state_mismatch", "the launch's state was not issued by this "
                        "school's login initiation (or was cleaned up)",
                        "start the launch again from the platform; if it keeps failing, the "
                        "platform's redirect (launch) URL must be this school's "
                        "(GET /lti/config, tool.launch_url)", ip)
        if row.used_at is not None:
            self.refuse("lti_state_mismatch", "this launch's state was used already: each "
                        "login works once", "start the launch again from the platform (do "
                        "not reload or resubmit the launch page)", ip,
                        platform_id=row.platform_id)
        if row.expires_at <= utcnow():
            self.refuse("lti_expired", f"the login began more than {LOGIN_SECONDS // 60} "
                        "minutes before the launch arrived", "start the launch again from "
                        "the platform", ip, platform_id=row.platform_id)
        burnt = (LtiToolLogin.update(used_at=utcnow())
                 .where((LtiToolLogin.id == row.id) & LtiToolLogin.used_at.is_null())
                 .execute())
        if not burnt:  # a concurrent attempt with the same state won
            self.refuse("lti_state_mismatch", "this launch's state was used already",
                        "start the launch again from the platform", ip,
                        platform_id=row.platform_id)
        return row

    def verify(self, id_token: str, state: str, ip: str) -> Launch:
        """Every check of LTI 1.3 core §5.1.3 on the launch, or a refusal naming it."""
        if not id_token:
            self.refuse("lti_bad_request", "the launch has no id_token",
                        "the platform must post id_token and state (form_post)", ip)
        login = self._consume_state(state, ip)
        platform = PlatformRegistration.get_or_none(
            PlatformRegistration.id == login.platform_id)
        if platform is None:
            self.refuse("lti_unknown_issuer", "the platform registration of this login was "
                        "removed", "register the platform again (POST /lti/platforms)", ip)
        if not platform.enabled:
            self.refuse("lti_platform_disabled", f"the platform registration {platform.id} "
                        "is disabled", f"enable it: PATCH /lti/platforms/{platform.id}", ip,
                        platform)
        try:
            claims = self.plugin.peers.verify(
                id_token, issuer=platform.issuer, audience=platform.client_id,
                jwks_url=platform.jwks_url, require=("exp", "iat", "nonce"))
        except PeerTokenError as exc:
            code = TOKEN_CODES.get(exc.check, "lti_bad_signature")
            missing = exc.check == "missing_claim"
            self.refuse(code, f"the id_token failed the check {exc.check!r}: {exc}",
                        _token_fix(exc.check, platform), ip, platform, check=exc.check,
                        **({"claim": str(exc)} if missing else {}))
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != platform.client_id:
            self.refuse("lti_unknown_client", "the id_token has several audiences and its "
                        f"azp is not learnplat's client_id {platform.client_id!r}",
                        f"check client_id of platform {platform.id}", ip, platform)
        if "azp" in claims and claims["azp"] != platform.client_id:
            self.refuse("lti_unknown_client", f"the id_token's azp is not {platform.client_id!r}",
                        f"check client_id of platform {platform.id}", ip, platform)
        if claims.get("nonce") != login.nonce:
            used = LtiToolLogin.select().where(
                (LtiToolLogin.nonce == str(claims.get("nonce")))
                & LtiToolLogin.used_at.is_null(False)).exists()
            if used:
                self.refuse("lti_replayed_nonce", "the id_token was used in an earlier launch "
                            "(its nonce belongs to a finished login)", "start the launch "
                            "again from the platform; a replayed id_token is never accepted",
                            ip, platform)
            self.refuse("lti_state_mismatch", "the id_token's nonce is not the one this "
                        "login sent", "start the launch again from the platform", ip, platform)
        deployment = claims.get(c.DEPLOYMENT_ID)
        if not isinstance(deployment, str) or not deployment:
            self.refuse_missing(c.DEPLOYMENT_ID, platform, ip)
        if deployment not in platform.deployment_ids:
            self.refuse_deployment(platform, deployment, ip)
        if claims.get(c.VERSION) != c.LTI_VERSION:
            self.refuse("lti_bad_version", f"LTI version {claims.get(c.VERSION)!r}: learnplat "
                        f"takes {c.LTI_VERSION}", "launch with LTI 1.3 (an LTI 1.1 link must "
                        "be replaced by a 1.3 registration)", ip, platform)
        message_type = claims.get(c.MESSAGE_TYPE)
        if message_type not in MESSAGE_TYPES:
            if message_type is None:
                self.refuse_missing(c.MESSAGE_TYPE, platform, ip)
            self.refuse("lti_unknown_message_type", f"message type {message_type!r} is not "
                        f"one learnplat takes ({', '.join(MESSAGE_TYPES)})",
                        "launch a resource link or a Deep Linking request", ip, platform)
        required = ["sub", c.ROLES, c.TARGET_LINK_URI]
        required.append(c.RESOURCE_LINK if message_type == c.RESOURCE_LINK_REQUEST
                        else c.DL_SETTINGS)
        for name in required:
            if not claims.get(name) and not isinstance(claims.get(name), list):
                self.refuse_missing(name, platform, ip)
        if not isinstance(claims[c.ROLES], list):
            self.refuse_missing(c.ROLES, platform, ip)
        if message_type == c.RESOURCE_LINK_REQUEST and not _dict(claims, c.RESOURCE_LINK).get("id"):
            self.refuse_missing(c.RESOURCE_LINK + ".id", platform, ip)
        if message_type == c.DEEP_LINKING_REQUEST and not _dict(
                claims, c.DL_SETTINGS).get("deep_link_return_url"):
            self.refuse_missing(c.DL_SETTINGS + ".deep_link_return_url", platform, ip)
        return Launch(platform, claims, deployment, str(message_type),
                      c.role_from(str(r) for r in claims[c.ROLES]))

    def refuse_missing(self, claim: str, platform: PlatformRegistration, ip: str) -> NoReturn:
        self.refuse("lti_missing_claim", f"the id_token has no {claim!r} claim",
                    f"the platform must send {claim} (LTI 1.3 core); check the tool's "
                    "placement and privacy settings in the platform", ip, platform,
                    claim=claim)

    def target(self, launch: Launch, ip: str) -> Target:
        """The published course (and module) of this school the launch names."""
        claims, platform = launch.claims, launch.platform
        uri = str(claims[c.TARGET_LINK_URI])
        ours = urlsplit(self.plugin.urls.tool_launch())
        given = urlsplit(uri)
        fix = (f"place the course with target_link_uri {self.plugin.urls.tool_launch()}"
               "?course=<id> (Deep Linking does it), or custom parameter course_id")
        if (given.scheme, given.netloc, given.path.rstrip("/")) != (
                ours.scheme, ours.netloc, ours.path.rstrip("/")):
            self.refuse("lti_unknown_target", f"the target_link_uri {uri[:300]!r} is not this "
                        "school's launch URL", fix, ip, platform)
        query = {k: v[-1] for k, v in parse_qs(given.query).items()}
        custom = _dict(claims, c.CUSTOM)
        course = str(custom.get("course_id") or query.get("course") or "")
        module = str(custom.get("module_id") or query.get("module") or "")
        if not course.isdigit() or (module and not module.isdigit()) or len(course) > 18 \
                or len(module) > 18:
            self.refuse("lti_unknown_target", f"the launch names no course of this school "
                        f"(course={course[:40]!r})", fix, ip, platform)
        courses = self.runtime.service(COURSES)
        info = courses.get_course(int(course))
        if info is None or info.status != "published":
            self.refuse("lti_unknown_target", f"course {course} is not a published course of "
                        "this school", fix + "; publish the course or place another one", ip,
                        platform, course_id=int(course))
        if module:
            try:
                courses.get_module(int(course), int(module))
            except NotFound:
                self.refuse("lti_unknown_target", f"course {course} has no module {module}",
                            fix, ip, platform, course_id=int(course))
        return Target(int(course), int(module) if module else None)

    def landing_url(self, platform: PlatformRegistration, ip: str) -> str:
        url = platform.landing_url or current_tenant().setting("oauth.redirect_url") or ""
        if not url:
            self.refuse("lti_no_landing_url", "learnplat does not know where to send the "
                        "launched user (no landing URL)",
                        f"set landing_url of platform {platform.id} (PATCH /lti/platforms/"
                        f"{platform.id}) or the school setting oauth.redirect_url", ip,
                        platform)
        return str(url)

    def account(self, launch: Launch) -> int:
        """The learnplat user linked to (platform, sub), created on the first launch. Never
        linked by e-mail: an e-mail another account has gets a placeholder address."""
        platform, claims = launch.platform, launch.claims
        sub = str(claims["sub"])[:255]
        link = PlatformAccount.get_or_none((PlatformAccount.platform == platform.id)
                                           & (PlatformAccount.sub == sub))
        identity = self.runtime.service(IDENTITY)
        if link is not None:
            PlatformAccount.update(last_launch_at=utcnow()).where(
                PlatformAccount.id == link.id).execute()
            return int(link.user_id)
        name = str(claims.get("name") or " ".join(
            str(claims.get(k) or "") for k in ("given_name", "family_name")).strip()
            or "LTI user")[:200]
        email = str(claims.get("email") or "").strip()
        user = None
        if email and not identity.users_by_email([email]):
            try:
                user = identity.create_account(email, name, launch.role)
            except ValidationFailed:
                user = None  # not an address learnplat takes: a placeholder below
        if user is None:
            user = identity.create_account(placeholder_email(platform, sub), name, launch.role)
        now = utcnow()
        # A concurrent first launch of the same user may link first: the unique index then
        # fails this request as a whole (the account just made rolls back).
        PlatformAccount.create(platform=platform.id, sub=sub, user_id=user.id,
                               created_at=now, last_launch_at=now)
        identity.audit("lti.account_linked", actor_id=user.id, subject_id=user.id, detail={
            "platform_id": platform.id, "role": launch.role})
        return int(user.id)

    def grade_target(self, launch: Launch, user_id: int, target: Target) -> None:
        """Where this learner's grade goes back (engineer B2's passback): the AGS claim of
        the launch, per (platform, resource link, user)."""
        ags = _dict(launch.claims, c.AGS_ENDPOINT)
        if not ags:
            return
        link_id = str(_dict(launch.claims, c.RESOURCE_LINK).get("id"))[:255]
        fields = {"sub": str(launch.claims["sub"])[:255], "course_id": target.course_id,
                  "module_id": target.module_id, "deployment_id": launch.deployment_id,
                  "lineitem_url": str(ags.get("lineitem") or "")[:2000],
                  "lineitems_url": str(ags.get("lineitems") or "")[:2000],
                  "scopes": [str(s) for s in ags.get("scope") or []], "updated_at": utcnow()}
        found = GradeTarget.get_or_none((GradeTarget.platform == launch.platform.id)
                                        & (GradeTarget.resource_link_id == link_id)
                                        & (GradeTarget.user_id == user_id))
        if found is not None:
            GradeTarget.update(**fields).where(GradeTarget.id == found.id).execute()
            return
        GradeTarget.create(platform=launch.platform.id, user_id=user_id,
                           resource_link_id=link_id, created_at=utcnow(), **fields)

    def launch(self, id_token: str, state: str, ip: str) -> tuple[Launch, str | None]:
        """(launch, the landing URL to redirect to), or (launch, None) for a Deep Linking
        request by an instructor: the caller shows the picker."""
        launch = self.verify(id_token, state, ip)
        if launch.message_type == c.DEEP_LINKING_REQUEST:
            if launch.role != "instructor":
                self.refuse("lti_deep_linking_forbidden", "only an instructor or "
                            "administrator of the platform's course may place learnplat "
                            "content", "ask an instructor of the course to add the link", ip,
                            launch.platform)
            return launch, None
        target = self.target(launch, ip)
        landing = self.landing_url(launch.platform, ip)
        user_id = self.account(launch)
        if launch.role == "student":
            self.runtime.service(ENROLLMENT).enroll_from(target.course_id, user_id, "lti")
        self.grade_target(launch, user_id, target)
        code = self.runtime.service(IDENTITY).sign_in_code(user_id, "lti", ip, detail={
            "platform_id": launch.platform.id, "deployment_id": launch.deployment_id,
            "course_id": target.course_id, "module_id": target.module_id})
        return launch, _with_query(landing, code=code, course_id=target.course_id,
                                   module_id=target.module_id)

    def redirect(self, resp: falcon.Response, url: str) -> None:
        resp.status = falcon.HTTP_302
        resp.location = url
        resp.cache_control = ["no-store"]


def status_of(plugin: LtiPlugin, code: str) -> int:
    """The status `code` is declared with (a refusal answers what the catalogue says)."""
    declared = plugin.problems.get(code)
    return declared.statuses[0] if declared is not None else 400


def placeholder_email(platform: PlatformRegistration, sub: str) -> str:
    """An address that is never delivered (RFC 2606 ``.example``), stable per (platform,
    sub): ``lti-<hash>@<issuer host>.example``. (``.invalid``, the obvious choice, is refused
    by the identity plugin's e-mail rule.)"""
    digest = hashlib.sha256(f"{platform.issuer}\n{platform.client_id}\n{sub}".encode()
                            ).hexdigest()[:20]
    host = "".join(ch if ch.isalnum() or ch in ".-" else "-"
                   for ch in (urlsplit(platform.issuer).hostname or "platform").lower())
    host = ".".join(p.strip("-") for p in host.split(".") if p.strip("-"))[:180] or "platform"
    return f"lti-{digest}@{host}.example"


def _dict(claims: dict[str, Any], name: str) -> dict[str, Any]:
    value = claims.get(name)
    return value if isinstance(value, dict) else {}


def _token_fix(check: str, platform: PlatformRegistration) -> str:
    pid = platform.id
    return {
        "keys_unavailable": f"check jwks_url of platform {pid} (PATCH /lti/platforms/{pid}): "
                            "learnplat must be able to fetch it",
        "unknown_key": f"the platform signed with a key not at jwks_url of platform {pid}: "
                       f"check jwks_url (PATCH /lti/platforms/{pid})",
        "bad_signature": f"the id_token was not signed by the keys at jwks_url of platform "
                         f"{pid}: check jwks_url and issuer (PATCH /lti/platforms/{pid})",
        "malformed": "the platform must post a signed JWT (RS256) as id_token",
        "expired": "start the launch again; if it keeps failing, check the clocks of the "
                   "platform and of learnplat's servers",
        "not_yet_valid": "check the clocks of the platform and of learnplat's servers",
        "wrong_issuer": f"the id_token's iss is not the issuer of platform {pid}: fix issuer "
                        f"(PATCH /lti/platforms/{pid})",
        "wrong_audience": f"the id_token is not meant for client_id {platform.client_id!r}: "
                          f"fix client_id of platform {pid} (PATCH /lti/platforms/{pid})",
        "missing_claim": "the platform must send the claim named (LTI 1.3 core)",
    }.get(check, f"check the registration of platform {pid}")


def json_data(value: Any) -> str | None:
    """The Deep Linking `data` claim stored as JSON text (echoed back unchanged)."""
    return None if value is None else json.dumps(value)

