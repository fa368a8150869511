"""The orphan sweep: stored objects under the tenant's media/ prefix that no row names (an
upload cut off mid-way, a delete task that gave up), and rows whose object is gone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .models import MediaObject

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

PREFIX = "media/"


@dataclass
class SweepReport:
    objects: int = 0
    rows: int = 0
    orphan_objects: list[str] = field(default_factory=list)  # keys with no row
    missing_objects: list[int] = field(default_factory=list)  # rows with no object
    deleted: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)  # orphans too young to delete

    def as_dict(self) -> dict[str, object]:
        return {"objects": self.objects, "rows": self.rows,
                "orphan_objects": self.orphan_objects, "missing_objects": self.missing_objects,
                "deleted": self.deleted, "recent": self.recent}


def sweep(runtime: Runtime, delete_orphans: bool = False,
          min_age: dt.timedelta = dt.timedelta(hours=48)) -> SweepReport:
    """Run in the tenant (and a transaction). Streams the listing; rows are read in one pass
    of (id, key) pairs. An object with no row may be an upload still in progress (stored before
    its row is written) or a direct upload not confirmed yet: orphans younger than `min_age`
    are reported but never deleted."""
    now = dt.datetime.now(dt.UTC)
    report = SweepReport()
    keys = {row.key: row.id for row in MediaObject.select(MediaObject.id, MediaObject.key)}
    report.rows = len(keys)
    seen: set[str] = set()
    storage = runtime.storage
    for obj in storage.list(PREFIX):
        report.objects += 1
        if obj.key in keys:
            seen.add(obj.key)
            continue
        report.orphan_objects.append(obj.key)
        if obj.modified is None or now - obj.modified < min_age:
            report.recent.append(obj.key)
        elif delete_orphans and storage.delete(obj.key):
            report.deleted.append(obj.key)
    report.missing_objects = sorted(i for k, i in keys.items() if k not in seen)
    return report
