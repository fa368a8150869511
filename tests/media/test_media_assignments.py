"""Assignments: hand-ins streamed and type-checked like every upload, resubmission until the
due date, grading with feedback, the two events, and who sees what."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlparse

from mediahelpers import MULTIPART, PDF, mp4_bytes, multipart

from learnplat.testing import Client


def _hand_in(client, stage, data: bytes, filename: str = "essay.pdf", module: int = 0):
    return client.post(stage.path(module, "assignment/submission"),
                       body=multipart(data, filename=filename, content_type="application/pdf"),
                       headers={"Content-Type": MULTIPART})


def _fetch(app, url: str):
    parsed = urlparse(url)
    return Client(app).get(f"{parsed.path}?{parsed.query}")


def test_hand_in_resubmit_grade(stage, lp_runtime, lp_app, event_recorder, outsider):
    path = stage.path(0, "assignment")
    assert stage.s.get(path).status_code == 404  # no assignment yet
    assert _hand_in(stage.s, stage, PDF).status_code == 404
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()
    r = stage.t.put(path, json={"instructions": "Write 500 words", "due_at": due,
                                "max_points": 20})
    assert r.status_code == 200, r.text
    assert stage.s.get(f"/courses/{stage.course_id}/modules/{stage.module_ids[0]}"
                       ).json["kind"] == "assignment"
    assert stage.s.get(path).json["instructions"] == "Write 500 words"
    assert stage.s.put(path, json={"instructions": "x"}).status_code == 403
    assert outsider.get(path).status_code == 404

    r = _hand_in(stage.s, stage, PDF)
    assert r.status_code == 201, r.text
    first = r.json
    assert first["status"] == "submitted" and first["attempt"] == 1
    assert first["content_type"] == "application/pdf" and first["size"] == len(PDF)
    # Not a student of the course, a video, an empty file: refused.
    assert _hand_in(stage.stranger, stage, PDF).status_code == 403
    assert _hand_in(stage.t, stage, PDF).status_code == 403
    assert _hand_in(stage.s, stage, mp4_bytes(), filename="x.pdf").status_code == 415
    assert _hand_in(stage.s, stage, b"").status_code == 422
    second_pdf = PDF + b"% revised\n"
    r = _hand_in(stage.s, stage, second_pdf, filename="essay-v2.pdf")
    assert r.status_code == 200 and r.json["attempt"] == 2 and r.json["id"] == first["id"]
    own = stage.s.get(path + "/submission").json
    assert own["filename"] == "essay-v2.pdf" and own["status"] == "submitted"
    got = _fetch(lp_app, stage.s.get(path + "/submission/file").json["url"])
    assert got.status_code == 200 and got.content == second_pdf

    # The owner lists, downloads and grades.
    listed = stage.t.get(path + "/submissions").json
    assert [s["id"] for s in listed["items"]] == [first["id"]]
    assert listed["next_cursor"] is None
    assert stage.s.get(path + "/submissions").status_code == 403
    assert outsider.get(path + "/submissions").status_code == 404
    url = stage.t.get(f"{path}/submissions/{first['id']}/file").json["url"]
    assert _fetch(lp_app, url).content == second_pdf
    grade = f"{path}/submissions/{first['id']}/grade"
    assert stage.t.post(grade, json={"points": 21}).status_code == 409
    assert stage.s.post(grade, json={"points": 5}).status_code == 403
    assert outsider.post(grade, json={"points": 5}).status_code == 404
    r = stage.t.post(grade, json={"points": 18, "feedback": "Good argument"})
    assert r.status_code == 200, r.text
    assert r.json["status"] == "graded" and r.json["points"] == 18
    own = stage.s.get(path + "/submission").json
    assert own["points"] == 18 and own["feedback"] == "Good argument"
    # Graded: no more resubmissions.
    r = _hand_in(stage.s, stage, PDF)
    assert r.status_code == 409 and r.json["code"] == "graded"

    lp_runtime.events.dispatch_pending()
    submitted = [e for e in event_recorder.events if e.name == "assignment.submitted.v1"]
    graded = [e for e in event_recorder.events if e.name == "assignment.graded.v1"]
    assert [e.payload["attempt"] for e in submitted] == [1, 2]
    assert graded[0].payload["points"] == 18 and graded[0].payload["max_points"] == 20
    assert graded[0].payload["student_id"] == stage.student.id
    # The progress plugin counts a graded assignment as the module's completion.
    progress = stage.s.get(f"/progress/{stage.course_id}").json
    done = {m["module_id"]: m for m in progress["modules"]}[stage.module_ids[0]]
    assert done["completed"] is True and done["completed_source"] == "assignment"


def test_no_hand_in_after_the_due_date(stage, lp_runtime, lp_tenant):
    path = stage.path(1, "assignment")
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    assert stage.t.put(path, json={"due_at": past}).status_code == 200
    r = _hand_in(stage.s, stage, PDF, module=1)
    assert r.status_code == 409 and r.json["code"] == "past_due"
    assert stage.t.put(path, json={"due_at": "1999-01-01T00:00:00Z"}).status_code == 422
    assert stage.t.put(path, json={"max_points": 0}).status_code == 422
