"""Notifications made from other plugins' events: the learner's (enrolled, new module or quiz,
50 % and completion, graded, certificate) and the instructor's (approved, rejected, rated,
asked); idempotent on the event id; texts from the tenant's templates."""

from __future__ import annotations

import datetime as dt

from notifyhelpers import kinds

from learnplat.testing import declare_event


def _newest(client):
    return client.get("/notifications").json["items"][0]


def test_learner_is_notified_of_enrollment_modules_milestone_and_completion(
        published_course, person):
    course = published_course(students=1, modules=2)
    student, teacher = course.students[0], course.instructor
    note = _newest(student.client)
    assert note["kind"] == "enrolled"
    assert note["title"] == "You are enrolled in Biology"
    assert note["data"] == {"course_id": course.id, "event": "enrollment.created.v1"}

    # A module added to the published course: each enrolled student (not others).
    outsider = person("student")
    r = teacher.client.post(f"/courses/{course.id}/modules", json={"title": "Cells"})
    assert r.status_code == 201
    note = _newest(student.client)
    assert (note["kind"], note["title"]) == ("module_published", "New in Biology: Cells")
    assert note["data"]["module_id"] == r.json["id"]
    assert kinds(outsider.client) == []

    # 3 modules now: 2 done is past 50 % (one milestone), 3 is completion.
    modules = [m["id"] for m in student.client.get(f"/courses/{course.id}").json["modules"]]
    for mid in modules:
        r = student.client.post(f"/progress/{course.id}", json={"module_id": mid,
                                                              "completed": True})
        assert r.status_code == 200, r.text
    got = kinds(student.client)
    # With the certificates plugin, completion also issues a certificate (and its notice).
    assert got.count("certificate_issued") <= 1
    got = [k for k in got if k != "certificate_issued"]
    assert got == ["course_completed", "milestone", "module_published", "enrolled"]
    milestone = next(n for n in student.client.get("/notifications").json["items"]
                     if n["kind"] == "milestone")
    assert milestone["title"] == "Halfway through Biology"
    assert "50%" in milestone["body"]


def test_module_of_a_draft_course_notifies_nobody(person):
    teacher = person("instructor")
    cid = teacher.client.post("/courses", json={"title": "Draft"}).json["id"]
    assert teacher.client.post(f"/courses/{cid}/modules", json={"title": "x"}
                               ).status_code == 201
    assert kinds(teacher.client) == []


def test_instructor_is_notified_of_review_ratings_and_questions(person, admin):
    teacher = person("instructor")
    cid = teacher.client.post("/courses", json={"title": "Chemistry"}).json["id"]
    teacher.client.post(f"/courses/{cid}/modules", json={"title": "Atoms"})
    assert teacher.client.post(f"/courses/{cid}/submit").status_code == 200
    r = admin.client.post(f"/courses/{cid}/reject", json={"reason": "Too short"})
    assert r.status_code == 200, r.text
    note = _newest(teacher.client)
    assert (note["kind"], note["title"]) == ("course_rejected", "Chemistry was not approved")
    assert note["body"] == "Reason: Too short"
    assert teacher.client.post(f"/courses/{cid}/submit").status_code == 200
    assert admin.client.post(f"/courses/{cid}/approve").status_code == 200
    assert _newest(teacher.client)["kind"] == "course_approved"

    student = person("student")
    assert student.client.post(f"/courses/{cid}/enroll").status_code == 201
    assert student.client.post(f"/courses/{cid}/ratings", json={"stars": 4}).status_code in (
        200, 201)
    note = _newest(teacher.client)
    assert (note["kind"], note["body"]) == ("course_rated", "A learner gave it 4 stars.")
    r = student.client.post(f"/courses/{cid}/feedback", json={"subject": "Homework?",
                                                              "body": "When is it due?"})
    assert r.status_code == 201, r.text
    note = _newest(teacher.client)
    assert (note["kind"], note["title"], note["body"]) == (
        "course_question", "New question on Chemistry", "Homework?")
    # The student got their own (enrolled), none of the instructor's.
    assert kinds(student.client) == ["enrolled"]


