"""Falcon resources of the progress plugin."""

from __future__ import annotations

import falcon

from learnplat.plugin import PageQuery, endpoint

from .schemas import (
    HeartbeatOut,
    ProgressIn,
    ProgressOut,
    ProgressPostOut,
    StudentProgressPage,
    StudentsQuery,
)
from .services import ProgressService


class ProgressResource:
    def __init__(self, service: ProgressService):
        self.service = service

    @endpoint(permission="progress.track", response=ProgressOut, errors=(403, 404), etag=True,
              summary="The caller's progress in a course")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> ProgressOut:
        """The caller's progress: percent (0..100) of required modules completed, and each
        module's state (completed, locked, video playback). Current to the last heartbeat."""
        return self.service.document(req.context.principal, course_id)

    # Playback heartbeats (and completions) have their own budget: watching a video for
    # hours never starves the rest of the API for that student, nor the reverse.
    @endpoint(permission="progress.track", body=ProgressIn, response=ProgressPostOut,
              errors=(403, 404, 409), budget="heartbeat",
              summary="Mark a module complete, or record video playback")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: ProgressIn) -> ProgressOut | HeartbeatOut:
        """`{module_id, completed}` marks a module complete (or not) and answers the course
        progress; 409 when the module is locked (prerequisite or release date).
        `{module_id, position_seconds, duration_seconds}` is a playback heartbeat and answers
        the module's playback state; 409 for a module that is not a video, 422 for positions
        far beyond the duration."""
        principal = req.context.principal
        if body.completed is not None:
            return self.service.mark(principal, course_id, body.module_id, body.completed)
        return self.service.heartbeat(principal, course_id, body.module_id,
                                      body.position_seconds or 0.0,
                                      body.duration_seconds or 0.0)


class StudentsResource:
    def __init__(self, service: ProgressService):
        self.service = service

    @endpoint(permission="progress.view_course", query=StudentsQuery, response=StudentProgressPage,
              errors=(404,), cost=5, summary="Progress of a course's students (owner, admin)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               query: StudentsQuery) -> StudentProgressPage:
        """Cursor-paged; `sort` by `percent` or `last_activity` (prefix `-` for descending);
        `status` active (default), dropped or all."""
        page = PageQuery(limit=query.limit, cursor=query.cursor)
        return self.service.students(req.context.principal, course_id, page, query.sort,
                                     query.status)
