"""Object storage on apache-libcloud, chosen by storage.url, with tenant-prefixed keys.

``file:var/storage`` (default, relative to the repo) or ``file:///abs/path`` use libcloud's
local driver; ``s3://KEY:SECRET@host:port/bucket?secure=false`` any S3-compatible store (no
host: AWS, with ``?region=``). Reads and writes are streamed: nothing holds a whole object in
memory. Keys are always prefixed with the current tenant, so one school's code cannot name
another school's object.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlparse

from .errors import LearnplatError, NotFound, ServiceUnavailable
from .settings import ConfigError, Settings
from .tenancy import current_tenant

# libcloud (and requests under it) is imported when a store is first used, or at start-up for
# a cloud store, not here: every process imports this module (each CLI command, each gunicorn
# worker) and most commands never touch the store; importing it costs ~0.13 s each time.
if TYPE_CHECKING:
    from libcloud.storage.base import Container, StorageDriver

log = logging.getLogger(__name__)


class StorageFull(LearnplatError):
    """The store has no room (local disk full, quota): 507, nothing kept of the upload."""

    status, code, title = 507, "storage_full", "Insufficient storage"


class StorageUnavailable(ServiceUnavailable):
    """The store cannot be reached or failed (connection refused, timeout, a 5xx of S3):
    503 with Retry-After, nothing kept of the upload."""

    code = "storage_unavailable"


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def storage_error(exc: BaseException) -> LearnplatError:
    """The domain error for a failure of the store itself."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return StorageFull("the file store is full; nothing was kept of this upload")
    return StorageUnavailable("the file store is unavailable; nothing was kept, try again "
                              "shortly", retry_after=10)


class _Source:
    """The chunks of an upload, remembering whether reading them failed: that is the
    client's doing (gone mid-way, over the limit) and keeps its own error, while a failure
    of the store becomes a StorageFull or StorageUnavailable."""

    def __init__(self, chunks: Iterable[bytes]):
        self._it = iter(chunks)
        self.failed: BaseException | None = None

    def __iter__(self) -> _Source:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._it)
        except StopIteration:
            raise
        except BaseException as exc:
            self.failed = exc
            raise


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str | None = None
    modified: dt.datetime | None = None  # when the store says it was last written


def _modified(extra: dict[str, Any]) -> dt.datetime | None:
    """The last-modified time drivers report in different shapes: an epoch (local), ISO 8601
    (S3 listings) or an HTTP date (S3 HEAD, Azure)."""
    value = extra.get("modify_time") or extra.get("last_modified")
    if value is None:
        return None
    try:
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        text = str(value)
        if text[:4].isdigit():
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError):
        return None


@cache
def _s3_compatible_driver() -> type[Any]:
    """S3CompatibleDriver, the class built on first use (its base is libcloud's)."""
    from libcloud.common.aws import AWSRequestSignerAlgorithmV4, UnsignedPayloadSentinel
    from libcloud.storage.base import Container
    from libcloud.storage.drivers.s3 import S3SignatureV4Connection, S3StorageDriver

    class S3CompatibleDriver(S3StorageDriver):
        """libcloud's S3 driver for an endpoint of our choosing, with working presigned URLs.

        libcloud signs a presigned URL's ``host`` header without the port, so on any endpoint
        with a non-default port (MinIO on :9000, a local moto) the signature never matches what
        the client sends. We sign ``host:port`` exactly as the Host header will be sent.
        """

        name = "S3-compatible"
        # S3StorageDriver's connectionCls (libcloud's BaseDriver declares a plain Connection).
        connection: S3SignatureV4Connection

        def presigned_url(self, container: str, key: str, seconds: int, method: str = "GET",
                          extra: dict[str, str] | None = None) -> str:
            """`extra`: more signed query parameters (``response-content-disposition``...)."""
            path = self._get_object_path(Container(container, {}, self), key)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            port = int(self.connection.port)
            host = self.connection.host
            host_header = host if port in (80, 443) else f"{host}:{port}"
            params: dict[str, Any] = {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": "/".join((self.key, now.strftime("%Y%m%d"), self.region,
                                              "s3", "aws4_request")),
                "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ"),
                "X-Amz-Expires": int(seconds),
                "X-Amz-SignedHeaders": "host",
                **(extra or {}),
            }
            signer = self.connection.signer
            # SignedAWSConnection picks its signer by signature_version: "4" for S3's connection.
            assert isinstance(signer, AWSRequestSignerAlgorithmV4)
            params["X-Amz-Signature"] = signer._get_signature(
                params=params, headers={"host": host_header}, dt=now, method=method, path=path,
                data=UnsignedPayloadSentinel)
            scheme = "https" if self.secure else "http"
            # Encoded exactly as SigV4's canonical query string (%20, not "+", for a space).
            return f"{scheme}://{host_header}{path}?{urlencode(params, quote_via=quote, safe='~')}"

    return S3CompatibleDriver


