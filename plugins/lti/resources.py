"""The plugin's own routes: the school's LTI keys (for peers) and addresses (for admins).
Each part (platform/, advantage/, tool/, passback/) has its own resources."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from learnplat.plugin import PUBLIC, endpoint

from .schemas import LtiConfigOut, LtiJwks, LtiPlatformUrls, LtiToolUrls

if TYPE_CHECKING:
    from .plugin import LtiPlugin

TAGS = ("lti",)


def config_out(plugin: LtiPlugin) -> LtiConfigOut:
    u = plugin.urls
    return LtiConfigOut(
        platform=LtiPlatformUrls(issuer=u.issuer(), jwks_url=u.jwks(),
                                 authorization_url=u.platform_auth(),
                                 token_url=u.platform_token(),
                                 deep_link_return_url=u.deep_link_return()),
        tool=LtiToolUrls(login_url=u.tool_login(), launch_url=u.tool_launch(),
                         deep_linking_url=u.tool_launch(), jwks_url=u.jwks()))


class JwksResource:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin

    @endpoint(permission=PUBLIC, response=LtiJwks, tags=TAGS,
              summary="The school's public LTI keys (JWKS), for tools and platforms")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> LtiJwks:
        resp.cache_control = ["public", "max-age=300"]
        return LtiJwks.model_validate(self.plugin.keys.jwks())


class ConfigResource:
    def __init__(self, plugin: LtiPlugin):
        self.plugin = plugin

    @endpoint(permission="lti.manage", response=LtiConfigOut, tags=TAGS, errors=(503,),
              summary="The school's LTI addresses: what to enter in a tool or in an LMS")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> LtiConfigOut:
        return config_out(self.plugin)
