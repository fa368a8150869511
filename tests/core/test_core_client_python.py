"""A school's developer generates a Python client from the served OpenAPI document with
openapi-python-client (an implementation nobody here wrote), as docs/api-clients.md says, and
drives a school's flow through it against a real gunicorn.

What used to slip through (issue 26): the document validated, yet the generated package did
not import (`const: false` written as `Falseand`), and eight schemas were silently left out
(two plugins' models sharing a title; union members without types). So the generator's
output is read: any warning, a schema without its model, or a package that does not import
fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

PACKAGE = "learnplat_client"
# The generator's settings for our document (docs/api-clients.md shows the same file): no
# formatter run afterwards, and the binary answers (PDF, images, media, the revocation list's
# VC-JWT) read as bytes or text: the generator knows only JSON, text/* and octet-stream.
CONFIG = """\
package_name_override: learnplat_client
post_hooks: []
content_type_overrides:
  application/pdf: application/octet-stream
  image/*: application/octet-stream
  image/jpeg: application/octet-stream
  "*/*": application/octet-stream
  application/vc+jwt: text/plain
"""
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def generated(module_server: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Any, dict[str, Any], str]]:
    """(the imported package, the served document, the generator's output)."""
    tmp = tmp_path_factory.mktemp("client")
    r = requests.get(f"{module_server}/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    (tmp / "openapi.json").write_bytes(r.content)
    (tmp / "config.yml").write_text(CONFIG)
    run = subprocess.run(
        [str(GENERATOR), "generate", "--path", "openapi.json", "--config", "config.yml",
         "--meta", "none", "--output-path", PACKAGE],
        cwd=tmp, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    sys.path.insert(0, str(tmp))
    try:
        package = importlib.import_module(PACKAGE)
        # Every module, as a school's code would import it: a SyntaxError anywhere fails.
        for module in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
            importlib.import_module(module.name)
        yield package, r.json(), output
    finally:
        sys.path.remove(str(tmp))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.mark.one_backend  # see tests/conftest.py
def test_the_generator_warns_of_nothing(generated: Any) -> None:
    _, _, output = generated
    # The generator says "Warning(s) encountered" and then each one ("WARNING parsing ...",
    # "Unable to parse schema ...", "Failure to process schema ..."), exiting 0 all the same.
    for sign in ("warning", "unable to", "failure to", "could not", "error"):
        assert sign not in output.lower(), output


@pytest.mark.one_backend  # see tests/conftest.py
def test_every_component_schema_has_its_model(generated: Any) -> None:
    from openapi_python_client.strings import ClassName

    package, doc, _ = generated
    models = importlib.import_module(f"{package.__name__}.models")
    schemas = doc["components"]["schemas"]
    missing, unions = [], []
    for name, schema in schemas.items():
        # A name is the model's title (generators name classes after it): pydantic's
        # module-prefixed names ("learnplat_media__schemas__GradeIn") mean two plugins'
        # models share a class name.
        assert schema.get("title", name) == name and "__" not in name, name
        alternatives = schema.get("oneOf", schema.get("anyOf"))
        if alternatives is not None and "properties" not in schema:
            # A union: each member is a component of its own (so it is checked here too).
            assert all(set(a) == {"$ref"} for a in alternatives), (name, alternatives)
            unions.append(name)
            continue
        if not hasattr(models, ClassName(name, prefix="")):
            missing.append(name)
    assert missing == [], missing
    # The typed unions of the document, with the discriminator where the wire has one.
    assert {"QuestionIn", "NewQuestionIn", "NotifyIn", "ProgressIn", "BulkIn"} <= set(unions)
    question = schemas["QuestionIn"]
    assert question["discriminator"]["propertyName"] == "type"
    for kind, ref in question["discriminator"]["mapping"].items():
        member = schemas[ref.rsplit("/", 1)[1]]
        assert member["properties"]["type"]["const"] == kind


class School:
    """The generated package, used as a school's app would use it."""

    def __init__(self, package: Any, base: str, tenant: str):
        self.package, self.base, self.tenant = package, base, tenant
        self.models = importlib.import_module(f"{PACKAGE}.models")

    def op(self, plugin: str, name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{plugin}.{name}")

    def as_(self, token: str) -> Any:
        # The school named once, on the client: every call sends X-Tenant.
        return self.package.AuthenticatedClient(base_url=self.base, token=token,
                                                headers={"X-Tenant": self.tenant},
                                                raise_on_unexpected_status=True)

    def call(self, client: Any, plugin: str, name: str, status: int, **kwargs: Any) -> Any:
        r = self.op(plugin, name).sync_detailed(client=client, **kwargs)
        assert r.status_code == status, (name, r.status_code, r.content)
        return r.parsed


def test_a_school_flow_through_the_generated_client(generated, module_server, lp_users,
                                                    lp_tenant) -> None:
    package, _, _ = generated
    school = School(package, module_server, lp_tenant.slug)
    m = school.models
    teacher, admin = lp_users.make("instructor"), lp_users.make("admin")
    student = lp_users.make("student")
    t, a = school.as_(teacher.token), school.as_(admin.token)

    # Sign in: the school named by the operation's x_tenant parameter.
    anonymous = package.Client(base_url=module_server, raise_on_unexpected_status=True)
    pair = school.op("identity", "post_auth_login").sync(
        client=anonymous, body=m.LoginIn(email=student.email, password=student.password),
        x_tenant=lp_tenant.slug)
    assert isinstance(pair, m.TokenPair) and pair.expires_in > 0
    s = school.as_(pair.access_token)
    profile = school.call(s, "identity", "get_auth_profile", 200)
    assert profile.email == student.email

    # An instructor's course: a text module with a quiz, a video module; an admin approves.
    course = school.call(t, "courses", "post_courses", 201,
                         body=m.CourseIn(title="Generated client course"))
    quiz_module = school.call(t, "courses", "post_courses_course_id_modules", 201,
                              course_id=course.id, body=m.ModuleIn(title="Basics"))
    video_module = school.call(t, "courses", "post_courses_course_id_modules", 201,
                               course_id=course.id,
                               body=m.ModuleIn(title="Watch", kind=m.ModuleInKind.VIDEO))
    quiz = school.call(
        t, "quizzes", "post_courses_course_id_modules_module_id_quiz", 201,
        course_id=course.id, module_id=quiz_module.id,
        body=m.QuizIn(title="Check", pass_mark=60, questions=[
            m.SingleChoiceQuestionIn(type_="single_choice", prompt="Capital of France?",
                                     options=["Lyon", "Paris"], answer=1),
            m.TrueFalseQuestionIn(type_="true_false", prompt="The sky is green.",
                                  answer=False)]))
    assert [q.type_ for q in quiz.questions] == ["single_choice", "true_false"]
    school.call(t, "courses", "post_courses_course_id_submit", 200, course_id=course.id)
    school.call(a, "courses", "post_courses_course_id_approve", 200, course_id=course.id)

    # The catalogue, then enrollment.
    catalogue = school.call(s, "courses", "get_courses", 200)
    assert course.id in [c.id for c in catalogue.items]
    enrollment = school.call(s, "enrollment", "post_courses_course_id_enroll", 201,
                             course_id=course.id)
    assert enrollment.course_id == course.id and enrollment.status == "active"

    # Progress: a module marked complete, a playback heartbeat.
    progress = school.call(s, "progress", "post_progress_course_id", 200, course_id=course.id,
                           body=m.CompletionIn(module_id=quiz_module.id, completed=True))
    assert isinstance(progress, m.ProgressOut) and not progress.completed
    beat = school.call(s, "progress", "post_progress_course_id", 200, course_id=course.id,
                       body=m.HeartbeatIn(module_id=video_module.id, position_seconds=30,
                                          duration_seconds=120))
    assert isinstance(beat, m.HeartbeatOut)

    # A quiz attempt and its result.
    where = {"course_id": course.id, "module_id": quiz_module.id, "quiz_id": quiz.id}
    attempt = school.call(s, "quizzes",
                          "post_courses_course_id_modules_module_id_quiz_quiz_id_attempts",
                          201, **where)
    answers = m.SubmitInAnswers.from_dict({str(q.id): answer for q, answer
                                           in zip(quiz.questions, (1, False), strict=True)})
    school.call(s, "quizzes", "post_courses_course_id_modules_module_id_quiz_quiz_id_submit",
                200, body=m.SubmitIn(attempt_id=attempt.id, answers=answers), **where)
    result = school.call(s, "quizzes",
                         "get_courses_course_id_modules_module_id_quiz_quiz_id_result", 200,
                         **where)
    assert result.passed is True and result.attempts_used == 1

    # Notifications: the admin writes to the student, who reads it.
    school.call(a, "notifications", "post_notifications", 201,
                body=m.NotifyUserIn(title="Welcome", body="Glad to have you",
                                    user_id=student.id))
    page = school.call(s, "notifications", "get_notifications", 200)
    note = next(n for n in page.items if n.title == "Welcome")
    assert note.read is False
    assert school.call(s, "notifications", "get_notifications_unread_count", 200).unread >= 1
    school.call(s, "notifications", "post_notifications_notification_id_read", 200,
                notification_id=note.id)

    # The certificate: the course completed, asked for (issued in the background), read.
    school.call(s, "progress", "post_progress_course_id", 200, course_id=course.id,
                body=m.CompletionIn(module_id=video_module.id, completed=True))
    asked = school.op("certificates", "post_courses_course_id_certificate").sync_detailed(
        client=s, course_id=course.id)
    assert asked.status_code in (200, 202), asked.content
    deadline = time.monotonic() + 60
    while True:
        got = school.op("certificates", "get_courses_course_id_certificate").sync_detailed(
            client=s, course_id=course.id)
        if got.status_code == 200 and got.parsed.status == "issued":
            break
        assert time.monotonic() < deadline, got.content
        time.sleep(0.2)
    assert got.parsed.id == asked.parsed.id
    assert got.parsed.verify_url.endswith(f"/certificates/{got.parsed.id}/verify")


@pytest.mark.one_backend  # see tests/conftest.py
def test_the_docs_show_the_settings_the_suite_uses() -> None:
    from corehelpers import REPO

    text = (REPO / "docs" / "api-clients.md").read_text()
    section = text[text.index("## A Python client"):]
    block = section[section.index("cat > config.yml <<'EOF'\n"):].split("\n", 1)[1]
    block = block[:block.index("   EOF\n")]
    assert "".join(line.removeprefix("   ") + "\n" for line in block.splitlines()) == CONFIG
    assert "openapi-python-client==0.29.1" in section
    assert "openapi-python-client==0.29.1" in (REPO / "setup.cfg").read_text()
