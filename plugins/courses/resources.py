"""Falcon resources of the courses plugin."""

from __future__ import annotations

from typing import Any

import falcon

from learnplat.http.endpoint import endpoint
from learnplat.http.pagination import paginate

from .models import Course, CourseTag, Module
from .schemas import (
    CourseDetail,
    CourseIn,
    CourseOut,
    CoursePage,
    CoursePatch,
    CourseQuery,
    ModuleIn,
    ModuleOut,
    RejectIn,
    course_out,
    module_out,
)
from .services import CoursesService


class CourseCollection:
    def __init__(self, service: CoursesService):
        self.service = service

    @endpoint(permission="course.read", query=CourseQuery, response=CoursePage,
              summary="The catalogue: published courses (instructors also their own, admins all)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *, query: CourseQuery) -> Any:
        svc = self.service
        q = svc.catalogue(req.context.principal)
        if query.q:
            q = svc.search(q, query.q)
        if query.tag:
            q = q.where(Course.id.in_(CourseTag.select(CourseTag.course)
                                      .where(CourseTag.tag == query.tag.lower())))
        if query.level:
            q = q.where(Course.level == query.level)
        if query.language:
            q = q.where(Course.language == query.language)
        if query.instructor:
            q = q.where(Course.owner_id == query.instructor)
        if query.status:
            q = q.where(Course.status == query.status)
        page = paginate(q, [(Course.id, True)], query, lambda c: c)
        tags = svc.tags_of([c.id for c in page["items"]])
        page["items"] = [course_out(c, tags[c.id]) for c in page["items"]]
        return page

    @endpoint(permission="course.create", body=CourseIn, response=CourseOut, status=201,
              summary="Create a course (as a draft)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: CourseIn) -> Any:
        course = self.service.create(req.context.principal, body.model_dump())
        return course_out(course, self.service.tags_of([course.id])[course.id])


class CourseItem:
    def __init__(self, service: CoursesService):
        self.service = service

    @endpoint(permission="course.read", response=CourseDetail,
              summary="A course with its modules in order")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        svc = self.service
        principal = req.context.principal
        course = svc._visible(course_id, principal)
        out = course_out(course, svc.tags_of([course.id])[course.id])
        out["modules"] = [module_out(m) for m in Module.select().where(
            Module.course == course.id).order_by(Module.position, Module.id)]
        for extra in svc.runtime.hook.course_detail_extras(
                runtime=svc.runtime, course_id=course.id, principal=principal):
            if extra:
                out.update(extra)
        return out

    @endpoint(permission="course.update", body=CoursePatch, response=CourseOut,
              summary="Edit a course (the owner or an admin)")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               body: CoursePatch) -> Any:
        course = self.service.update(req.context.principal, course_id,
                                     body.model_dump(exclude_unset=True))
        return course_out(course, self.service.tags_of([course.id])[course.id])

    @endpoint(permission="course.delete", status=204,
              summary="Delete a course; one with enrollments is archived instead")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> None:
        if self.service.delete(req.context.principal, course_id) == "archived":
            resp.status = 200
            resp.media = {"id": course_id, "status": "archived"}


class _Transition:
    action = ""

    def __init__(self, service: CoursesService):
        self.service = service

    def _act(self, req: falcon.Request, course_id: int, reason: str = "") -> Any:
        course = self.service.act(req.context.principal, course_id, self.action, reason)
        return course_out(course, self.service.tags_of([course.id])[course.id])


class SubmitResource(_Transition):
    action = "submit"

    @endpoint(permission="course.submit", response=CourseOut, errors=(409,),
              summary="Submit a draft or rejected course for review (owner)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        return self._act(req, course_id)


class ApproveResource(_Transition):
    action = "approve"

    @endpoint(permission="course.review", response=CourseOut, errors=(409,),
              summary="Publish a course pending review (admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        return self._act(req, course_id)


class RejectResource(_Transition):
    action = "reject"

    @endpoint(permission="course.review", body=RejectIn, response=CourseOut, errors=(409,),
              summary="Send a course back to its instructor with a reason (admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: RejectIn) -> Any:
        return self._act(req, course_id, body.reason)


class ArchiveResource(_Transition):
    action = "archive"

    @endpoint(permission="course.archive", response=CourseOut, errors=(409,),
              summary="Archive a course (owner or admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        return self._act(req, course_id)


class ModuleCollection:
    def __init__(self, service: CoursesService):
        self.service = service

    @endpoint(permission="course.update", body=ModuleIn, response=ModuleOut, status=201,
              summary="Add a module to a course")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: ModuleIn) -> Any:
        return module_out(self.service.add_module(req.context.principal, course_id,
                                                  body.model_dump()))


class ModuleItem:
    def __init__(self, service: CoursesService):
        self.service = service

    @endpoint(permission="course.update", status=204, summary="Remove a module")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                  module_id: int) -> None:
        self.service.delete_module(req.context.principal, course_id, module_id)
