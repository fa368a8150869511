"""Falcon resources of the media plugin: thin, they validate (through @endpoint), call the
service and shape the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import falcon
from falcon.media import MultipartFormHandler

from learnplat.plugin import (
    MULTIPART,
    PUBLIC,
    NotFound,
    PageQuery,
    PayloadTooLarge,
    PermissionDenied,
    TenantInfo,
    ValidationFailed,
    body_stream,
    db,
    endpoint,
    send_object,
    tenant_context,
)

from .assignments import AssignmentService, assignment_out, submission_out
from .avatars import AvatarService
from .direct import DirectUploads
from .models import MediaObject
from .schemas import (
    AssignmentGradeIn,
    AssignmentIn,
    AssignmentOut,
    AssignmentSubmissionOut,
    AssignmentSubmissionPage,
    DirectConfirmIn,
    DirectStartIn,
    DirectStartOut,
    MediaList,
    MediaOut,
    PhotoOut,
    SignedUrlOut,
    StreamQuery,
    VideoUploadQuery,
)
from .services import MediaService, media_info
from .settings import UPLOAD_CEILING

PHOTO_CEILING = 100 * 1024**2

# Room for the multipart framing around the file when comparing Content-Length to a limit.
_FRAMING = 64 * 1024


class _Resource:
    def __init__(self, service: MediaService):
        self.service = service

    def base_url(self, req: falcon.Request) -> str:
        return (self.service.runtime.settings.app.public_url or req.prefix).rstrip("/")

    def _parts(self, req: falcon.Request, kind: str) -> tuple[Iterator[Any], Callable[[], None]]:
        """The multipart parts of the body, and a function that reads to its end."""
        limit = self.service.limit(kind)
        if req.content_length is not None and req.content_length > limit + _FRAMING:
            raise PayloadTooLarge(f"the {kind} is over {limit} bytes", limit=limit)
        # Parse from the core's bounded body stream rather than req.get_media(): it also reads
        # chunked uploads (no Content-Length), and stops any body at the limit.
        handler = req.options.media_handlers[falcon.MEDIA_MULTIPART]
        assert isinstance(handler, MultipartFormHandler)  # falcon's (and ours): a form of parts
        most = limit + _FRAMING
        length = req.content_length if req.content_length is not None else most + 1
        parts = iter(handler.deserialize(body_stream(req, most), req.content_type, length))

        def rest() -> None:
            for _ in parts:  # to the closing boundary: a truncated body raises 400 here
                pass

        return parts, rest

    def _upload(self, req: falcon.Request, kind: str, course_id: int, module_id: int,
                duration: int | None = None) -> MediaOut:
        principal = req.context.principal
        self.service.check_can_upload(principal, course_id, module_id)
        parts, rest = self._parts(req, kind)
        for part in parts:
            if part.name == "file":
                return MediaOut.of(self.service.upload(principal, kind, course_id, module_id,
                                                       part.stream, part.filename, duration,
                                                       rest))
        raise ValidationFailed.field("file", "send the file in a multipart part named 'file'",
                                     "missing")


class ModuleVideo(_Resource):
    @endpoint(permission="media.upload", content_type=MULTIPART, max_body=UPLOAD_CEILING,
              multipart_fields={"file": "file"}, query=VideoUploadQuery, response=MediaOut,
              status=201, errors=(404, 413, 415, 422), transaction=False,
              summary="Upload (replace) a module's video: multipart, the file in part `file`")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, *, query: VideoUploadQuery) -> Any:
        """MP4, WebM, Ogg or QuickTime, recognised by its bytes (else 415), within the
        school's size limit (413). The module becomes a video module; its duration is read
        from MP4/QuickTime files, else taken from `duration_seconds`. A previous video is
        deleted once the new one is stored."""
        return self._upload(req, "video", course_id, module_id, query.duration_seconds)

    @endpoint(permission="media.watch", response=SignedUrlOut, errors=(403, 404),
              summary="A signed, time-limited URL to play the module's video")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int) -> Any:
        """For enrolled students, the course's owner and admins. The URL needs no header
        (a `<video>` element can play it) and supports range requests."""
        url, expires = self.service.url_for(req.context.principal, course_id, module_id,
                                            "video", self.base_url(req))
        return SignedUrlOut(url=url, expires_at=expires)


class DirectVideo(_Resource):
    def __init__(self, service: MediaService, direct: DirectUploads):
        super().__init__(service)
        self.direct = direct

    @endpoint(permission="media.upload", body=DirectStartIn, response=DirectStartOut,
              status=201, errors=(404, 409, 413, 422),
              summary="Start a direct upload of a large video to S3 (presigned PUT)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, *, body: DirectStartIn) -> Any:
        """Only when the school's storage is S3-compatible (else 409 direct_unsupported: use
        the multipart upload). PUT the bytes to upload_url, then confirm with upload_token."""
        return self.direct.start(req.context.principal, course_id, module_id, body.size,
                                 body.filename)


class DirectVideoConfirm(DirectVideo):
    @endpoint(permission="media.upload", body=DirectConfirmIn, response=MediaOut, status=201,
              errors=(403, 404, 409, 413, 415, 422), transaction=False,
              summary="Confirm a direct upload: checked like an upload, then the module's video")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, *, body: DirectConfirmIn) -> Any:
        """The stored object is checked (size limit, type by content, sha256) and becomes the
        module's video, replacing the previous one; a refused object is deleted. 409
        not_uploaded when nothing was PUT yet."""
        return MediaOut.of(self.direct.confirm(req.context.principal, course_id, module_id,
                                               body.upload_token, body.duration_seconds))


class ModuleAttachments(_Resource):
    @endpoint(permission="media.upload", content_type=MULTIPART, max_body=UPLOAD_CEILING,
              multipart_fields={"file": "file"}, response=MediaOut, status=201,
              errors=(404, 413, 415, 422), transaction=False,
              summary="Attach a file (PDF, slides, images, archives) to a module")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int) -> Any:
        return self._upload(req, "attachment", course_id, module_id)

    @endpoint(permission="media.watch", response=MediaList, errors=(403, 404),
              summary="A module's attached files")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int) -> Any:
        self.service.check_can_watch(req.context.principal, course_id, module_id)
        items = self.service.attachments(course_id, module_id)
        return MediaList(items=[MediaOut.of(i) for i in items])


class AttachmentItem(_Resource):
    @endpoint(permission="media.watch", response=SignedUrlOut, errors=(403, 404),
              summary="A signed, time-limited URL to download an attached file")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, media_id: int) -> Any:
        url, expires = self.service.url_for(req.context.principal, course_id, module_id,
                                            "attachment", self.base_url(req), media_id)
        return SignedUrlOut(url=url, expires_at=expires)

    @endpoint(permission="media.upload", status=204, errors=(404,),
              summary="Remove an attached file")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                  module_id: int, media_id: int) -> None:
        self.service.remove_attachment(req.context.principal, course_id, module_id, media_id)


# -- assignments -----------------------------------------------------------------------------


class _AssignmentResource(_Resource):
    def __init__(self, service: MediaService, assignments: AssignmentService):
        super().__init__(service)
        self.assignments = assignments


class AssignmentResource(_AssignmentResource):
    @endpoint(permission="media.upload", body=AssignmentIn, response=AssignmentOut,
              errors=(404, 409), summary="Give a module an assignment (or change it)")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, *, body: AssignmentIn) -> Any:
        """The owner instructor or an admin; the module becomes an "assignment" module."""
        a = self.assignments.define(req.context.principal, course_id, module_id,
                                    body.instructions, body.due_at, body.max_points)
        return assignment_out(a)

    @endpoint(permission="media.watch", response=AssignmentOut, errors=(403, 404),
              summary="A module's assignment")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int) -> Any:
        a = self.assignments.view(req.context.principal, course_id, module_id)
        return assignment_out(a)


class OwnSubmission(_AssignmentResource):
    @endpoint(permission="assignment.submit", content_type=MULTIPART, max_body=UPLOAD_CEILING,
              multipart_fields={"file": "file"}, response=AssignmentSubmissionOut, status=201,
              also=(200,), errors=(403, 404, 409, 413, 415, 422), transaction=False,
              summary="Hand in (or replace) one's submission: multipart, part `file`")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int) -> Any:
        """Enrolled students, until the due date (409 past_due) and until it is graded
        (409 graded). 201 for the first hand-in, 200 when it replaces the previous file."""
        principal = req.context.principal
        self.assignments.check_can_submit(principal, course_id, module_id)
        parts, rest = self._parts(req, "submission")
        for part in parts:
            if part.name == "file":
                s, media, first = self.assignments.submit(
                    principal, course_id, module_id, part.stream, part.filename, rest)
                resp.status = 201 if first else 200
                return submission_out(s, media)
        raise ValidationFailed.field("file", "send the file in a multipart part named 'file'",
                                     "missing")

    @endpoint(permission="assignment.submit", response=AssignmentSubmissionOut, errors=(403, 404),
              summary="One's own submission: status, points and feedback")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int) -> Any:
        s = self.assignments.own(req.context.principal, course_id, module_id)
        return submission_out(s, _media(s.media_id))


class OwnSubmissionFile(_AssignmentResource):
    @endpoint(permission="assignment.submit", response=SignedUrlOut, errors=(403, 404),
              summary="A signed URL to download one's own submitted file")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int) -> Any:
        url, expires = self.assignments.file_url(req.context.principal, course_id, module_id,
                                                 None, self.base_url(req))
        return SignedUrlOut(url=url, expires_at=expires)


class SubmissionCollection(_AssignmentResource):
    @endpoint(permission="assignment.grade", query=PageQuery, response=AssignmentSubmissionPage,
              errors=(404,), summary="An assignment's submissions (owner instructor, admins)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, *, query: PageQuery) -> Any:
        return self.assignments.submissions(req.context.principal, course_id, module_id, query)


class SubmissionFile(_AssignmentResource):
    @endpoint(permission="assignment.grade", response=SignedUrlOut, errors=(404,),
              summary="A signed URL to download a submitted file")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, submission_id: int) -> Any:
        url, expires = self.assignments.file_url(req.context.principal, course_id, module_id,
                                                 submission_id, self.base_url(req))
        return SignedUrlOut(url=url, expires_at=expires)


class SubmissionGrade(_AssignmentResource):
    @endpoint(permission="assignment.grade", body=AssignmentGradeIn,
              response=AssignmentSubmissionOut, errors=(404, 409),
              summary="Grade a submission, with feedback")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, submission_id: int, *, body: AssignmentGradeIn) -> Any:
        """Points up to the assignment's max_points (409 beyond); grading again replaces
        the grade. Records assignment.graded.v1."""
        s, media = self.assignments.grade(req.context.principal, course_id, module_id,
                                          submission_id, body.points, body.feedback)
        return submission_out(s, media)


def _media(media_id: int) -> MediaObject | None:
    return MediaObject.get_or_none(MediaObject.id == media_id)


# -- profile photos --------------------------------------------------------------------------


class UserPhoto(_Resource):
    def __init__(self, service: MediaService, avatars: AvatarService):
        super().__init__(service)
        self.avatars = avatars

    @endpoint(permission="profile.photo", content_type=MULTIPART, max_body=PHOTO_CEILING,
              multipart_fields={"file": "file: image/jpeg, image/png, image/webp, image/gif"},
              response=PhotoOut, status=201,
              errors=(404, 413, 415, 422), transaction=False,
              summary="Upload one's profile photo (admins: anyone's): multipart, part `file`")
    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> Any:
        """JPEG, PNG, WebP or GIF; re-encoded as a JPEG of at most photo_size pixels a
        side, with EXIF and other metadata removed. The profile's avatar_url points at it."""
        principal = req.context.principal
        with db.transaction(write=False):
            self.avatars.check(principal, user_id)
        parts, rest = self._parts(req, "photo")
        for part in parts:
            if part.name == "file":
                row, url = self.avatars.upload(principal, user_id, part.stream,
                                               self.base_url(req), rest)
                return PhotoOut(avatar_url=url, size=row.size, content_type=row.content_type)
        raise ValidationFailed.field("file", "send the photo in a multipart part named 'file'",
                                     "missing")

    @endpoint(permission=PUBLIC, response_content_type="image/jpeg", also=(304,),
              errors=(404,), summary="A user's profile photo (an <img> can show it)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        row = self.avatars.current(user_id)
        if row is None:
            raise NotFound("no profile photo")
        storage = self.service.runtime.storage
        send_object(req, resp, size=row.size, content_type=row.content_type,
                    etag=f'"{row.sha256[:32]}"', last_modified=row.created_at,
                    opener=lambda start, end: storage.open(row.key, start, end),
                    cache_control="public, max-age=3600")

    @endpoint(permission="profile.photo", status=204, errors=(404,),
              summary="Remove a profile photo")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        self.avatars.remove(req.context.principal, user_id)


# -- streaming -------------------------------------------------------------------------------


class MediaStream(_Resource):
    """The bytes behind a signed URL (local storage): no token, no tenant header."""

    def _serve(self, req: falcon.Request, resp: falcon.Response, tenant_id: int,
               media_id: int, query: StreamQuery) -> None:
        try:
            expires, user_id = int(query.exp), int(query.u)
        except ValueError:
            raise PermissionDenied("this media URL is not valid", code="bad_signature") from None
        ctx_tenant = req.context.tenant
        tenant, row = self.service.open_signed(tenant_id, media_id, expires, user_id, query.sig)
        if ctx_tenant is not None and ctx_tenant.id != tenant.id:
            raise PermissionDenied("this media URL is not valid", code="bad_signature")
        info = media_info(row)
        storage = self.service.runtime.storage
        resp.set_header("X-Content-Type-Options", "nosniff")
        if info.kind != "video" and info.filename:
            resp.set_header("Content-Disposition",
                            f"attachment; filename*=UTF-8''{quote(info.filename)}")
        with tenant_context(tenant):  # storage keys are tenant-prefixed when opened
            send_object(req, resp, size=info.size, content_type=info.content_type,
                        etag=f'"{info.sha256[:32]}"', last_modified=info.created_at,
                        opener=lambda start, end: storage.open(row.key, start, end),
                        cache_control="private, max-age=600")

    def _signed_caller(self, req: falcon.Request, params: dict[str, Any]
                       ) -> tuple[TenantInfo, int] | None:
        # Rate limits charge the user the URL was signed for, not the (NAT) address.
        return self.service.signed_caller(
            params["tenant_id"], params["media_id"], req.get_param("exp") or "",
            req.get_param("u") or "", req.get_param("sig") or "")

    @endpoint(permission=PUBLIC, query=StreamQuery, response_content_type="*/*",
              also=(206, 304), errors=(403, 404, 416), transaction=False,
              signed_caller=_signed_caller,
              summary="Stream a stored object through a signed URL (range requests)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, tenant_id: int,
               media_id: int, *, query: StreamQuery) -> None:
        self._serve(req, resp, tenant_id, media_id, query)

    @endpoint(permission=PUBLIC, query=StreamQuery, response_content_type="*/*",
              also=(206, 304), errors=(403, 404, 416), transaction=False,
              signed_caller=_signed_caller,
              summary="Headers of a stored object behind a signed URL")
    def on_head(self, req: falcon.Request, resp: falcon.Response, tenant_id: int,
                media_id: int, *, query: StreamQuery) -> None:
        self._serve(req, resp, tenant_id, media_id, query)
