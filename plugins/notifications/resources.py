"""Falcon resources of the notification centre (REST). The WebSocket is in ws.py."""

from __future__ import annotations

import falcon

from learnplat.plugin import AUTHENTICATED, PageQuery, endpoint

from .schemas import (
    BroadcastOut,
    ListQuery,
    NotificationOut,
    NotificationPage,
    NotifyIn,
    PreferencesIn,
    PreferencesOut,
    ReadAllOut,
    UnreadOut,
)
from .services import NotificationsService

TAGS = ("notifications",)


class NotificationsResource:
    def __init__(self, service: NotificationsService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, query=ListQuery, response=NotificationPage, tags=TAGS,
              etag=True, summary="The caller's notifications, newest first")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *, query: ListQuery
               ) -> NotificationPage:
        """Cursor-paged, newest first; `unread=true` for unread ones only."""
        page = PageQuery(limit=query.limit, cursor=query.cursor)
        return self.service.page(req.context.principal, page, query.unread)

    @endpoint(permission="notifications.broadcast", body=NotifyIn, response=NotificationOut,
              status=201, also=(202,), response_for={202: BroadcastOut}, errors=(403,),
              tags=TAGS, cost=10,
              summary="Notify a user, a course's students, a role or the whole school (admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: NotifyIn
                ) -> NotificationOut | BroadcastOut:
        """`{title, body, user_id}` notifies one user at once: 201 with the notification.
        `course_id`, `role` or `everyone: true` queue a broadcast fanned out in the
        background: 202 with the broadcast (GET /notifications/broadcasts/{id} follows it).
        A user who turned announcements off gets nothing (202, recipients 0). 422 for an
        empty or oversize title/body, or an unknown user or course."""
        what, doc = self.service.broadcast(
            req.context.principal, body.title, body.body, "announcement", body.data,
            user_id=body.user_id, course_id=body.course_id, role=body.role,
            everyone=body.everyone)
        if what == "broadcast":
            resp.status = 202
        return doc


class NotificationResource:
    def __init__(self, service: NotificationsService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, response=NotificationOut, errors=(404,), tags=TAGS,
              etag=True, summary="One of the caller's notifications")
    def on_get(self, req: falcon.Request, resp: falcon.Response, notification_id: int
               ) -> NotificationOut:
        """404 for a notification of anyone else."""
        return self.service.get(req.context.principal, notification_id)

    @endpoint(permission=AUTHENTICATED, status=204, errors=(404,), tags=TAGS,
              summary="Delete one of the caller's notifications")
    def on_delete(self, req: falcon.Request, resp: falcon.Response,
                  notification_id: int) -> None:
        """Its pending email, if any, is not sent."""
        self.service.delete(req.context.principal, notification_id)


class ReadResource:
    def __init__(self, service: NotificationsService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, response=NotificationOut, errors=(404,), tags=TAGS,
              summary="Mark a notification read")
    def on_post(self, req: falcon.Request, resp: falcon.Response, notification_id: int
                ) -> NotificationOut:
        """Idempotent: the first read time stays."""
        return self.service.mark_read(req.context.principal, notification_id, True)

    @endpoint(permission=AUTHENTICATED, response=NotificationOut, errors=(404,), tags=TAGS,
              summary="Mark a notification unread again")
    def on_delete(self, req: falcon.Request, resp: falcon.Response,
                  notification_id: int) -> NotificationOut:
        return self.service.mark_read(req.context.principal, notification_id, False)


class ReadAllResource:
    def __init__(self, service: NotificationsService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, response=ReadAllOut, tags=TAGS,
              summary="Mark all the caller's notifications read")
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> ReadAllOut:
        return ReadAllOut(updated=self.service.mark_all_read(req.context.principal))


class UnreadCountResource:
    def __init__(self, service: NotificationsService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, response=UnreadOut, tags=TAGS, etag=True,
              summary="How many unread notifications the caller has")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> UnreadOut:
        return UnreadOut(unread=self.service.unread_count(req.context.principal.user_id))


class BroadcastResource:
    def __init__(self, service: NotificationsService):
        self.service = service

    @endpoint(permission="notifications.broadcast", response=BroadcastOut, errors=(403, 404),
              tags=TAGS, summary="A broadcast's progress (admin)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, broadcast_id: int
               ) -> BroadcastOut:
        """status queued → sending → done, and how many users it reached."""
        return self.service.get_broadcast(req.context.principal, broadcast_id)


class PreferencesResource:
    def __init__(self, service: NotificationsService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, response=PreferencesOut, tags=TAGS,
              summary="The caller's channel per notification kind")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> PreferencesOut:
        return self.service.preferences(req.context.principal)

    @endpoint(permission=AUTHENTICATED, body=PreferencesIn, response=PreferencesOut, tags=TAGS,
              summary="Choose channels per kind: in_app, email, digest or off")
    def on_put(self, req: falcon.Request, resp: falcon.Response, *,
               body: PreferencesIn) -> PreferencesOut:
        """Only the kinds given change; 422 for an unknown kind or channel."""
        return self.service.set_preferences(req.context.principal, dict(body.channels))
