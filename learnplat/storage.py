"""Object storage on apache-libcloud, chosen by storage.url, with tenant-prefixed keys.

``file:var/storage`` (default, relative to the repo) or ``file:///abs/path`` use libcloud's
local driver; ``s3://KEY:SECRET@host:port/bucket?secure=false`` any S3-compatible store (no
host: AWS, with ``?region=``). Reads and writes are streamed: nothing holds a whole object in
memory. Keys are always prefixed with the current tenant, so one school's code cannot name
another school's object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from libcloud.storage.base import Container, StorageDriver
from libcloud.storage.providers import Provider, get_driver
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError

from .errors import NotFound
from .settings import ConfigError, Settings
from .tenancy import current_tenant


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str | None = None


def _driver_for(url: str, settings: Settings) -> tuple[StorageDriver, str, bool]:
    """(driver, container name, is_local)"""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        raw = unquote(url[len("file:") :])
        path = Path(raw[2:]) if raw.startswith("//") else settings.path(raw)
        path = path.resolve()
        path.mkdir(parents=True, exist_ok=True)
        return get_driver(Provider.LOCAL)(str(path)), "learnplat", True
    if parsed.scheme == "s3":
        opts = dict(parse_qsl(parsed.query))
        bucket = parsed.path.strip("/")
        if not bucket:
            raise ConfigError("storage.url: s3:// URLs need a bucket: s3://key:secret@host/bucket")
        key, secret = unquote(parsed.username or ""), unquote(parsed.password or "")
        secure = opts.pop("secure", "true").lower() not in ("0", "false", "no")
        if parsed.hostname:
            cls = get_driver(Provider.MINIO)  # any S3-compatible endpoint
            driver = cls(key, secret, host=parsed.hostname, port=parsed.port, secure=secure,
                         region=opts.get("region", "us-east-1"))
        else:
            cls = get_driver(Provider.S3)
            driver = cls(key, secret, region=opts.get("region", "us-east-1"))
        return driver, bucket, False
    raise ConfigError(f"storage.url: unsupported scheme {parsed.scheme!r} (file or s3)")


class Storage:
    def __init__(self, settings: Settings):
        self.driver, self.container_name, self.is_local = _driver_for(settings.storage.url,
                                                                      settings)
        self._container: Container | None = None

    @property
    def container(self) -> Container:
        if self._container is None:
            try:
                self._container = self.driver.get_container(self.container_name)
            except ContainerDoesNotExistError:
                self._container = self.driver.create_container(self.container_name)
        return self._container

    @staticmethod
    def tenant_key(key: str) -> str:
        key = key.lstrip("/")
        if ".." in key.split("/"):
            raise ValueError(f"bad object key {key!r}")
        return f"t{current_tenant().id}/{key}"

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None
            ) -> StoredObject:
        extra: dict[str, Any] = {"content_type": content_type} if content_type else {}
        obj = self.driver.upload_object_via_stream(
            iter(chunks), self.container, self.tenant_key(key), extra=extra
        )
        return StoredObject(key=key, size=int(obj.size or 0), content_type=content_type)

    def _object(self, key: str) -> Any:
        try:
            return self.driver.get_object(self.container_name, self.tenant_key(key))
        except ObjectDoesNotExistError:
            raise NotFound(f"no stored object {key!r}") from None

    def stat(self, key: str) -> StoredObject:
        obj = self._object(key)
        return StoredObject(key=key, size=int(obj.size or 0),
                            content_type=(obj.extra or {}).get("content_type"))

    def exists(self, key: str) -> bool:
        try:
            self._object(key)
        except NotFound:
            return False
        return True

    def open(self, key: str, start: int | None = None, end: int | None = None,
             chunk_size: int = 65536) -> Iterator[bytes]:
        """Stream an object, or the byte range [start, end) of it."""
        obj = self._object(key)
        if start is None and end is None:
            return iter(self.driver.download_object_as_stream(obj, chunk_size=chunk_size))
        return iter(self.driver.download_object_range_as_stream(
            obj, start_bytes=start or 0, end_bytes=end, chunk_size=chunk_size))

    def delete(self, key: str) -> bool:
        try:
            return bool(self.driver.delete_object(self._object(key)))
        except NotFound:
            return False

    def ping(self) -> None:
        _ = self.container
