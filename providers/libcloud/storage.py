"""A storage target over any libcloud ``StorageDriver``, streaming both ways.

Replication sends thousands of small objects through here, so the per-object cost is
kept low:

- a bucket's container is looked up once, then remembered (uploads need the ``Container``);
- an object goes up in a single request (Azure Put Blob, S3 PutObject) instead of
  libcloud's streamed upload (Azure: 4 MiB blocks, then the block list; S3: initiate,
  5 MiB parts each hashed twice and held whole, complete, which also left an ETag that
  is not the MD5). libcloud has no public single-request upload from a stream, so that
  request goes through the driver's own connection, which signs it:

  - when the caller states the size (a replication source does), up to
    ``STREAMED_PUT_LIMIT``: the body streams from the source's chunks as they come,
    never buffered, with the source's MD5 as Content-MD5 when it has one (nothing is
    hashed here then: the service checks it, and an S3 ETag or Azure Content-MD5 in the
    answer is compared too);
  - otherwise, an object that turns out to fit in one block: read whole, hashed, sent
    with its Content-MD5;
  - anything else still goes through libcloud's streamed upload;
- requests stops consulting the environment (proxies, .netrc) on every request when the
  environment configures nothing it would use.

Keys are data from the source: ``key_problem`` and ``key_collisions`` say which keys this
target cannot hold under their own names (a control character, which XML listings cannot
carry: Azure answers every later listing of the container with 500; a name Azure stores as
another; a file name or path too long for local disk; a file where local disk needs a
folder), so that replication refuses them before any upload.

On local disk an object is written to a temporary file of mode 0600 beside it, then renamed
into place, and folders are created 0700, whatever the umask (libcloud's driver makes files
0664); and libcloud's per-object lock, a predictable ``<sha256>.lock`` file left in the
shared ``$TMPDIR``, is off: a rename is atomic, so there is nothing left for it to guard.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import mimetypes
import os
import re
import ssl
import sys
import tempfile
import threading
import urllib.request
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import requests
from libcloud.common.exceptions import exception_from_message
from libcloud.storage.types import ContainerAlreadyExistsError, ContainerDoesNotExistError, ObjectDoesNotExistError
from libcloud.utils.xml import fixxpath

from failover.config import DEFAULT_FILE, StorageSpec
from failover.errors import OperationFailed
from failover.keytext import shown
from failover.ports import ObjectInfo
from failover.retry import retry_requests
from providers.libcloud.drivers import ADAPTERS, DriverSession, is_instance_of, retried
from providers.libcloud.local_listing import local_objects
from providers.plainhttp import ERRORS as HTTP_ERRORS
from providers.plainhttp import ConnectionPool

CHUNK_SIZE = 1024 * 1024
# Objects of a stated size up to this go up in one streamed request. S3 takes 5 GiB in one
# PutObject, Azure 256 MiB in one Put Blob at libcloud's API version (2018-11-09); rclone's
# S3 backend sends up to 200 MiB in one request too. libcloud's part uploads would not
# resume a failed copy either: a failed copy is copied again, afresh, whichever way it went.
STREAMED_PUT_LIMIT = 200 * 1024 * 1024
LOCAL_DISK = "libcloud.storage.drivers.local:LocalStorageDriver"
AZURE_BLOBS = "libcloud.storage.drivers.azure_blobs:AzureBlobsStorageDriver"
S3_FAMILY = "libcloud.storage.drivers.s3:BaseS3StorageDriver"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# requests reads these when libcloud asks it to verify TLS without naming a CA bundle.
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
# Under these server-side encryptions an S3 ETag is not the MD5 of the content.
_OPAQUE_ETAG_ENCRYPTION = {"aws:kms", "aws:kms:dsse"}
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
# Azure metadata names are C# identifiers: S3's common "source-etag" is refused, and only
# as "Error in blocklist commit" after the whole object was sent.
_AZURE_META_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# C0 and C1 controls, DEL, and the non-characters U+FFFE and U+FFFF: XML 1.0 cannot carry most
# of them (Azure and S3 list in XML), and a terminal obeys the controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffe\uffff]")
AZURE_MAX_KEY = 1024  # characters in a blob name
S3_MAX_KEY = 1024  # bytes of an object key, UTF-8
# Folders libcloud's local driver leaves out of every listing (its IGNORE_FOLDERS).
LOCAL_HIDDEN_FOLDERS = frozenset({".lock", ".hash"})
PRIVATE_FOLDER = 0o700  # objects: 0600, as tempfile.mkstemp makes them


def connect_storage(spec: StorageSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> LibcloudStorage:
    """The storage target of a profile (shared by every caller in this process)."""
    return ADAPTERS.get("storage", spec, file, field, lambda: LibcloudStorage(spec, file=file, field=field))


class LibcloudStorage:
    """Buckets as containers named ``container_prefix + bucket`` on any libcloud driver."""

    def __init__(self, spec: StorageSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> None:
        self.spec = spec
        self.session = DriverSession("storage", spec, file=file, field=field, defaults=_driver_defaults)
        # name -> Container. The driver methods read only a container's name, so one
        # thread's Container serves every thread's driver.
        self._containers: dict[str, Any] = {}
        self._tuned = threading.local()

    @property
    def driver(self) -> Any:
        """This thread's driver, its HTTP session tuned on first use."""
        driver = self.session.driver
        if getattr(self._tuned, "driver", None) is not driver:
            stop_environment_lookups(driver)
            read_answers_as_utf8(driver)
            self._tuned.driver = driver
        return driver

    @property
    def keeps_metadata(self) -> bool:
        return not _is_local_disk(self.driver)

    def container_name(self, bucket: str) -> str:
        return f"{self.spec.container_prefix}{bucket}"

    # -- containers ----------------------------------------------------------------------

    @retried
    def list_containers(self) -> list[str]:
        with self.session.translating("list containers"):
            return [str(container.name) for container in self.driver.list_containers()]

    @retried
    def container_exists(self, bucket: str) -> bool:
        """Asked of the provider every time (a replica's container may have gone meanwhile)."""
        return self._look_up_container(bucket) is not None

    @retried
    def ensure_container(self, bucket: str) -> str:
        name = self.container_name(bucket)
        if self._container(bucket) is None:
            # Already there: created meanwhile by a concurrent step, or by this request (its answer lost).
            with self.session.translating(f"create container {name}"):
                try:
                    self._containers[name] = self.driver.create_container(name)
                except ContainerAlreadyExistsError:
                    pass
                else:
                    if _is_local_disk(self.driver):  # created as the umask says (0755)
                        os.chmod(self.driver.get_container_cdn_url(self._containers[name]), PRIVATE_FOLDER)
        return name

    @retried
    def delete_container(self, bucket: str) -> bool:
        container = self._look_up_container(bucket)
        if container is None:
            return False
        for item in self.iter_objects(bucket):
            self.delete_object(bucket, item.key)
        self._containers.pop(container.name, None)
        with self.session.translating(f"delete container {container.name}"):
            self.driver.delete_container(container)
        return True

    def _container(self, bucket: str) -> Any:
        """The bucket's container, remembered once found; None when there is none."""
        return self._containers.get(self.container_name(bucket)) or self._look_up_container(bucket)

    @retried
    def _look_up_container(self, bucket: str) -> Any:
        name = self.container_name(bucket)
        with self.session.translating(f"look up container {name}"):
            try:
                container = self.driver.get_container(name)
            except ContainerDoesNotExistError:
                self._containers.pop(name, None)
                return None
        self._containers[name] = container
        return container

    def _existing_container(self, bucket: str) -> Any:
        container = self._container(bucket)
        if container is None:
            raise OperationFailed(f"no container {self.container_name(bucket)}", where=self.session.where)
        return container

    # -- keys ----------------------------------------------------------------------------

    def key_problem(self, bucket: str, key: str) -> str | None:
        control = _CONTROL.search(key)
        if control is not None:
            return f"a control character ({shown(control.group())}), which listings cannot carry and terminals obey"
        driver = self.driver
        if is_instance_of(driver, AZURE_BLOBS):
            return _azure_key_problem(key)
        if is_instance_of(driver, S3_FAMILY) and len(key.encode("utf-8")) > S3_MAX_KEY:
            return f"{len(key.encode('utf-8')):,} bytes long, more than the {S3_MAX_KEY:,} an S3 key takes"
        if _is_local_disk(driver):
            return _local_key_problem(driver.base_path, self.container_name(bucket), key)
        return None

    def key_collisions(self, bucket: str, keys: Collection[str], stored: Collection[str]) -> dict[str, str]:
        """On local disk a key is a file, and its folders are folders: ``a`` and ``a/b`` cannot
        both be stored. A file already stored keeps its place (the keys under it give way);
        otherwise the file gives way to the folder holding the other keys."""
        if not _is_local_disk(self.driver):
            return {}
        stored = set(stored)
        under: dict[str, str] = {}  # folder -> a key it holds
        for key in [*keys, *stored]:
            for folder in _folders_of(key):
                under.setdefault(folder, key)
        refused = {}
        for key in keys:
            blocking = next((folder for folder in _folders_of(key) if folder in stored), None)
            if blocking is not None:
                refused[key] = f"the target stores a file {shown(blocking)} where this key needs a folder"
            elif key in under and key not in stored:
                refused[key] = f"local disk needs a folder of this name for {shown(under[key])}"
        return refused

    # -- objects -------------------------------------------------------------------------

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        container = self._existing_container(bucket)
        if is_instance_of(self.driver, AZURE_BLOBS):
            pages = azure_blobs(self.driver, container, prefix, request=self._retried(f"list {container.name}"))
        elif _is_local_disk(self.driver):  # in key order, a folder at a time (the driver sorts the whole container)
            pages = local_objects(self.driver, container, prefix)
        else:
            pages = self.driver.iterate_container_objects(container, prefix=prefix or None)
        yield from (object_info(item) for item in self._translated(pages, f"list {container.name}"))

    @retried
    def get_object(self, bucket: str, key: str) -> ObjectInfo | None:
        native = self._native_object(bucket, key)
        return object_info(native) if native is not None else None

    def upload_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str | None = None,
        meta: dict[str, str] | None = None, *, size: int | None = None, md5: str | None = None,
    ) -> ObjectInfo:
        """Store ``chunks`` as ``key``. ``size``, when the caller knows it, lets an object of up
        to ``STREAMED_PUT_LIMIT`` go up in one request streamed as it is read; ``md5`` (hex),
        the MD5 the content must have (a source's ETag that is one), is then stated to the
        service, which refuses other bytes. The result's ``md5``: of what the target stored,
        where it says so, else of what was sent (stated, or hashed on the way)."""
        meta = dict(meta or {})
        self._check_meta_names(meta)
        container = self._existing_container(bucket)
        single = single_put_for(self.driver)
        action = f"upload {container.name}/{shown(key)}"
        if _is_local_disk(self.driver):
            with self.session.translating(action):
                return self._written_to_disk(container, key, chunks, content_type)
        if single is not None and size is not None and 0 < size <= STREAMED_PUT_LIMIT:
            with self.session.translating(action):
                return single.put_streamed(self.driver, container, key, chunks, size, md5, content_type, meta)
        sent = SentStream(chunks)
        with self.session.translating(action):
            if single is not None and sent.ends_within(single.limit):
                target_hash = single.put(self.driver, container, key, sent, content_type, meta)
            else:
                extra: dict[str, Any] = {"meta_data": meta, **({"content_type": content_type} if content_type else {})}
                target_hash = self.driver.upload_object_via_stream(sent, container, key, extra=extra).hash
        return ObjectInfo(
            key=key, size=sent.size, hash=_unquoted(target_hash), md5=sent.md5, content_type=content_type, meta=meta,
        )

    def _written_to_disk(self, container: Any, key: str, chunks: Iterable[bytes], content_type: str | None) -> ObjectInfo:
        """Write ``chunks`` to a temporary file (0600) beside the object's path and rename it into
        place; a stated size and MD5 are hints here, as for libcloud's upload (the caller verifies)."""
        root = Path(self.driver.get_container_cdn_url(container, check=True))
        path = root.joinpath(*key.split("/"))
        _make_private_folders(root, path.parent)
        sent = SentStream(chunks)
        handle, temporary = tempfile.mkstemp(prefix=".failover-", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                for chunk in sent:
                    file.write(chunk)
            os.replace(temporary, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        stored = self.driver.get_object(container.name, key)  # its "hash" is what listings state
        return ObjectInfo(key=key, size=sent.size, hash=_unquoted(stored.hash), md5=sent.md5, content_type=content_type)

    def _check_meta_names(self, meta: dict[str, str]) -> None:
        if not is_instance_of(self.driver, AZURE_BLOBS):
            return
        refused = sorted(name for name in meta if not _AZURE_META_NAME.fullmatch(name))
        if refused:
            raise OperationFailed(
                f"Azure refuses metadata names other than letters, digits and _: {', '.join(refused)}",
                where=self.session.where,
            )

    @retried
    def download_stream(self, bucket: str, key: str) -> Iterator[bytes]:
        native = self._native_object(bucket, key)
        if native is None:
            raise OperationFailed(f"no object {key!r} in {self.container_name(bucket)}", where=self.session.where)
        action = f"download {self.container_name(bucket)}/{key}"
        with self.session.translating(action):
            chunks = self.driver.download_object_as_stream(native, chunk_size=CHUNK_SIZE)
        return self._translated(chunks, action)

    def container_url(self, bucket: str) -> str | None:
        """The replica container's address, path style (``http://host:port/<container>``, Azure's
        account prefix included), with no request made; None on local disk and for drivers that
        address containers otherwise. What a node's user data names instead of an S3 bucket host."""
        driver = self.driver
        if _is_local_disk(driver) or not callable(getattr(driver, "_get_container_path", None)):
            return None
        connection = driver.connection
        scheme = "https" if driver.secure else "http"
        port = f":{connection.port}" if connection.port and int(connection.port) != (443 if driver.secure else 80) else ""
        path = connection.morph_action_hook("/" + quote(self.container_name(bucket), safe=""))
        return f"{scheme}://{connection.host}{port}{path}"

    @retried
    def object_url(self, bucket: str, key: str, expires_s: float) -> str | None:
        """A time-limited GET URL of one object where the provider signs them (S3, Azure Blob);
        None on local disk (a path here is no use to a new node) or when the object is absent."""
        signs = "ex_expiry" in inspect.signature(self.driver.get_object_cdn_url).parameters
        if _is_local_disk(self.driver) or not signs:
            return None
        native = self._native_object(bucket, key)
        if native is None:
            return None
        with self.session.translating(f"sign a URL for {native.container.name}/{key}"):
            try:
                return self.driver.get_object_cdn_url(native, ex_expiry=max(expires_s / 3600, 1 / 60))
            except NotImplementedError:
                return None

    @retried
    def delete_object(self, bucket: str, key: str) -> bool:
        native = self._native_object(bucket, key)
        if native is None:
            return False
        with self.session.translating(f"delete {self.container_name(bucket)}/{key}"):
            try:
                return bool(self.driver.delete_object(native))
            except ObjectDoesNotExistError:
                return False

    def _native_object(self, bucket: str, key: str) -> Any:
        name = self.container_name(bucket)
        with self.session.translating(f"look up {name}/{key}"):
            try:
                return self.driver.get_object(name, key)
            except (ObjectDoesNotExistError, ContainerDoesNotExistError):
                return None

    def _retried(self, action: str) -> Callable[[Callable[[], Any]], Any]:
        """``request(call)``: one idempotent request, translated and retried on temporary failures."""

        def request(call: Callable[[], Any]) -> Any:
            def attempt() -> Any:
                with self.session.translating(action):
                    return call()

            return retry_requests(attempt)

        return request

    def _translated(self, items: Iterable[Any], action: str) -> Iterator[Any]:
        """``items``, with failures while iterating (a later page, a broken stream) translated too."""
        iterator = iter(items)
        while True:
            with self.session.translating(action):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item


# -- uploads ---------------------------------------------------------------------------------

class SentStream:
    """An object's chunks on their way to the target, counted and MD5-hashed as they are
    handed over: what was sent.

    An iterator on purpose, not a file-like object: libcloud's block and part uploads cut
    the stream into blocks and emit one only once more than a block is buffered, so exact
    ``read(n)`` blocks would raise a streamed upload's peak memory from about three blocks
    (12-17 MiB for Azure's 4 MiB blocks and S3's 5 MiB parts) to five."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = (chunk for chunk in chunks if chunk)  # an empty chunk would end libcloud's reading
        self._ahead: deque[bytes] = deque()  # read from the source to look ahead, not handed over yet
        self._ahead_size = 0
        self._md5 = hashlib.md5()
        self.size = 0

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def ends_within(self, limit: int) -> bool:
        """Whether the rest of the stream is at most ``limit`` bytes; reads up to ``limit + 1`` ahead to know."""
        while self._ahead_size <= limit:
            chunk = next(self._chunks, None)
            if chunk is None:
                return True
            self._ahead.append(chunk)
            self._ahead_size += len(chunk)
        return False

    def rest(self) -> bytes:
        """Everything not handed over yet, at once: for an object known to be small."""
        pieces = [*self._ahead, *self._chunks]
        self._ahead.clear()
        self._ahead_size = 0
        return self._handed_over(pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def __iter__(self) -> SentStream:
        return self

    def __next__(self) -> bytes:
        if self._ahead:
            chunk = self._ahead.popleft()
            self._ahead_size -= len(chunk)
        else:
            chunk = next(self._chunks)
        return self._handed_over(chunk)

    def _handed_over(self, data: bytes) -> bytes:
        self._md5.update(data)
        self.size += len(data)
        return data


class SizedBody:
    """An object's chunks as a request body of a stated length, handed to the connection as
    they come (requests sends a body with a length as it is, not chunked), counted, and
    MD5-hashed only when ``hashing``. It ends the request with an error rather than send
    fewer bytes than stated (the server would wait for the rest) or more (it would read the
    excess as another request). An iterator, so libcloud's S3 signature does not hash it."""

    def __init__(self, chunks: Iterable[bytes], length: int, *, hashing: bool) -> None:
        self._chunks = iter(chunks)
        self._length = length
        self._md5 = hashlib.md5() if hashing else None
        self.size = 0

    @property
    def md5(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None else None

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> SizedBody:
        return self

    def __next__(self) -> bytes:
        for chunk in self._chunks:
            if not chunk:
                continue
            if self.size + len(chunk) > self._length:
                raise OperationFailed(f"the source sent more than the {self._length} bytes it stated")
            self.size += len(chunk)
            if self._md5 is not None:
                self._md5.update(chunk)
            return chunk
        if self.size != self._length:
            raise OperationFailed(f"the source sent {self.size} of the {self._length} bytes it stated")
        raise StopIteration


@dataclass(frozen=True)
class SinglePut:
    """Storing an object in one request of a provider's REST API, sent through the driver's
    connection, which signs it: an object of unknown size when it fits in ``limit`` bytes
    (read whole first), one of a stated size streamed (``put_streamed``).
    ``headers(driver, content_type, meta)`` names the content type and metadata the
    provider's way; ``stored_md5(headers)`` reads the content MD5 the provider states in
    its answer, if any. The Content-MD5 header makes the provider refuse a body that is not
    what was read."""

    limit: int
    headers: Callable[[Any, str, dict[str, str]], dict[str, str]]
    stored_md5: Callable[[Any], str | None] = lambda headers: None

    def put(
        self, driver: Any, container: Any, key: str, stream: SentStream, content_type: str | None,
        meta: dict[str, str],
    ) -> str | None:
        """Send the whole of ``stream``; the stored object's ETag."""
        body = stream.rest()
        content_md5 = base64.b64encode(bytes.fromhex(stream.md5)).decode("ascii")
        headers = {
            **self.headers(driver, content_type or _guessed_type(key), meta),
            "Content-MD5": content_md5,
        }
        if body:  # Azure's shared key signs the length: it must be named, except 0, which is signed as ""
            headers["Content-Length"] = str(len(body))
        response = self._sent(driver, container, key, body, headers)
        return response.headers.get("etag")

    def put_streamed(
        self, driver: Any, container: Any, key: str, chunks: Iterable[bytes], size: int, md5: str | None,
        content_type: str | None, meta: dict[str, str],
    ) -> ObjectInfo:
        """Send ``size`` bytes from ``chunks`` as they come, stating ``md5`` (hex) when known,
        else hashing them on the way; the stored object."""
        body = SizedBody(chunks, size, hashing=md5 is None)
        headers = {**self.headers(driver, content_type or _guessed_type(key), meta), "Content-Length": str(size)}
        if md5 is not None:
            headers["Content-MD5"] = base64.b64encode(bytes.fromhex(md5)).decode("ascii")
        response = self._sent(driver, container, key, body, headers)
        sent_md5 = md5 or body.md5
        stored = self.stored_md5(response.headers)
        if stored is not None and stored != sent_md5:
            what = "the source states" if md5 is not None else "of the bytes sent"
            raise OperationFailed(f"{container.name}/{key} was stored with MD5 {stored}, not the {sent_md5} {what}")
        return ObjectInfo(
            key=key, size=body.size, hash=_unquoted(response.headers.get("etag")), md5=stored or sent_md5,
            content_type=content_type, meta=meta,
        )

    @staticmethod
    def _sent(driver: Any, container: Any, key: str, body: Any, headers: dict[str, str]) -> Any:
        """The answer to a PUT of ``body``; an error unless it is a 2xx: libcloud's response
        classes of these providers take 400, 404 and 409 as successes."""
        action = object_path(container, key)
        response = direct_request(driver.connection, action, "PUT", body, headers)
        if response is None:
            response = driver.connection.request(action, method="PUT", data=body, headers=headers)
        if not 200 <= int(response.status) < 300:
            headers = response.headers or {}
            code = headers.get("x-ms-error-code") or _xml_code(response.body) or "no error code"
            raise exception_from_message(int(response.status), f"PUT answered {response.status} ({code})", headers)
        return response


@dataclass(frozen=True)
class DirectAnswer:
    """An answer to :func:`direct_request`: what ``SinglePut`` reads of libcloud's responses."""

    status: int
    headers: Any  # case-insensitive
    body: str


_POOLS: dict[tuple[str, str, int, Any], ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()
DIRECT_POOL_SIZE = 64  # connections kept per target endpoint: the most workers a pass has


def direct_request(connection: Any, action: str, method: str, body: Any, headers: dict[str, str]) -> DirectAnswer | None:
    """One request prepared and signed by libcloud's connection, as its ``request`` does (action
    hook, default parameters and headers, User-Agent, Host, the signing hook), sent through a
    pool of ``http.client`` connections (``providers.plainhttp``) instead of requests: a small
    object's upload cost 1.9 ms of CPU here through requests, about 1 ms through urllib3, about
    0.6 ms this way. None where requests would do more than send it (a proxy
    from the environment or libcloud's own, a client certificate): the caller sends it the usual way."""
    if getattr(connection, "connection", None) is None:
        connection.connect()
    http = connection.connection
    direct = getattr(connection, "_failover_direct", None)  # decided once per connection: the environment is read
    if direct is None:
        direct = connection._failover_direct = not (
            getattr(http, "http_proxy_used", False) or _environment_configures(http)
            or getattr(http, "session", None) is None or http.session.cert is not None
        )
    if not direct:
        return None
    headers = dict(headers)
    action = connection.morph_action_hook(action)
    connection.action, connection.method, connection.data = action, method, body
    params = connection.add_default_params({})
    headers = connection.add_default_headers(headers)
    headers["User-Agent"] = connection._user_agent()
    port = int(connection.port)
    headers["Host"] = connection.host if port in (80, 443) else f"{connection.host}:{port}"
    params, headers = connection.pre_connect_hook(params, headers)
    url = f"{action}?{urlencode(params, doseq=True)}" if params else action
    try:
        answer = _pool(connection, port, http).request(
            method, url, {name: str(value) for name, value in headers.items()}, body=body)
        text = answer.read().decode("utf-8", "replace")
    except HTTP_ERRORS as exc:
        raise ConnectionError(f"{method} {connection.host}:{port}: {exc}") from exc  # classified as requests' would be
    return DirectAnswer(answer.status, answer.headers, text)


def _pool(connection: Any, port: int, http: Any) -> ConnectionPool:
    verification = getattr(http, "verification", True)
    scheme = "https" if connection.secure else "http"
    key = (scheme, connection.host, port, verification)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            context = None
            if scheme == "https":
                if verification is False:
                    context = ssl.create_default_context()
                    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                else:
                    bundle = verification if isinstance(verification, str) else requests.certs.where()
                    context = ssl.create_default_context(cafile=bundle)
            timeout = connection.timeout or 60
            pool = _POOLS[key] = ConnectionPool(scheme, connection.host, port, maxsize=DIRECT_POOL_SIZE,
                                                connect_timeout=timeout, read_timeout=timeout, ssl_context=context)
        return pool


def _xml_code(body: Any) -> str | None:
    match = _XML_CODE.search(body) if isinstance(body, str) else None
    return match.group(1) if match else None


def object_path(container: Any, key: str) -> str:
    """The object's path in the S3 (path style) and Azure Blob REST APIs; the connection adds
    what precedes it (Azurite's account)."""
    return f"/{container.name}/{quote(key, safe='/')}"


def _azure_put_blob_headers(driver: Any, content_type: str, meta: dict[str, str]) -> dict[str, str]:
    # x-ms-blob-content-type, not Content-Type: some Azure connections set their own Content-Type.
    headers = {"x-ms-blob-type": "BlockBlob", "x-ms-blob-content-type": content_type}
    return headers | {f"x-ms-meta-{name}": value for name, value in meta.items()}


def _s3_put_object_headers(driver: Any, content_type: str, meta: dict[str, str]) -> dict[str, str]:
    prefix = driver.http_vendor_prefix  # x-amz, or a compatible vendor's own
    return {"Content-Type": content_type} | {f"{prefix}-meta-{name}": value for name, value in meta.items()}


def _azure_stored_md5(headers: Any) -> str | None:
    """Put Blob answers with the Content-MD5 of the stored blob (base64)."""
    stated = headers.get("content-md5")
    try:
        return base64.b64decode(stated, validate=True).hex() if stated else None
    except ValueError:
        return None


def _s3_stored_md5(headers: Any) -> str | None:
    """A PutObject's ETag is the MD5 of what was stored, except under KMS or customer keys."""
    etag = (_unquoted(headers.get("etag")) or "").lower()
    opaque = headers.get("x-amz-server-side-encryption") in _OPAQUE_ETAG_ENCRYPTION or headers.get(
        "x-amz-server-side-encryption-customer-algorithm"
    )
    return etag if _MD5_HEX.fullmatch(etag) and not opaque else None


def single_put_for(driver: Any) -> SinglePut | None:
    """How this driver stores a one-block object in one request; None where libcloud's
    streamed upload is used for every object (local disk, other providers)."""
    if is_instance_of(driver, AZURE_BLOBS):
        from libcloud.storage.drivers.azure_blobs import AZURE_UPLOAD_CHUNK_SIZE

        return SinglePut(AZURE_UPLOAD_CHUNK_SIZE, _azure_put_blob_headers, _azure_stored_md5)
    # Only where libcloud would upload in parts: others stream a plain PUT already.
    if is_instance_of(driver, S3_FAMILY) and driver.supports_s3_multipart_upload:
        from libcloud.storage.drivers.s3 import CHUNK_SIZE as S3_PART_SIZE

        return SinglePut(S3_PART_SIZE, _s3_put_object_headers, _s3_stored_md5)
    return None


def _guessed_type(key: str) -> str:
    """What libcloud would send for an object of unknown type."""
    return mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE


# -- listings ---------------------------------------------------------------------------------

AZURE_LIST_PAGE = 5000  # the most List Blobs returns at once; libcloud asks for 100


def azure_blobs(
    driver: Any, container: Any, prefix: str = "", request: Callable[[Callable[[], Any]], Any] | None = None
) -> Iterator[Any]:
    """A container's blobs as libcloud lists them, in pages of ``AZURE_LIST_PAGE``: 2,000
    blobs in one request instead of libcloud's twenty. Each page's request goes through
    ``request(call)`` (which may retry it: the same page is asked for again)."""
    params: dict[str, Any] = {
        "restype": "container", "comp": "list", "maxresults": AZURE_LIST_PAGE, "include": "metadata",
    }
    if prefix:
        params["prefix"] = prefix
    request = request or (lambda call: call())
    while True:
        body = request(lambda: _azure_page(driver, container, params))
        for blob in body.find(fixxpath(xpath="Blobs")).findall(fixxpath(xpath="Blob")):
            yield driver._xml_to_object(container, blob)
        params["marker"] = body.findtext("NextMarker")
        if not params["marker"]:
            return


def _azure_page(driver: Any, container: Any, params: dict[str, Any]) -> Any:
    response = driver.connection.request(f"/{container.name}", params=params)
    if response.status == 404:
        raise ContainerDoesNotExistError(value=None, driver=driver, container_name=container.name)
    if response.status != 200:
        raise exception_from_message(int(response.status), f"List Blobs answered {response.status}", response.headers)
    return response.parse_body()


# -- the HTTP session -------------------------------------------------------------------------

def stop_environment_lookups(driver: Any) -> None:
    """Stop requests from reading proxy variables and ~/.netrc before every request
    (``trust_env``), a large share of a small upload's CPU time; only when the environment
    configures nothing that requests would use for this connection, so nothing changes."""
    connection = getattr(driver, "connection", None)
    if connection is None or not hasattr(connection, "connect"):
        return
    if getattr(connection, "connection", None) is None:
        connection.connect()
    http = connection.connection
    session = getattr(http, "session", None)
    if session is None or _environment_configures(http):
        return
    session.trust_env = False


def read_answers_as_utf8(driver: Any) -> None:
    """Decode answers that name no charset as UTF-8, as their XML declares (Azure's listings:
    ``application/xml``), instead of letting requests guess from the bytes: a listing of keys
    with many accented letters was guessed to be EUC-KR, so ``éé`` came back as ``챕챕``."""
    session = getattr(getattr(getattr(driver, "connection", None), "connection", None), "session", None)
    if session is not None and _utf8_unless_stated not in session.hooks["response"]:
        session.hooks["response"].append(_utf8_unless_stated)


def _utf8_unless_stated(response: Any, *args: Any, **kwargs: Any) -> Any:
    if "charset" not in response.headers.get("content-type", "").lower():
        response.encoding = "utf-8"
    return response


def _environment_configures(http: Any) -> bool:
    """Whether requests would take a proxy or a CA bundle for ``http`` from the environment."""
    if urllib.request.getproxies() or getattr(http, "http_proxy_used", False):
        return True
    # libcloud names its CA bundle itself; only without one would requests look for another.
    return getattr(http, "verification", None) is True and any(os.environ.get(name) for name in _CA_BUNDLE_VARIABLES)


# -- objects as listed ----------------------------------------------------------------------------

def object_info(native: Any) -> ObjectInfo:
    extra = native.extra or {}
    return ObjectInfo(
        key=native.name,
        size=int(native.size or 0),
        hash=_unquoted(native.hash),
        md5=content_md5(native),
        content_type=extra.get("content_type") or None,
        # S3 listings put the owner ({id, display_name}) among the metadata: not user metadata.
        meta={str(k): v for k, v in (native.meta_data or {}).items() if isinstance(v, str)},
        modified=modified_time(extra),
    )


def content_md5(native: Any) -> str | None:
    """The content's MD5 where the provider states one: Azure's Content-MD5, or an S3-style
    ETag of a single-part upload. Local disk's "hash" is of the file's mtime: not one."""
    stated = (native.extra or {}).get("md5_hash")
    if stated:
        return str(stated).lower()
    etag = (_unquoted(native.hash) or "").lower()
    if _MD5_HEX.fullmatch(etag) and not _is_local_disk(native.driver):
        return etag
    return None


def modified_time(extra: dict[str, Any]) -> datetime | None:
    """When the object was last written, in UTC, as the provider states it: S3 lists ISO 8601,
    Azure and object headers RFC 1123 dates, local disk the file's mtime."""
    stated = extra.get("last_modified") or extra.get("modify_time")
    try:
        if isinstance(stated, (int, float)):
            return datetime.fromtimestamp(stated, UTC)
        if isinstance(stated, str):
            parsed = _parsed_date(stated)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _parsed_date(text: str) -> datetime:
    """ISO 8601 (it starts with the year) or RFC 1123 (with the day's name): each tried first
    where it fits, since a failed parse costs as much as a listed object's whole conversion."""
    if text[:4].isdigit():
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return parsedate_to_datetime(text)  # raises ValueError when it is neither


def _is_local_disk(driver: Any) -> bool:
    return is_instance_of(driver, LOCAL_DISK)


# -- keys a target can hold -------------------------------------------------------------------

def _azure_key_problem(key: str) -> str | None:
    """Seen on Azurite: ``x//y`` is stored as ``x/y`` and ``a\\b`` as ``a/b``, over another key's blob."""
    if len(key) > AZURE_MAX_KEY:
        return f"{len(key):,} characters long, more than the {AZURE_MAX_KEY:,} an Azure blob name takes"
    if "//" in key:
        return "an empty path segment ('//'), which Azure stores as one '/'"
    if "\\" in key:
        return "a backslash, which Azure stores as '/'"
    return None


def _local_key_problem(base_path: str, container: str, key: str) -> str | None:
    segments = key.split("/")
    hidden = next((segment for segment in segments if segment in LOCAL_HIDDEN_FOLDERS), None)
    if hidden is not None:
        return f"a path segment {hidden!r}, a folder local disk leaves out of its listings"
    name_max, path_max = _disk_limits(base_path)
    longest = max(len(os.fsencode(segment)) for segment in segments)
    if longest > name_max:
        return f"a path segment of {longest:,} bytes, more than the {name_max} local disk takes in a file name"
    path = len(os.fsencode(os.path.join(os.path.abspath(base_path), container, key)))
    if path >= path_max:
        return f"a path of {path:,} bytes on local disk, more than the {path_max - 1:,} it takes"
    return None


def _disk_limits(base_path: str) -> tuple[int, int]:
    """The longest file name and path (bytes, with the final NUL) the file system takes."""
    try:
        return os.pathconf(base_path, "PC_NAME_MAX"), os.pathconf(base_path, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096


def _folders_of(key: str) -> Iterator[str]:
    """``a/b/c`` -> ``a``, ``a/b``."""
    position = key.find("/")
    while position > 0:
        yield key[:position]
        position = key.find("/", position + 1)


def _make_private_folders(root: Path, folder: Path) -> None:
    """Create ``folder`` and every missing folder between ``root`` and it, each 0700."""
    missing = []
    while folder != root and not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, PRIVATE_FOLDER)
        except FileExistsError:
            continue  # made meanwhile by another copy
        os.chmod(path, PRIVATE_FOLDER)  # the umask may have taken more


def _driver_defaults(cls: type) -> dict[str, Any]:
    """Constructor arguments of our own, which the profile's options override: no locks on
    local disk (see the module's docstring)."""
    module_name, _, class_name = LOCAL_DISK.partition(":")
    module = sys.modules.get(module_name)
    local = module is not None and issubclass(cls, getattr(module, class_name))
    return {"ex_use_locking": False} if local else {}


def _unquoted(value: Any) -> str | None:
    return str(value).strip('"') if value else None
