"""Falcon resources of the courses plugin: thin, they validate (through @endpoint), call a
service and shape the answer."""

from __future__ import annotations

import time
from typing import Any

import falcon
import orjson

from learnplat.plugin import (
    JSON,
    MULTIPART,
    NotFound,
    PageQuery,
    computing,
    conditional,
    dump,
    endpoint,
    merge_extras,
    multipart_file,
    paginate,
    send_object,
    valid_until,
)

from .analytics import AnalyticsService
from .api import CATALOGUE_GENERATION, LEARNER_GENERATION
from .feedback import FeedbackService
from .images import ImageService
from .models import Course, CourseTransition, FeedbackThread, Rating
from .ratings import RatingService
from .schemas import (
    AnalyticsOut,
    CourseDetail,
    CourseIn,
    CourseOut,
    CoursePage,
    CoursePatch,
    CourseQuery,
    MessageIn,
    MessageOut,
    ModuleIn,
    ModuleList,
    ModuleOrderIn,
    ModuleOut,
    ModulePatch,
    RatingIn,
    RatingOut,
    RatingPage,
    RejectIn,
    ReplyIn,
    ThreadDetail,
    ThreadIn,
    ThreadOut,
    ThreadPage,
    TransitionOut,
    TransitionPage,
)
from .services import CoursesService, catalogue_is_public
from .settings import UPLOAD_CEILING


def open_catalogue(req: falcon.Request) -> bool:
    """Without a token: published courses only, unless the school's setting courses.catalogue
    is "private"."""
    return catalogue_is_public(req.context.tenant)


class _Resource:
    def __init__(self, service: CoursesService):
        self.service = service

    def _course(self, course: Course) -> CourseOut:
        return CourseOut.of(course, self.service.tags_of([course.id])[course.id])


