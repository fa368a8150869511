"""Request and answer shapes of the LTI Advantage services: the OAuth 2 token endpoint
(RFC 6749 field names), AGS 2.0 line items, scores and results and NRPS 2.0 memberships
(the IMS field names: camelCase in AGS, snake_case in NRPS), and the instructors' score list."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from learnplat.plugin import Page, PageQuery, Schema

LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
RESULTS = "application/vnd.ims.lis.v2.resultcontainer+json"
MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"

ActivityProgress = Literal["Initialized", "Started", "InProgress", "Submitted", "Completed"]
GradingProgress = Literal["FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"]


# -- the token endpoint ---------------------------------------------------------------------


class LtiScoreTokenIn(Schema):
    """The client credentials grant with a signed JWT client assertion (RFC 7523)."""

    # Strings, not Literals: another value is answered with RFC 6749's error, not a 422.
    grant_type: str = Field(max_length=100, description="client_credentials",
                            json_schema_extra={"enum": ["client_credentials"]})
    client_assertion_type: str = Field(
        max_length=200, description="The JWT bearer assertion type (RFC 7523).",
        json_schema_extra={"enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]})
    client_assertion: str = Field(max_length=20000,
                                  description="A JWT signed by the tool: iss = sub = its "
                                              "client_id, aud = this URL, exp, iat, jti.")
    scope: str = Field("", max_length=2000, description="Space-separated LTI Advantage scopes.")


class LtiScoreTokenOut(BaseModel):
    """An access token for the school's AGS and NRPS endpoints (RFC 6749 5.1)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "access_token": "V78pdEEk8FwijUKWb7vuEoJuiJNrW1cpMuUWqZnP6f4", "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/score"}]})

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


# -- AGS ---------------------------------------------------------------------------------


class _Ims(Schema):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class LtiScoreLineItemIn(_Ims):
    """A line item a tool creates or replaces (AGS 2.0 3.2)."""

    scoreMaximum: float = Field(gt=0, le=1e9)
    label: str = Field(min_length=1, max_length=255)
    resourceId: str = Field("", max_length=255)
    tag: str = Field("", max_length=255)
    resourceLinkId: str | None = Field(None, max_length=255,
                                       description="The id of an lti module of the course.")
    startDateTime: dt.datetime | None = None
    endDateTime: dt.datetime | None = None


class LtiScoreLineItemOut(BaseModel):
    id: str = Field(description="The line item's URL.")
    scoreMaximum: float
    label: str
    resourceId: str | None = None
    tag: str | None = None
    resourceLinkId: str | None = None
    startDateTime: dt.datetime | None = None
    endDateTime: dt.datetime | None = None


class LtiScoreLineItemQuery(Schema):
    resource_link_id: str | None = Field(None, max_length=255)
    resource_id: str | None = Field(None, max_length=255)
    tag: str | None = Field(None, max_length=255)
    limit: int = Field(100, ge=1, le=1000)
    after: int = Field(0, ge=0, le=2**63 - 1, description="Paging: the Link rel=next URL.")


class LtiScoreIn(_Ims):
    """A learner's score (AGS 2.0 3.4): application/vnd.ims.lis.v1.score+json."""

    userId: str = Field(min_length=1, max_length=255, description="The launch's sub.")
    scoreGiven: float | None = Field(None, ge=0, le=1e9)
    scoreMaximum: float | None = Field(None, gt=0, le=1e9)
    activityProgress: ActivityProgress
    gradingProgress: GradingProgress
    timestamp: dt.datetime
    comment: str = Field("", max_length=10000)


class LtiScoreResultQuery(Schema):
    user_id: str | None = Field(None, max_length=255)
    limit: int = Field(100, ge=1, le=1000)
    after: int = Field(0, ge=0, le=2**63 - 1)


class LtiScoreResultOut(BaseModel):
    id: str
    scoreOf: str
    userId: str
    resultScore: float | None = None
    resultMaximum: float | None = None
    comment: str | None = None


# -- NRPS --------------------------------------------------------------------------------


class LtiScoreMembershipQuery(Schema):
    role: str | None = Field(None, max_length=255,
                             description="Only members with this role (full URI or short).")
    limit: int = Field(100, ge=1, le=1000)
    after: int = Field(0, ge=0, le=2**63 - 1)


class LtiScoreMember(BaseModel):
    user_id: str
    status: Literal["Active"] = "Active"
    roles: list[str]
    name: str | None = None
    email: str | None = None


class LtiScoreContext(BaseModel):
    id: str
    title: str


class LtiScoreMemberships(BaseModel):
    id: str
    context: LtiScoreContext
    members: list[LtiScoreMember]


# -- the instructors' view ------------------------------------------------------------------


class LtiScoreQuery(PageQuery):
    course_id: int = Field(ge=1, le=2**63 - 1)
    module_id: int | None = Field(None, ge=1, le=2**63 - 1)
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)


class LtiScoreOut(BaseModel):
    # Ada (user 1001) finished the titration lab (module 9 of course 42, tool 5): the tool
    # posted her score to the module's line item 17.
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 260, "course_id": 42, "module_id": 9, "lineitem_id": 17, "user_id": 1001,
        "tool_id": 5, "score_given": 17.5, "score_maximum": 20.0,
        "activity_progress": "Completed", "grading_progress": "FullyGraded",
        "comment": "Endpoint reached at 24.6 mL", "timestamp": "2026-09-14T09:52:11Z",
        "created_at": "2026-09-14T09:52:12Z"}]})

    id: int
    course_id: int
    module_id: int | None
    lineitem_id: int
    user_id: int
    tool_id: int
    score_given: float | None
    score_maximum: float | None
    activity_progress: str
    grading_progress: str
    comment: str
    timestamp: dt.datetime
    created_at: dt.datetime


class LtiScorePage(Page[LtiScoreOut]):
    pass
