"""Helpers of the tests of learnplat's LTI Advantage services: a tool registered with
Advantage scopes, linked to an lti module, whose pylti1p3 service clients
(ServiceConnector, AssignmentsGradesService, NamesRolesProvisioningService) are built from the
claims a real launch gave it; and client assertions signed by hand for the refusals."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import requests
from ltiplatformhelpers import School, launch
from ltitool import TestTool
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import ServiceConnector

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
S = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM, SCOPE_SCORE = S + "lineitem", S + "score"
SCOPE_RESULT = S + "result.readonly"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ALL = [SCOPE_LINEITEM, SCOPE_SCORE, SCOPE_RESULT, SCOPE_NRPS]
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def setup(school: School, tool: TestTool, scopes: list[str] | None = None, **fields: Any
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register and link the tool, launch it as the student: (registration, launch claims)."""
    reg = school.register(tool, scopes=ALL if scopes is None else scopes, **fields)
    school.link(reg["id"], max_score=10)
    with requests.Session() as browser:
        r = launch(browser, school.launch_url(school.s, module_id=school.module_ids[0]))
    assert r.status_code == 200, r.text
    return reg, tool.launches[-1]


def connector(tool: TestTool) -> ServiceConnector:
    conf = tool.conf()
    p = tool.platform
    assert p is not None
    return ServiceConnector(conf.find_registration_by_params(p.issuer, p.client_id))


def ags(tool: TestTool, claims: dict[str, Any]) -> AssignmentsGradesService:
    return AssignmentsGradesService(connector(tool), claims[AGS])


def nrps(tool: TestTool, claims: dict[str, Any]) -> NamesRolesProvisioningService:
    return NamesRolesProvisioningService(connector(tool), claims[NRPS])


def assertion(tool: TestTool, key: str | None = None, **over: Any) -> str:
    """A client assertion as a tool signs it (`over` replaces or, with None, drops claims)."""
    p = tool.platform
    assert p is not None
    now = int(time.time())
    claims: dict[str, Any] = {"iss": p.client_id, "sub": p.client_id, "aud": p.token_url,
                              "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key or tool.private_pem, algorithm="RS256")


def token_request(url: str, client_assertion: str, scope: str = SCOPE_SCORE
                  ) -> requests.Response:
    return requests.post(url, data={"grant_type": "client_credentials",
                                    "client_assertion_type": ASSERTION,
                                    "client_assertion": client_assertion, "scope": scope},
                         timeout=10)


def token(tool: TestTool, scope: str = SCOPE_SCORE) -> str:
    p = tool.platform
    assert p is not None
    r = token_request(p.token_url, assertion(tool), scope)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])
