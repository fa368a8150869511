"""A school's settings are declared (the core's sections and each plugin's
`Plugin.tenant_settings`) and checked before they are stored: `tenants apply` and every other
writer refuse a wrong value, an undeclared key and an undeclared section, naming the file and
the dotted key, and write nothing; before this a wrong value was stored and failed later as a
500 (GET /notifications/preferences with `notifications.default_channel = "sms"`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from corehelpers import REPO, cli_env, run_cli
from pydantic import BaseModel, ConfigDict

from learnplat import db
from learnplat.cli import core_commands  # noqa: F401  (registers the core commands)
from learnplat.cli.main import AppContext, cli
from learnplat.errors import ValidationFailed
from learnplat.plugin import Plugin
from learnplat.registry import StartupError, tenant_sections
from learnplat.tenants import TenantSpec, core_sections, declared_keys
from learnplat.testing import make_tenant

# Every section of the built-in plugins, each with keys the code reads: valid as a whole.
VALID = """\
name = "Settings School"
[settings.api]
reference = true
[settings.cors]
origins = ["https://app.school.example"]
[settings.limits]
user_rate = 5.0
tenant_burst = 500
[settings.courses]
catalogue = "private"
[settings.media]
max_video_bytes = 1000000
[settings.certificates]
base_url = "https://certs.school.example"
[settings.certificates.template]
orientation = "portrait"
primary_color = "#112233"
[settings.notifications]
emails_per_minute = 30
default_channel = "email"
digest_hour = 6
[settings.notifications.smtp]
host = "127.0.0.1"
port = 2525
from = "school@school.example"
starttls = false
[settings.notifications.default_channels]
announcement = "in_app"
[settings.notifications.templates.course_approved]
title = "Approved: $course_title"
[settings.oauth]
redirect_url = "https://app.school.example/signed-in"
[settings.oauth.providers.school-sso]
backend = "oidc"
key = "client"
secret = "secret"
issuer = "https://sso.school.example"
"""


def invoke(runtime: Any, *args: str) -> Any:
    ctx = AppContext()
    ctx._runtime = runtime
    return CliRunner().invoke(cli, list(args), obj=ctx)


def error_line(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def slug_of(tmp_path: Path, stem: str) -> str:
    return f"{stem}-{tmp_path.name[-8:].lower().replace('_', '-')}".strip("-")


def tenant_exists(runtime: Any, slug: str) -> bool:
    with db.connection():
        runtime.tenants.invalidate()
        return runtime.tenants.get_by_slug(slug) is not None


def test_every_section_of_the_built_in_plugins_is_accepted(lp_runtime: Any, tmp_path: Path
                                                           ) -> None:
    slug = slug_of(tmp_path, "valid")
    (tmp_path / f"{slug}.toml").write_text(VALID)
    r = invoke(lp_runtime, "tenants", "apply", str(tmp_path))
    assert r.exit_code == 0, r.stderr
    assert r.output.strip() == f"created {slug}"
    with db.connection():
        stored = lp_runtime.tenants.require(slug)
    assert stored.setting("notifications.smtp.from") == "school@school.example"
    assert stored.setting("oauth.providers.school-sso.backend") == "oidc"


def test_a_wrong_default_channel_is_refused_at_apply_and_nothing_is_written(
        lp_runtime: Any, tmp_path: Path) -> None:
    good, bad = slug_of(tmp_path, "aaa-good"), slug_of(tmp_path, "zzz-bad")
    (tmp_path / f"{good}.toml").write_text('name = "Good"\n')
    (tmp_path / f"{bad}.toml").write_text(
        'name = "Bad"\n[settings.notifications]\ndefault_channel = "sms"\n')
    line = error_line(invoke(lp_runtime, "tenants", "apply", str(tmp_path)))
    assert f"{bad}.toml" in line
    assert "settings.notifications.default_channel" in line and "'email'" in line
    # All files are checked before anything is written: the good one was not applied either.
    assert not tenant_exists(lp_runtime, good) and not tenant_exists(lp_runtime, bad)


def test_an_existing_school_keeps_its_settings_when_a_change_is_refused(
        lp_runtime: Any, tmp_path: Path) -> None:
    slug = slug_of(tmp_path, "kept")
    path = tmp_path / f"{slug}.toml"
    # (Not digest_hour: this school stays in the suite's database, and the digest
    # scheduler's tests count the schools whose hour it is.)
    path.write_text('name = "Kept"\n[settings.notifications]\nemails_per_minute = 5\n')
    assert invoke(lp_runtime, "tenants", "apply", str(path)).exit_code == 0
    path.write_text('name = "Kept"\n[settings.notifications]\nemails_per_minute = 0\n')
    line = error_line(invoke(lp_runtime, "tenants", "apply", str(path)))
    assert "settings.notifications.emails_per_minute" in line and "equal to 1" in line
    with db.connection():
        assert lp_runtime.tenants.require(slug).setting("notifications.emails_per_minute") == 5


@pytest.mark.parametrize(("toml", "key", "says"), [
    # A typo of a key: refused, naming the keys its section declares.
    ('[settings.notifications]\ndefault_chanel = "email"\n',
     "settings.notifications.default_chanel", "unknown key (known: default_channel, "),
    ('[settings.notifications.smtp]\nsender = "a@b.example"\n',
     "settings.notifications.smtp.sender", "known: from, host,"),
    ('[settings.oauth.providers.sso]\nbackend = "oidc"\nkey = "k"\nsecret = "s"\nscopes = []\n',
     "settings.oauth.providers.sso.scopes", "unknown key (known: backend, issuer, key,"),
    ('[settings.limits]\nper_day = 5\n', "settings.limits.per_day", "unknown key"),
    ('[settings.api]\nhide = true\n', "settings.api.hide", "unknown key (known: reference)"),
    # A section nobody declares: refused, naming the known ones.
    ('[settings.notification]\ndefault_channel = "email"\n', "settings.notification",
     "unknown section: no loaded plugin declares it (known: api, certificates, cors, courses, "
     "limits, media, notifications, oauth"),
    # Values of the wrong type or out of range.
    ('[settings.media]\nmax_video_bytes = "5"\n', "settings.media.max_video_bytes",
     "valid integer"),
    ('[settings.courses]\ncatalogue = "privat"\n', "settings.courses.catalogue", "'private'"),
    ('[settings.notifications.default_channels]\nenrolment = "email"\n',
     "settings.notifications.default_channels.enrolment", "not a valid name"),
    ('[settings.certificates]\nbase_url = "certs.example"\n', "settings.certificates.base_url",
     "http:// or https://"),
    ('[settings.oauth.providers.sso]\nbackend = "saml"\nkey = "k"\nsecret = "s"\n',
     "settings.oauth.providers.sso.backend", "'oidc'"),
    ('[settings.api]\nreference = "no"\n', "settings.api.reference", "boolean"),
    ("[settings]\ncors = 3\n", "settings.cors", "expected a table"),
])
def test_a_wrong_setting_is_refused_naming_the_file_and_the_key(
        lp_runtime: Any, tmp_path: Path, toml: str, key: str, says: str) -> None:
    slug = slug_of(tmp_path, "wrong")
    (tmp_path / f"{slug}.toml").write_text('name = "Wrong"\n' + toml)
    line = error_line(invoke(lp_runtime, "tenants", "apply", str(tmp_path)))
    assert line.startswith(f"error: {tmp_path / slug}.toml: {key}: "), line
    assert says in line, line
    assert not tenant_exists(lp_runtime, slug)


def test_every_writer_checks_not_only_the_command(lp_runtime: Any) -> None:
    """TenantService.create and .apply (tests, seeds, any future command) check too."""
    with pytest.raises(ValidationFailed) as refused:
        make_tenant(lp_runtime, settings={"notifications": {"default_channel": "sms"}})
    assert refused.value.errors[0]["field"] == "settings.notifications.default_channel"
    school = make_tenant(lp_runtime)
    spec = TenantSpec(slug=school.slug, name=school.name,
                      settings={"media": {"max_photo_bytes": 2048}, "nobody": {}})
    with db.connection(), pytest.raises(ValidationFailed) as refused:
        lp_runtime.tenants.apply(spec)
    assert [e["field"] for e in refused.value.errors] == ["settings.nobody"]
    with db.connection():
        assert lp_runtime.tenants.require(school.slug).settings == {}


def test_the_preferences_of_a_school_with_a_valid_default_channel_answer(
        lp_app: Any, lp_runtime: Any) -> None:
    """The reported 500: with the channel refused at the door, a stored one always works."""
    from learnplat_identity.testing import UserFactory

    from learnplat.testing import Client

    school = make_tenant(lp_runtime, settings={"notifications": {"default_channel": "email"}})
    student = UserFactory(lp_runtime, school).make("student")
    r = Client(lp_app, school, student.token).get("/notifications/preferences")
    assert r.status_code == 200, r.text
    assert set(r.json["channels"].values()) == {"email"}


def test_the_command_refuses_as_a_real_process(tmp_path: Path, fresh_db: Any) -> None:
    env = cli_env(tmp_path, fresh_db)
    assert run_cli(["migrate"], env, timeout=300).returncode == 0
    d = tmp_path / "tenants"
    d.mkdir()
    (d / "third.toml").write_text(
        'name = "Third"\n[settings.notifications]\ndefault_channel = "sms"\n')
    r = run_cli(["tenants", "apply", str(d)], env)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert re.match(rf"^error: {re.escape(str(d / 'third.toml'))}: "
                    r"settings\.notifications\.default_channel: ", lines[0]), lines[0]
    listed = run_cli(["tenants", "list"], env)
    assert listed.returncode == 0 and "third" not in listed.stdout
    (d / "third.toml").write_text(
        'name = "Third"\n[settings.notifications]\ndefault_channel = "email"\n')
    r = run_cli(["tenants", "apply", str(d)], env)
    assert r.returncode == 0 and r.stdout.strip() == "created third", r.stderr


# -- the declarations ---------------------------------------------------------------------------


class _Shelf(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int | None = None


class _ShelfPlugin(Plugin):
    tenant_settings = _Shelf


class _RivalPlugin(Plugin):
    tenant_settings = _Shelf
    tenant_settings_section = "shelf"


def test_a_section_belongs_to_one_owner() -> None:
    sections = tenant_sections(core_sections(), [("shelf", _ShelfPlugin())])
    assert sections["shelf"].owner == "shelf" and sections["limits"].owner == "core"
    with pytest.raises(StartupError, match=r"'shelf'.*'rival'"):
        tenant_sections(core_sections(), [("shelf", _ShelfPlugin()), ("rival", _RivalPlugin())])
    with pytest.raises(StartupError, match=r"'core'.*'rival'"):
        tenant_sections({"shelf": _Shelf}, [("rival", _RivalPlugin())])


def test_every_declared_section_refuses_typos_and_requires_nothing(lp_runtime: Any) -> None:
    for section in lp_runtime.tenants.sections().values():
        model = section.model
        assert model.model_config.get("extra") == "forbid", section
        model.model_validate({})  # every key is optional: the owner's default applies
        for name, field in model.model_fields.items():
            assert field.description, f"{section.name}.{name} has no description"


def test_the_docs_list_every_declared_key(lp_runtime: Any) -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    part = text.split("## Tenant settings", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_.<>-]+)` \|", part, re.M))
    declared = {key for key, _ in declared_keys(lp_runtime.tenants.sections())}
    assert declared <= listed, f"add to docs/configuration.md: {sorted(declared - listed)}"
    assert listed - declared == set(), f"not declared: {sorted(listed - declared)}"



def test_the_shipped_tenant_files_and_the_docs_examples_are_valid(lp_runtime: Any) -> None:
    import tomllib

    tables = [tomllib.loads(f.read_text()) for f in sorted((REPO / "tenants").glob("*.toml"))]
    for page in sorted((REPO / "docs").glob("*.md")):
        for block in re.findall(r"```toml\n(.*?)```", page.read_text(), re.S):
            if "[settings." in block:
                tables.append(tomllib.loads(block))
    assert len(tables) >= 5
    for table in tables:
        lp_runtime.tenants.check_settings(table.get("settings", {}))
