"""LTI 1.3 / Advantage claim names, message types, scopes and role URIs (IMS LTI 1.3 core,
Deep Linking 2.0, AGS 2.0, NRPS 2.0), and how learnplat's roles map to and from them."""

from __future__ import annotations

from collections.abc import Iterable

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI + "message_type"
VERSION = LTI + "version"
DEPLOYMENT_ID = LTI + "deployment_id"
TARGET_LINK_URI = LTI + "target_link_uri"
RESOURCE_LINK = LTI + "resource_link"
ROLES = LTI + "roles"
CONTEXT = LTI + "context"
TOOL_PLATFORM = LTI + "tool_platform"
LAUNCH_PRESENTATION = LTI + "launch_presentation"
CUSTOM = LTI + "custom"
LIS = LTI + "lis"

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
DL_SETTINGS = DL + "deep_linking_settings"
DL_CONTENT_ITEMS = DL + "content_items"
DL_DATA = DL + "data"
DL_MSG = DL + "msg"
DL_ERRORMSG = DL + "errormsg"

AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
LTI_VERSION = "1.3.0"

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ADVANTAGE_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY,
                    SCOPE_SCORE, SCOPE_NRPS)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Context (course) membership roles, and the institution role of an administrator.
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTRUCTOR = MEMBERSHIP + "Instructor"
LEARNER = MEMBERSHIP + "Learner"
CONTENT_DEVELOPER = MEMBERSHIP + "ContentDeveloper"
MENTOR = MEMBERSHIP + "Mentor"
TEACHING_ASSISTANT = MEMBERSHIP + "Instructor#TeachingAssistant"
INSTITUTION_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
SYSTEM_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
CONTEXT_COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"


def roles_for(role: str, in_course_as_instructor: bool = False) -> list[str]:
    """The LTI roles of a learnplat user in a launch: an admin is an institution
    administrator and an instructor of the course; the course's owner (or another instructor)
    an Instructor; everyone else a Learner."""
    if role == "admin":
        return [INSTITUTION_ADMIN, INSTRUCTOR]
    if role == "instructor" or in_course_as_instructor:
        return [INSTRUCTOR]
    return [LEARNER]


def role_from(lti_roles: Iterable[str]) -> str:
    """The learnplat role a platform's LTI roles give a new account: instructor for an
    Instructor, ContentDeveloper or TeachingAssistant (and administrators: never admin, an
    LMS does not make school admins here), else student. Short forms ("Instructor") count."""
    teach = ("Instructor", "ContentDeveloper", "TeachingAssistant", "Administrator")
    for r in lti_roles:
        name = str(r).rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        if name in teach:
            return "instructor"
    return "student"