def test_gradings_and_certificates_of_other_plugins(published_course, lp_runtime,
                                                    in_tenant_ctx):
    """quiz.graded.v1 (quizzes), assignment.graded.v1 (media), certificate.issued.v1
    (certificates): handled by name, so notifications also runs without those plugins."""
    course = published_course(students=1)
    student = course.students[0]
    ids = {"course_id": course.id, "module_id": 1}
    quiz = {**ids, "quiz_id": 1, "attempt_id": 1, "user_id": student.id, "passed": True}
    cases = [
        # Graded at submission: the learner sees the result on the spot, no notification.
        ("quiz.graded.v1", {**quiz, "percent": 70.0}, None),
        ("quiz.graded.v1", {**quiz, "attempt_id": 2, "percent": 85.0, "reviewed": True},
         ("quiz_graded", "Score: 85%")),
        ("assignment.graded.v1", {**ids, "assignment_id": 1, "submission_id": 1,
                                  "student_id": student.id, "points": 8, "max_points": 10,
                                  "grader_id": course.instructor.id},
         ("assignment_graded", "Score: 8/10")),
        ("certificate.issued.v1", {"course_id": course.id, "user_id": student.id,
                                   "certificate_id": "c-1",
                                   "issued_at": dt.datetime.now(dt.UTC)},
         ("certificate_issued", "You can download it from the course page.")),
    ]
    for name, payload, expected in cases:
        before = kinds(student.client)
        event = declare_event(lp_runtime, name)
        with in_tenant_ctx():
            lp_runtime.events.record(event(**payload))
        if expected is None:
            assert kinds(student.client) == before, name
            continue
        # (Other plugins react too: progress completes the graded module, which may bring a
        # milestone; so look for the kind, not just the newest.)
        note = next(n for n in student.client.get("/notifications").json["items"]
                    if n["kind"] == expected[0])
        assert note["body"] == expected[1], name
        assert "Biology" in note["title"]
        assert kinds(student.client).count(expected[0]) == before.count(expected[0]) + 1


def test_a_redelivered_event_notifies_once(published_course, lp_runtime, lp_tenant,
                                           in_tenant_ctx):
    from learnplat_enrollment.events import EnrollmentCreated
    from learnplat_notifications.plugin import NotificationsPlugin

    course = published_course(students=2)
    student = course.students[0]
    assert kinds(student.client) == ["enrolled"]
    # The dispatcher may deliver an event twice (at least once): same event id, same result.
    handler = next(h for h in lp_runtime.registry.handlers
                   if h.plugin == "notifications" and h.name == "enrolled")
    from learnplat.events import EventMessage

    row_id = 10**9
    payload = {"enrollment_id": 1, "course_id": course.id, "user_id": student.id}
    message = EventMessage(id=row_id, name=EnrollmentCreated.name, tenant_id=lp_tenant.id,
                           payload=payload, created_at=None, attempt=1,
                           data=EnrollmentCreated(**payload))
    for _ in range(2):
        with in_tenant_ctx():
            handler.fn(lp_runtime, message)
    assert kinds(student.client) == ["enrolled", "enrolled"]  # the real one and this one
    # A module event fanned out to many: redelivery skips everyone already notified.
    mod = next(h for h in lp_runtime.registry.handlers
               if h.plugin == "notifications" and h.name == "module_published")
    from learnplat_courses.events import ModuleAdded

    data = ModuleAdded(course_id=course.id, owner_id=course.instructor.id, status="published",
                       title="Biology", module_id=1, module_title="Extra", position=9,
                       kind="quiz")
    msg = EventMessage(id=row_id + 1, name=ModuleAdded.name, tenant_id=lp_tenant.id,
                       payload=data.model_dump(), created_at=None, attempt=1, data=data)
    for _ in range(3):
        with in_tenant_ctx():
            mod.fn(lp_runtime, msg)
    for s in course.students:
        assert kinds(s.client).count("quiz_published") == 1
    assert lp_runtime.plugin(NotificationsPlugin).notifications is not None