def __getattr__(name: str) -> Any:
    # `from learnplat.storage import S3CompatibleDriver` still works, importing libcloud then.
    if name == "S3CompatibleDriver":
        return _s3_compatible_driver()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _FileRange:
    """The bytes [start, end) of a local file, chunk by chunk. The file is opened at once (a
    missing file fails here, not mid-response) and closed at the end or by close(), which
    WSGI servers call on a response stream even when the client went away."""

    def __init__(self, path: str, start: int, end: int | None, chunk_size: int):
        self._fp = open(path, "rb")
        self._fp.seek(start)
        self._left = None if end is None else max(0, end - start)
        self._chunk = chunk_size

    def __iter__(self) -> _FileRange:
        return self

    def __next__(self) -> bytes:
        want = self._chunk if self._left is None else min(self._chunk, self._left)
        chunk = self._fp.read(want) if want > 0 and not self._fp.closed else b""
        if not chunk:
            self.close()
            raise StopIteration
        if self._left is not None:
            self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._fp.close()


def _driver_for(url: str, settings: Settings) -> tuple[StorageDriver | None, str, bool]:
    """(driver, container name, is_local); the driver None for local storage, made on first
    use (see Storage.driver)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        raw = unquote(url[len("file:") :])
        path = Path(raw[2:]) if raw.startswith("//") else settings.path(raw)
        path = path.resolve()
        path.mkdir(parents=True, exist_ok=True)
        return None, str(path), True
    if parsed.scheme == "s3":
        opts = dict(parse_qsl(parsed.query))
        bucket = parsed.path.strip("/")
        if not bucket:
            raise ConfigError("storage.url: s3:// URLs need a bucket: s3://key:secret@host/bucket")
        key, secret = unquote(parsed.username or ""), unquote(parsed.password or "")
        secure = opts.pop("secure", "true").lower() not in ("0", "false", "no")
        region = opts.get("region", "us-east-1")
        driver: StorageDriver
        if parsed.hostname:
            # Any S3-compatible endpoint (MinIO, Ceph, moto...): libcloud's S3 driver pointed at
            # the host, with presigned URLs fixed to sign "host:port" (see S3CompatibleDriver).
            driver = _s3_compatible_driver()(key, secret, host=parsed.hostname, port=parsed.port,
                                        secure=secure, region=region)
        else:
            from libcloud.storage.providers import Provider, get_driver

            driver = get_driver(Provider.S3)(key, secret, region=region)
        return driver, bucket, False
    if parsed.scheme in ("azure", "gs"):
        return _cloud_driver(parsed)
    raise ConfigError(f"storage.url: unsupported scheme {parsed.scheme!r} "
                      "(file, s3, azure or gs)")


def _cloud_driver(parsed: Any) -> tuple[StorageDriver, str, bool]:
    """Azure Blob Storage and Google Cloud Storage through libcloud's drivers:

    ``azure://ACCOUNT:KEY@/CONTAINER`` (KEY the base64 account key, URL-encoded), or with a
    host for an emulator or a sovereign cloud: ``azure://ACCOUNT:KEY@127.0.0.1:10000/CONTAINER
    ?secure=false`` (Azurite). ``gs://ACCESS_ID:SECRET@/BUCKET?project=P`` (HMAC interoperability
    keys, or a service account e-mail and the path of its key file)."""
    from libcloud.storage.providers import Provider, get_driver

    opts = dict(parse_qsl(parsed.query))
    container = parsed.path.strip("/")
    key, secret = unquote(parsed.username or ""), unquote(parsed.password or "")
    scheme = parsed.scheme
    if not container or not key or not secret:
        raise ConfigError(f"storage.url: {scheme}:// URLs need credentials and a container: "
                          f"{scheme}://KEY:SECRET@/CONTAINER")
    secure = opts.pop("secure", "true").lower() not in ("0", "false", "no")
    if scheme == "azure":
        import base64
        import binascii

        try:
            base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("storage.url: the Azure account key must be base64 "
                              "(URL-encode it in the URL)") from None
        kwargs: dict[str, Any] = {"secure": secure}
        if parsed.hostname:
            kwargs.update(host=parsed.hostname, port=parsed.port)
        return get_driver(Provider.AZURE_BLOBS)(key, secret, **kwargs), container, False
    return (get_driver(Provider.GOOGLE_STORAGE)(key, secret, project=opts.get("project")),
            container, False)


class Storage:
    def __init__(self, settings: Settings):
        driver, name, self.is_local = _driver_for(settings.storage.url, settings)
        self._driver: StorageDriver | None = driver
        # Local storage: the directory (made above) until the driver exists; its container
        # is always "learnplat".
        self._local_root = name if self.is_local else ""
        self.container_name = "learnplat" if self.is_local else name
        self._container: Container | None = None
        self.ttl = settings.storage.signing_ttl_seconds

    @property
    def driver(self) -> StorageDriver:
        if self._driver is None:
            from libcloud.storage.drivers.local import LocalStorageDriver

            self._driver = LocalStorageDriver(self._local_root)
        return self._driver

    @property
    def container(self) -> Container:
        from libcloud.storage.types import ContainerAlreadyExistsError, ContainerDoesNotExistError

        if self._container is None:
            try:
                self._container = self.driver.get_container(self.container_name)
            except ContainerDoesNotExistError:
                try:
                    self._container = self.driver.create_container(self.container_name)
                except ContainerAlreadyExistsError:  # another process made it meanwhile
                    self._container = self.driver.get_container(self.container_name)
        return self._container

    @staticmethod
    def tenant_key(key: str) -> str:
        key = key.lstrip("/")
        if ".." in key.split("/"):
            raise ValueError(f"bad object key {key!r}")
        return f"t{current_tenant().id}/{key}"

    def put(self, key: str, chunks: Iterable[bytes], content_type: str | None = None
            ) -> StoredObject:
        """Store `chunks` under `key`. On any failure nothing stays under `key` (a partial
        object is deleted, as far as the store lets us); a failure of the store raises
        StorageFull (507: disk full, quota) or StorageUnavailable (503), one of reading
        `chunks` its own error."""
        from libcloud.common.types import LibcloudError

        extra: dict[str, Any] = {"content_type": content_type} if content_type else {}
        source = _Source(chunks)
        try:
            obj = self.driver.upload_object_via_stream(
                source, self.container, self.tenant_key(key), extra=extra
            )
        except BaseException as exc:
            self.discard(key)
            if source.failed is not None:
                if source.failed is exc:
                    raise
                raise source.failed from exc  # a driver that wrapped the reader's error
            if isinstance(exc, OSError | LibcloudError):
                log.error("storage: storing %s failed: %r", key, exc)
                raise storage_error(exc) from exc
            raise
        return StoredObject(key=key, size=int(obj.size or 0), content_type=content_type)

    def discard(self, key: str) -> None:
        """Delete `key` if it exists, never raising (cleaning up after a failed upload must
        not hide why it failed); what cannot be deleted now is left to the orphan sweep."""
        try:
            self.delete(key)
        except Exception as exc:
            log.warning("storage: could not delete %s after a failed write: %r", key, exc)

    def _object(self, key: str) -> Any:
        from libcloud.common.types import LibcloudError
        from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError

        try:
            return self.driver.get_object(self.container_name, self.tenant_key(key))
        except (ObjectDoesNotExistError, ContainerDoesNotExistError):
            raise NotFound(f"no stored object {key!r}") from None
        except (OSError, LibcloudError) as exc:
            raise storage_error(exc) from exc

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
        if self.is_local:
            # libcloud's local driver reads a range by reading the whole file into memory
            # (twice): read the file ourselves, seeking to the range.
            return _FileRange(self.driver.get_object_cdn_url(obj), start or 0, end, chunk_size)
        if start is None and end is None:
            return iter(self.driver.download_object_as_stream(obj, chunk_size=chunk_size))
        return iter(self.driver.download_object_range_as_stream(
            obj, start_bytes=start or 0, end_bytes=end, chunk_size=chunk_size))

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """The current tenant's objects whose key starts with `prefix` (keys as the tenant
        names them, without the tenant prefix), streamed page by page."""
        own = self.tenant_key("")
        with warnings.catch_warnings():
            # The local driver filters by prefix itself after walking the directory, and says so.
            warnings.filterwarnings("ignore", message=".*native object filtering")
            listing = list(self.driver.iterate_container_objects(
                self.container, prefix=self.tenant_key(prefix))) if self.is_local else None
        for obj in listing if listing is not None else self.driver.iterate_container_objects(
                self.container, prefix=self.tenant_key(prefix)):
            if obj.name.startswith(own):
                extra = obj.extra or {}
                yield StoredObject(key=obj.name[len(own):], size=int(obj.size or 0),
                                   content_type=extra.get("content_type"),
                                   modified=_modified(extra))

    def delete(self, key: str) -> bool:
        try:
            return bool(self.driver.delete_object(self._object(key)))
        except NotFound:
            return False

    def presigned_url(self, key: str, seconds: int | None = None,
                      download_name: str | None = None) -> str | None:
        """A URL that reads the object directly from an S3-compatible store for `seconds`
        (default storage.signing_ttl_seconds); None for local storage, whose bytes the API
        serves itself. `download_name`: S3 answers with ``Content-Disposition: attachment``
        and that file name (other stores ignore it)."""
        if self.is_local:
            return None
        if not isinstance(self.driver, _s3_compatible_driver()):
            obj = self._object(key)
            return str(self.driver.get_object_cdn_url(  # type: ignore[call-arg]  # the base StorageDriver lacks S3's and Azure's ex_expiry
                obj, ex_expiry=(seconds or self.ttl) / 3600))
        extra = {"response-content-disposition":
                 f"attachment; filename*=UTF-8''{quote(download_name, safe='')}"
                 } if download_name else None
        return self.driver.presigned_url(self.container_name, self.tenant_key(key),
                                         seconds or self.ttl, extra=extra)

    def presigned_put_url(self, key: str, seconds: int | None = None) -> str | None:
        """A URL a client PUTs an object's bytes to, straight into an S3-compatible store, for
        `seconds`; None when the store cannot presign uploads (local disk: clients upload
        through the API)."""
        if self.is_local or not isinstance(self.driver, _s3_compatible_driver()):
            return None
        _ = self.container  # the bucket must exist before a client PUTs into it
        return self.driver.presigned_url(self.container_name, self.tenant_key(key),
                                         seconds or self.ttl, method="PUT")

    def ping(self) -> None:
        """Raise when the store cannot be reached (readiness)."""
        if self._container is None:
            _ = self.container
        else:
            self.driver.get_container(self.container_name)
