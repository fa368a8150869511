"""Run by test_core_sample_plugin.py in a subprocess whose PYTHONPATH holds the installed
learnplat-sample: exercises each of its hooks through the entry point and prints the facts as
JSON for the test to assert on. Configuration comes from LEARNPLAT_* environment variables."""

from __future__ import annotations

import json

from huey.api import PeriodicTask

from learnplat import db
from learnplat.http.app import create_app
from learnplat.models import OutboxEvent
from learnplat.runtime import create_runtime
from learnplat.seeding import SeedRun
from learnplat.testing import Client, make_tenant


def main() -> None:
    rt = create_runtime()
    app = create_app(rt)
    tenant, other = make_tenant(rt), make_tenant(rt)
    off = make_tenant(rt, disabled_plugins=["sample"])
    c = Client(app, tenant, f"sample:{tenant.id}:student")
    info = rt.plugins["sample"]
    facts: dict = {"plugin": {"version": info.version, "module": info.module,
                              "location": info.location}}
    r = c.post("/sample/bookmarks", json={"url": "https://ok.example/a"})
    facts["create"] = [r.status_code, r.json]
    r = c.post("/sample/bookmarks", json={"url": "https://blocked.example/x"})
    facts["veto"] = [r.status_code, r.json.get("code"), r.json.get("detail")]
    facts["list"] = c.get("/sample/bookmarks").json
    facts["other_tenant_list"] = Client(app, other).get("/sample/bookmarks").json
    facts["disabled_tenant_status"] = Client(app, off).get("/sample/bookmarks").status_code
    with db.connection():
        ids = [e.id for e in OutboxEvent.select().where(OutboxEvent.tenant_id == tenant.id)]
        facts["events"] = [rt.kv.get(f"sample:event:{i}") for i in ids]
    facts["task_count"] = rt.kv.get(f"sample:count:{tenant.id}")
    heartbeat = rt.queue.wrappers["sample.heartbeat"]
    facts["periodic"] = isinstance(heartbeat.task_class(), PeriodicTask)
    heartbeat()
    facts["heartbeat"] = rt.kv.get("sample:heartbeat")
    greeter = rt.service("sample.greeter")
    facts["startup_called"] = greeter.started
    facts["hello"] = Client(app).get("/sample/hello").json
    facts["settings_greeting"] = rt.plugin_settings["sample"].greeting
    ready = Client(app).get("/readyz")
    facts["readyz"] = [ready.status_code, ready.json["checks"]]
    doc = Client(app).get("/openapi.json").json
    facts["openapi_paths"] = sorted(p for p in doc["paths"] if p.startswith("/sample"))
    facts["openapi_tags"] = doc.get("tags", [])
    facts["permission"] = rt.registry.permissions["sample.bookmark.create"].plugin
    seeded = make_tenant(rt)  # seed_tenant: the sample's part of a generated school
    run = SeedRun(rt)
    run.tenant(seeded, {"users": 6, "instructors": 1, "courses": 1, "enrollments": 2,
                        "bookmarks": 2})
    facts["seeded"] = (Client(app, seeded, f"sample:{seeded.id}:student")
                       .get("/sample/bookmarks").json["items"])
    facts["seeded_order"] = [name for name, _ in run.plugins()]
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