def test_tenant_templates_override_the_texts(lp_runtime, lp_users, lp_client, person, admin):
    from learnplat.tenants import TenantSpec
    from learnplat.testing import make_tenant

    school = make_tenant(lp_runtime)
    spec = TenantSpec(slug=school.slug, name=school.name, settings={"notifications": {
        "templates": {"enrolled": {"title": "Bienvenue dans $course_title",
                                   "body": "$nothing{course_title.__class__}"}}}})
    from learnplat import db

    with db.connection():
        lp_runtime.tenants.apply(spec)
    school = lp_runtime.tenants.get_by_slug(school.slug)
    teacher, boss = person("instructor", tenant=school), person("admin", tenant=school)
    cid = teacher.client.post("/courses", json={"title": "Histoire"}).json["id"]
    teacher.client.post(f"/courses/{cid}/modules", json={"title": "x"})
    teacher.client.post(f"/courses/{cid}/submit")
    assert boss.client.post(f"/courses/{cid}/approve").status_code == 200
    student = person("student", tenant=school)
    assert student.client.post(f"/courses/{cid}/enroll").status_code == 201
    note = _newest(student.client)
    assert note["title"] == "Bienvenue dans Histoire"
    # $-templates reach no attribute: unknown names render empty, braces stay text.
    assert note["body"] == "{course_title.__class__}"


def test_a_drip_module_is_announced_when_released(published_course, lp_runtime, lp_tenant,
                                                  event_recorder):
    from learnplat_notifications.tasks import RELEASE_TASK

    course = published_course(students=1)
    student, teacher = course.students[0], course.instructor
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    r = teacher.client.post(f"/courses/{course.id}/modules", json={"title": "Week 2",
                                                                   "release_at": later})
    assert r.status_code == 201, r.text
    module_id = r.json["id"]
    assert kinds(student.client) == ["enrolled"]  # not yet: it is not released
    event_id = next(e.id for e in event_recorder.events
                    if e.name == "course.module_added.v1" and e.payload["module_id"] == module_id)
    task = lp_runtime.queue.wrappers[RELEASE_TASK]
    task.call_local(lp_tenant.id, course.id, module_id, event_id)  # early: still not released
    assert kinds(student.client) == ["enrolled"]
    earlier = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    r = teacher.client.put(f"/courses/{course.id}/modules/{module_id}",
                             json={"release_at": earlier})
    assert r.status_code == 200, r.text
    for _ in range(2):  # the delayed task, and a duplicate of it: one notification
        task.call_local(lp_tenant.id, course.id, module_id, event_id)
    assert kinds(student.client) == ["module_published", "enrolled"]
    assert _newest(student.client)["title"] == "New in Biology: Week 2"


def test_a_module_becoming_a_quiz_is_announced_once(published_course, lp_runtime,
                                                    in_tenant_ctx):
    """What the quizzes plugin does when a quiz is attached to a module of a published
    course (COURSES.set_module_kind records course.module_updated.v1 with fields ["kind"])."""
    from learnplat_courses.api import COURSES

    course = published_course(students=2, modules=2)
    module_id = course.students[0].client.get(f"/courses/{course.id}").json["modules"][1]["id"]
    for _ in range(2):  # the quiz is replaced: still one notification
        with in_tenant_ctx():
            lp_runtime.service(COURSES).set_module_kind(course.id, module_id, "quiz")
    for s in course.students:
        assert kinds(s.client) == ["quiz_published", "enrolled"]
        note = _newest(s.client)
        assert note["title"] == "New quiz in Biology: M1"
        assert note["data"] == {"course_id": course.id, "module_id": module_id}
    # Other kinds of change announce nothing.
    with in_tenant_ctx():
        lp_runtime.service(COURSES).set_module_kind(course.id, module_id, "video")
    assert kinds(course.students[0].client) == ["quiz_published", "enrolled"]