class CourseCollection(_Resource):
    @endpoint(permission="course.read", query=CourseQuery, response=CoursePage,
              anonymous=open_catalogue, generation=CATALOGUE_GENERATION, etag=True,
              summary="The catalogue: published courses (instructors also their own, admins all)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *, query: CourseQuery) -> None:
        """Cursor-paginated, newest first; filters combine. Answers in a constant number of
        queries whatever the page size."""
        ctx = req.context
        # Visitors and students see the same published catalogue: its pages are cached per
        # process until a course changes (CoursesService bumps the generation).
        shared = ctx.principal is None or "course.update" not in ctx.principal.grants
        key = (ctx.tenant.id, CATALOGUE_GENERATION, ctx.generation,
               query.model_dump_json()) if shared and ctx.generation else None
        answers = self.service.runtime.answers
        if key is not None and (cached := answers.get(key)) is not None:
            conditional.send_cached(resp, cached)  # with its ETag: a 304 costs no hashing
            return None
        svc = self.service
        q = svc.filtered(ctx.principal, q=query.q, tag=query.tag, level=query.level,
                         language=query.language, instructor=query.instructor,
                         status=query.status)
        page = paginate(q, [Course.id.desc()], query)
        tags = svc.tags_of([c.id for c in page["items"]])
        answer = CoursePage(items=[CourseOut.of(c, tags[c.id]) for c in page["items"]],
                            next_cursor=page["next_cursor"])
        resp.data, resp.content_type = dump(answer), JSON
        if key is not None:
            tagged = conditional.Tagged.of(resp.data)
            answers.put(key, tagged)
            resp.set_header("ETag", tagged.etag)
        return None

    @endpoint(permission="course.create", body=CourseIn, response=CourseOut, status=201,
              summary="Create a course (as a draft)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: CourseIn) -> CourseOut:
        return self._course(self.service.create(req.context.principal, body.model_dump()))


class CourseItem(_Resource):
    @endpoint(permission="course.read", response=CourseDetail, anonymous=open_catalogue,
              generation=CATALOGUE_GENERATION, caller_generation=LEARNER_GENERATION,
              etag=True, summary="A course with its modules in order (and plugins' extras)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> None:
        """Enrolled students keep access to an archived course. Plugins add keys through the
        course_detail_extras hook (the progress plugin: the caller's progress)."""
        ctx = req.context
        principal = ctx.principal
        answers = self.service.runtime.answers
        # The whole page of a published course, extras included, is kept per caller until the
        # catalogue changes, the caller's learner generation is bumped (their enrollment,
        # progress or certificate changed) or a time the computation declared (valid_until:
        # a module's release, an enrollment window) passes. The role is part of the key (a
        # role change gives another page); the tenant snapshot is compared on a hit (its
        # settings shape some extras, e.g. certificate URLs).
        key = None
        if ctx.generation and self._extras_cacheable():
            caller = ((principal.user_id, principal.role, ctx.caller_generation)
                      if principal is not None else None)
            if principal is None or ctx.caller_generation:
                key = (ctx.tenant.id, LEARNER_GENERATION, ctx.generation, caller, course_id)
        if key is not None and (hit := answers.get(key)) is not None \
                and (hit[0] is ctx.tenant or hit[0] == ctx.tenant):
            # With the ETag hashed when it was cached: a poll whose If-None-Match names it
            # is a 304 that neither builds nor copies the page.
            conditional.send_cached(resp, hit[1])
            return None
        with computing() as validity:
            out, published = self._document(ctx, course_id)
        resp.data, resp.content_type = dump(out), JSON
        if key is not None and published:
            tagged = conditional.Tagged.of(resp.data)
            answers.put(key, (ctx.tenant, tagged), validity.seconds(answers.max_age))
            resp.set_header("ETag", tagged.etag)
        return None

    def _page(self, ctx: Any, course_id: int) -> bytes:
        """The page a GET by this caller would send, built from the database as it is now in
        this transaction (no cached part: an update's transaction sees its own write before
        the catalogue generation moves): what If-Match compares and the ETag an update
        answers."""
        return dump(self._document(ctx, course_id, fresh=True)[0])

    def _precondition(self, req: falcon.Request, course_id: int) -> Any:
        return conditional.precondition(req, lambda: self._page(req.context, course_id))

    def _extras_cacheable(self) -> bool:
        """Whether every course_detail_extras implementation is marked cacheable (looked up
        each time: plugins are registered once, and this is a short list)."""
        return all(getattr(impl.function, "learnplat_cacheable", False)
                   for impl in self.service.runtime.hook.course_detail_extras.get_hookimpls())

    def _document(self, ctx: Any, course_id: int, fresh: bool = False
                  ) -> tuple[dict[str, Any], bool]:
        svc = self.service
        principal = ctx.principal
        # A published course, its tags and modules are the same for every caller: kept per
        # process until the catalogue generation changes (any change to a course bumps it).
        # Kept as JSON bytes and the modules' release times, not as model objects: thousands
        # of cached courses made of tracked objects made every full garbage collection of a
        # worker walk them (tens of ms at 2,000 courses: the p99 at ten times the data).
        key = (ctx.tenant.id, CATALOGUE_GENERATION, ctx.generation, "course", course_id) \
            if ctx.generation and not fresh else None
        cached = svc.runtime.answers.get(key) if key is not None else None
        if cached is None:
            course = svc._visible(course_id, principal)
            modules = svc._modules(course.id)
            doc = CourseDetail.of(course, svc.tags_of([course.id])[course.id],
                                  modules=[ModuleOut.of(m) for m in modules])
            releases = tuple(m.release_at.timestamp() if m.release_at else None
                             for m in modules)
            cached = (course.status, dump(doc), releases)
            if key is not None and course.status == "published":
                svc.runtime.answers.put(key, cached)
        status, doc_bytes, releases = cached
        out = orjson.loads(doc_bytes)  # a fresh document: the extras are merged into it
        now = time.time()
        for module, release in zip(out["modules"], releases, strict=True):
            module["released"] = release is None or release <= now
            if release is not None and release > now:
                valid_until(release)  # "released" turns true then
        for extra in svc.runtime.hook.course_detail_extras(
                runtime=svc.runtime, course_id=course_id, principal=principal):
            merge_extras([extra], out, protected=CourseDetail.model_fields.keys())
        return out, status == "published"

    @endpoint(permission="course.update", body=CoursePatch, response=CourseOut, etag=True,
              summary="Edit a course (owner or admin); a published course stays published")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               body: CoursePatch) -> CourseOut:
        """With `If-Match: <ETag of your GET /courses/{id}>`: 412 when the course changed
        since (nothing written). The answer's ETag is the page's new one."""
        course = self.service.update(req.context.principal, course_id,
                                     body.model_dump(exclude_unset=True),
                                     precondition=self._precondition(req, course_id))
        conditional.send_etag(resp, self._page(req.context, course_id))
        return self._course(course)

    @endpoint(permission="course.delete", status=204, also=(200,), response=CourseOut,
              etag=True,
              summary="Delete a course: 204; one with enrollments is archived instead: 200")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int
                  ) -> CourseOut | None:
        outcome, course = self.service.delete(req.context.principal, course_id,
                                              precondition=self._precondition(req, course_id))
        if outcome == "archived":
            resp.status = 200
            return self._course(course)
        return None


class TransitionResource(_Resource):
    """POST /courses/{id}/<action>: one lifecycle action."""

    def __init__(self, service: CoursesService, action: str):
        super().__init__(service)
        self.action = action

    def _act(self, req: falcon.Request, course_id: int, reason: str = "") -> CourseOut:
        return self._course(self.service.act(req.context.principal, course_id, self.action,
                                             reason))


class SubmitResource(TransitionResource):
    @endpoint(permission="course.submit", response=CourseOut, errors=(409,),
              summary="Submit a draft or rejected course for review (owner)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> CourseOut:
        return self._act(req, course_id)


class WithdrawResource(TransitionResource):
    @endpoint(permission="course.submit", response=CourseOut, errors=(409,),
              summary="Withdraw a course from review, back to draft (owner)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> CourseOut:
        return self._act(req, course_id)


class ApproveResource(TransitionResource):
    @endpoint(permission="course.review", response=CourseOut, errors=(409,),
              summary="Publish a course pending review (admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> CourseOut:
        return self._act(req, course_id)


class RejectResource(TransitionResource):
    @endpoint(permission="course.review", body=RejectIn, response=CourseOut, errors=(409,),
              summary="Send a course back to its instructor with a reason (admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: RejectIn) -> CourseOut:
        return self._act(req, course_id, body.reason)


class ArchiveResource(TransitionResource):
    @endpoint(permission="course.archive", response=CourseOut, errors=(409,),
              summary="Archive (deactivate) a course (owner or admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> CourseOut:
        return self._act(req, course_id)


class RestoreResource(TransitionResource):
    @endpoint(permission="course.restore", response=CourseOut, errors=(409,),
              summary="Restore an archived course (admin, or the owner who archived it)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> CourseOut:
        """Back to published when it was published before archiving, else to draft."""
        return self._act(req, course_id)


class HistoryResource(_Resource):
    @endpoint(permission="course.history", query=PageQuery, response=TransitionPage,
              summary="Every status transition of a course, oldest first (owner or admin)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               query: PageQuery) -> TransitionPage:
        course = self.service.owned(course_id, req.context.principal, "course.history",
                                    lock=False)
        q = CourseTransition.select().where(CourseTransition.course == course.id)
        return TransitionPage(**paginate(q, [CourseTransition.id], query, TransitionOut.of))


class ModuleCollection(_Resource):
    @endpoint(permission="course.read", response=ModuleList, anonymous=open_catalogue,
              etag=True, summary="The modules of a course, in order")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> ModuleList:
        course = self.service._visible(course_id, req.context.principal)
        return ModuleList(items=[ModuleOut.of(m) for m in self.service._modules(course.id)])

    @endpoint(permission="course.update", body=ModuleIn, response=ModuleOut, status=201,
              summary="Add a module (at `position`, default last; later modules move down)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: ModuleIn) -> ModuleOut:
        return ModuleOut.of(self.service.create_module(req.context.principal, course_id,
                                                    body.model_dump()))


class ModuleOrder(_Resource):
    @endpoint(permission="course.update", body=ModuleOrderIn, response=ModuleList,
              summary="Reorder all modules at once")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               body: ModuleOrderIn) -> ModuleList:
        modules = self.service.reorder_modules(req.context.principal, course_id,
                                               body.module_ids)
        return ModuleList(items=[ModuleOut.of(m) for m in modules])


class ModuleItem(_Resource):
    @endpoint(permission="course.read", response=ModuleOut, anonymous=open_catalogue,
              etag=True, summary="One module (its outline entry)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int) -> ModuleOut:
        return self._module(req, course_id, module_id)

    def _module(self, req: falcon.Request, course_id: int, module_id: int) -> ModuleOut:
        """What GET answers this caller: also what If-Match compares (one function)."""
        course = self.service._visible(course_id, req.context.principal)
        module = next((m for m in self.service._modules(course.id) if m.id == module_id), None)
        if module is None:
            raise NotFound("no such module in this course")
        return ModuleOut.of(module)

    def _precondition(self, req: falcon.Request, course_id: int, module_id: int) -> Any:
        return conditional.precondition(
            req, lambda: dump(self._module(req, course_id, module_id)))

    @endpoint(permission="course.update", body=ModulePatch, response=ModuleOut, etag=True,
              summary="Edit a module (absent fields stay; position moves it)")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, *, body: ModulePatch) -> ModuleOut:
        """With `If-Match: <ETag of your GET of the module>`: 412 when it changed since."""
        out = ModuleOut.of(self.service.update_module(
            req.context.principal, course_id, module_id, body.model_dump(exclude_unset=True),
            precondition=self._precondition(req, course_id, module_id)))
        conditional.send_etag(resp, dump(out))  # the same body GET now answers
        return out

    @endpoint(permission="course.update", status=204, etag=True, summary="Remove a module")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                  module_id: int) -> None:
        self.service.delete_module(req.context.principal, course_id, module_id,
                                   precondition=self._precondition(req, course_id, module_id))


# -- images ----------------------------------------------------------------------------------


class ImageResource(_Resource):
    def __init__(self, service: CoursesService, images: ImageService, which: str = "image"):
        super().__init__(service)
        self.images = images
        self.which = which

    def _serve(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> None:
        key, content_type, size, stream = self.images.open(req.context.principal, course_id,
                                                           self.which)
        close = getattr(stream, "close", None)
        if close:  # the shared sender opens the byte range it needs itself
            close()
        storage = self.images.runtime.storage
        send_object(req, resp, size=size, content_type=content_type,
                    etag=f'"{key.rsplit("/", 1)[-1]}"', last_modified=None,
                    opener=lambda start, end: storage.open(key, start, end))


class CourseImage(ImageResource):
    @endpoint(permission="course.read", response_content_type="image/*", also=(304,),
              anonymous=open_catalogue, summary="The course image (streamed from storage)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> None:
        self._serve(req, resp, course_id)

    @endpoint(permission="course.update", content_type=MULTIPART, max_body=UPLOAD_CEILING,
              multipart_fields={"file": "file: image/jpeg, image/png, image/webp, image/gif"},
              response=CourseOut, status=201,
              errors=(409, 413, 415, 422),
              summary="Upload (replace) the course image: multipart, the file in part `file`")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> CourseOut:
        """JPEG, PNG, WebP or GIF within the configured size (413) and dimension (422) limits;
        not an image or another format: 415. The thumbnail is made in the background;
        thumbnail_url is null until it is ready."""
        principal = req.context.principal
        self.images.check_can_upload(principal, course_id)
        # The whole body first: one cut before its closing boundary must not replace the image.
        limit = self.images.settings.image_max_bytes + 64 * 1024  # and the multipart framing
        with multipart_file(req, "file", "send the image in a multipart part named 'file'",
                            limit=limit) as fp:
            return self._course(self.images.upload(principal, course_id, fp))

    @endpoint(permission="course.update", status=204, summary="Remove the course image")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> None:
        self.images.remove(req.context.principal, course_id)


class CourseThumbnail(ImageResource):
    @endpoint(permission="course.read", response_content_type="image/*", also=(304,),
              anonymous=open_catalogue,
              summary="The course image's thumbnail (404 until it is made)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> None:
        self._serve(req, resp, course_id)


# -- ratings ---------------------------------------------------------------------------------


class RatingCollection(_Resource):
    def __init__(self, service: CoursesService, ratings: RatingService):
        super().__init__(service)
        self.ratings = ratings

    @endpoint(permission="course.read", query=PageQuery, response=RatingPage,
              summary="A course's ratings, newest first")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               query: PageQuery) -> RatingPage:
        q = self.ratings.page_query(req.context.principal, course_id)
        return RatingPage(**paginate(q, [Rating.id.desc()], query, RatingOut.of))

    @endpoint(permission="course.rate", body=RatingIn, response=RatingOut, status=201, also=(200,),
              errors=(409,),
              summary="Rate a course 1..5 (enrolled students; 201 first, 200 when replacing)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: RatingIn) -> RatingOut:
        rating, created = self.ratings.rate(req.context.principal, course_id, body.stars,
                                            body.comment)
        if not created:
            resp.status = 200
        return RatingOut.of(rating)


class RatingReplyResource(_Resource):
    def __init__(self, service: CoursesService, ratings: RatingService):
        super().__init__(service)
        self.ratings = ratings

    @endpoint(permission="course.reply", body=ReplyIn, response=RatingOut,
              summary="Reply to a rating (owner or admin); an empty body removes the reply")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               rating_id: int, *, body: ReplyIn) -> RatingOut:
        return RatingOut.of(self.ratings.reply(req.context.principal, course_id, rating_id,
                                               body.body))


# -- feedback --------------------------------------------------------------------------------


class FeedbackCollection(_Resource):
    def __init__(self, service: CoursesService, feedback: FeedbackService):
        super().__init__(service)
        self.feedback = feedback

    @endpoint(permission="course.feedback.read", query=PageQuery, response=ThreadPage,
              summary="Feedback threads: a student's own; the instructor and admins see all")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               query: PageQuery) -> ThreadPage:
        q = self.feedback.threads(req.context.principal, course_id)
        return ThreadPage(**paginate(
            q, [FeedbackThread.last_message_at.desc(), FeedbackThread.id.desc()], query,
            ThreadOut.of))

    @endpoint(permission="course.feedback.ask", body=ThreadIn, response=ThreadDetail,
              status=201, summary="Send feedback or a question to the course's instructor")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: ThreadIn) -> ThreadDetail:
        thread, message = self.feedback.open_thread(req.context.principal, course_id,
                                                    body.subject, body.body)
        return ThreadDetail.of(thread, messages=[MessageOut.of(message)])


class FeedbackItem(_Resource):
    def __init__(self, service: CoursesService, feedback: FeedbackService):
        super().__init__(service)
        self.feedback = feedback

    @endpoint(permission="course.feedback.read", response=ThreadDetail,
              summary="One feedback thread with its messages")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               thread_id: int) -> ThreadDetail:
        _course, thread = self.feedback.thread(req.context.principal, course_id, thread_id)
        return ThreadDetail.of(thread, messages=[MessageOut.of(m)
                                                 for m in self.feedback.messages(thread)])


class FeedbackMessages(_Resource):
    def __init__(self, service: CoursesService, feedback: FeedbackService):
        super().__init__(service)
        self.feedback = feedback

    @endpoint(permission="course.feedback.read", body=MessageIn, response=MessageOut,
              status=201, summary="Reply in a feedback thread (its student, instructor, admins)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                thread_id: int, *, body: MessageIn) -> MessageOut:
        return MessageOut.of(self.feedback.reply(req.context.principal, course_id, thread_id,
                                                 body.body))


# -- analytics -------------------------------------------------------------------------------


class AnalyticsResource(_Resource):
    def __init__(self, service: CoursesService, analytics: AnalyticsService):
        super().__init__(service)
        self.analytics = analytics

    @endpoint(permission="course.analytics", response=AnalyticsOut, cost=10,
              summary="Course analytics (owner or admin)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> AnalyticsOut:
        """Enrollments over time, completion rate, average progress and quiz score and
        drop-off by module come from other plugins (course_analytics hook); null or 0 when
        none answers. Ratings and feedback are the courses plugin's own."""
        return self.analytics.for_course(req.context.principal, course_id)
