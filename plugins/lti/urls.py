"""The URLs a school gives LTI peers. They name the school in the path
(``/lti/schools/{school}/...``, Route.tenant_param): a peer sends no X-Tenant, and LTI
libraries add their own query string to the URLs they are given (pylti1p3 and lti1p3platform
append ``?`` + parameters), so a ``?tenant=`` could not survive them."""

from __future__ import annotations

from urllib.parse import urlsplit

from learnplat.plugin import (
    LearnplatError,
    Runtime,
    TenantInfo,
    ValidationFailed,
    current_tenant,
)

PREFIX = "/lti/schools/{school}"  # the route prefix of everything a peer calls
SCHOOL = "school"  # Route.tenant_param of those routes


class PublicUrlNotSet(LearnplatError):
    """LTI peers must be given absolute URLs and the API's public address is not known."""

    status, code, title = 503, "public_url_not_set", "The public URL of the API is not set"


class LtiUrls:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def browser_url(self, field: str, value: str) -> str:
        """A URL only a browser visits (a tool's login and launch URLs, a platform's
        authorization endpoint, the school's front end), checked as such: absolute http(s),
        https unless the outbound policy allows plain http (``outbound.require_https``), no
        user name or password, no fragment, at most 2000 characters; ValidationFailed naming
        `field` otherwise. Its address is not looked up: learnplat never connects to it, and
        a school's front end or LMS may live where the server cannot resolve it."""
        value = value.strip()
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            raise ValidationFailed.field(field, f"not a URL: {exc}", "invalid_url") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValidationFailed.field(field, "an absolute https URL is expected",
                                         "invalid_url")
        if parts.scheme == "http" and self.runtime.outbound.policy.require_https:
            raise ValidationFailed.field(field, "https is required (outbound.require_https)",
                                         "invalid_url")
        if parts.username is not None or parts.password is not None or parts.fragment:
            raise ValidationFailed.field(field, "no user name, password or #fragment",
                                         "invalid_url")
        if len(value) > 2000 or any(ch.isspace() for ch in value) or port == 0:
            raise ValidationFailed.field(field, "at most 2000 characters, no spaces",
                                         "invalid_url")
        return value

    def base(self) -> str:
        """The API's public URL (app.public_url, or derived from a loopback bind), or
        ServiceUnavailable naming the setting: peers must be told absolute URLs."""
        public = self.runtime.settings.public_url_in_force()
        if not public.url:
            raise PublicUrlNotSet(
                f"LTI needs the address the API is reached at, and it is {public.source}")
        return public.url.rstrip("/")

    def school(self, path: str = "", tenant: TenantInfo | None = None) -> str:
        """The absolute URL of `path` under the school's LTI prefix:
        ``school("/platform/token")`` -> ``https://lms.example/lti/schools/oak/platform/token``."""
        slug = (tenant or current_tenant()).slug
        return f"{self.base()}{PREFIX.format(school=slug)}{path}"

    # -- learnplat as platform ------------------------------------------------------------------

    def issuer(self, tenant: TenantInfo | None = None) -> str:
        """The school's issuer as a platform (``iss`` of its id_tokens): the prefix itself."""
        return self.school("", tenant)

    def jwks(self, tenant: TenantInfo | None = None) -> str:
        return self.school("/jwks", tenant)

    def platform_auth(self, tenant: TenantInfo | None = None) -> str:
        """The OIDC authorization endpoint tools redirect the browser to."""
        return self.school("/platform/auth", tenant)

    def platform_token(self, tenant: TenantInfo | None = None) -> str:
        """The OAuth 2 token endpoint (client credentials with a signed JWT assertion)."""
        return self.school("/platform/token", tenant)

    def deep_link_return(self, tenant: TenantInfo | None = None) -> str:
        return self.school("/platform/deep-links", tenant)

    def lineitems(self, course_id: int, tenant: TenantInfo | None = None) -> str:
        return self.school(f"/platform/contexts/{course_id}/lineitems", tenant)

    def lineitem(self, course_id: int, lineitem_id: int, tenant: TenantInfo | None = None
                 ) -> str:
        return self.school(f"/platform/contexts/{course_id}/lineitems/{lineitem_id}", tenant)

    def memberships(self, course_id: int, tenant: TenantInfo | None = None) -> str:
        return self.school(f"/platform/contexts/{course_id}/memberships", tenant)

    # -- learnplat as tool ------------------------------------------------------------------

    def tool_login(self, tenant: TenantInfo | None = None) -> str:
        """The OIDC login initiation URL a platform registers for learnplat."""
        return self.school("/tool/login", tenant)

    def tool_launch(self, tenant: TenantInfo | None = None) -> str:
        """The redirect (launch) URL and target_link_uri base a platform registers."""
        return self.school("/tool/launch", tenant)

    def tool_deep_link(self, tenant: TenantInfo | None = None) -> str:
        """Where the tool's content picker posts the instructor's choice."""
        return self.school("/tool/deep-link", tenant)
