"""S3 as a replication source: the current version of each object, listed and streamed.

Reads go through one ``AwsSession`` (one client per region, its connection pool sized to
the worker threads, each request retried when transient). ``probe`` is the exception:
one request on a client of its own, with a short timeout and no retries, because on
failover day it decides whether the source is still there and must not wait for it.

An object is read with one GET signed by botocore's own SigV4 signer and sent through a
urllib3 pool (:class:`SignedGets`): the client's machinery (events, endpoint rules,
parsing) cost 3.4 ms of CPU per object here, the signed GET about 1 ms. Anything but a
200 answer (a redirect to another region, a missing key, an error), an unreachable
endpoint, a proxy in the environment or a key a URL could not carry exactly goes through
the client as before, which translates and retries it.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote_plus, urlencode
from xml.etree import ElementTree

import boto3
import botocore.session
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, IncompleteReadError
from botocore.httpsession import get_cert_path

from failover.errors import FailoverError, TransientError
from failover.ports import ObjectInfo, SourceObject
from providers.aws.inventory import HOME_REGION
from providers.aws.session import DROPPED, AwsSession, translate

CHUNK_SIZE = 1024 * 1024
PROBE_CONFIG = BotoConfig(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})

_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")
# Under these server-side encryptions an ETag is not the MD5 of the content.
_OPAQUE_ETAG_ENCRYPTION = {"aws:kms", "aws:kms:dsse"}


class S3Objects:
    """The objects of source buckets; ``bucket_regions`` says where each bucket lives
    (a bucket not in it is asked in us-east-1, and S3 redirects)."""

    def __init__(
        self, session: AwsSession, bucket_regions: dict[str, str] | None = None, *, profile: str | None = None,
        workers: int = 32,
    ) -> None:
        self.session = session
        self.bucket_regions = dict(bucket_regions or {})
        self.profile = profile
        self._gets = SignedGets(profile, workers)

    @classmethod
    def from_config(cls, config: Any, *, bucket_regions: dict[str, str], workers: int) -> S3Objects:
        source = config.source
        session = AwsSession(endpoint_url=source.endpoint_url, profile=source.profile, pool_size=workers)
        return cls(session, bucket_regions, profile=source.profile, workers=workers)

    def probe(self, bucket: str) -> str | None:
        try:
            self._probe_client(bucket).head_bucket(Bucket=bucket)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return f"S3 answered {error.get('Code', 'an error')} for bucket {bucket}: {error.get('Message', '')}".rstrip(": ")
        except BotoCoreError as exc:
            return f"cannot reach S3 for bucket {bucket}: {exc}"
        return None

    def iter_objects(self, bucket: str) -> Iterator[ObjectInfo]:
        region, last = self._region(bucket), None
        try:
            for item in self._gets.listing(self.session.client("s3", region), region, bucket):
                last = item.key
                yield item
            return
        except NotServed:
            pass  # the client lists the rest, after the last key listed
        after = {"StartAfter": last} if last is not None else {}
        for page in self.session.pages("s3", region, "list_objects_v2", Bucket=bucket, **after):
            for item in page.get("Contents", []):
                etag = _unquoted(item.get("ETag"))
                yield ObjectInfo(key=item["Key"], size=int(item.get("Size", 0)), hash=etag, md5=_md5_of(etag),
                                 modified=item.get("LastModified"))

    def open(self, bucket: str, key: str) -> SourceObject | None:
        region = self._region(bucket)
        opened = self._gets.open(self.session.client("s3", region), region, bucket, key)
        if opened is not None:
            return opened
        answer = self.session.call(
            "s3", self._region(bucket), "get_object", absent=("NoSuchKey",), Bucket=bucket, Key=key
        )
        if answer is None:
            return None
        etag = _unquoted(answer.get("ETag"))
        info = ObjectInfo(
            key=key,
            size=int(answer.get("ContentLength", 0)),
            hash=etag,
            md5=_md5_of(etag, answer.get("ServerSideEncryption")),
            content_type=answer.get("ContentType"),
            meta=dict(answer.get("Metadata") or {}),
        )
        body = answer["Body"]
        return SourceObject(info=info, chunks=_chunks(body, f"s3.get_object {bucket}/{key}"), close=body.close)

    def _region(self, bucket: str) -> str:
        return self.bucket_regions.get(bucket, HOME_REGION)

    def _probe_client(self, bucket: str) -> Any:
        session = boto3.session.Session(profile_name=self.profile)
        return session.client(
            "s3", region_name=self._region(bucket), endpoint_url=self.session.endpoint_url, config=PROBE_CONFIG
        )


class SignedGets:
    """GetObject as one SigV4-signed GET through a urllib3 pool, for the answers that need no
    client (a 200); ``open`` returns None for the client to take over anything else."""

    def __init__(self, profile: str | None, workers: int) -> None:
        self._profile = profile
        self._workers = workers
        self._credentials: Any = None
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self.enabled = not urllib.request.getproxies()  # botocore would go through the proxy

    def open(self, client: Any, region: str, bucket: str, key: str) -> SourceObject | None:
        if not self.enabled or not _plain_key(key):
            return None
        endpoint = client.meta.endpoint_url.rstrip("/")
        path = f"/{quote(bucket, safe='')}/{quote(key, safe='/~')}"
        try:
            headers = self._signed(endpoint + path, region)
            answer = self._pool(endpoint).urlopen("GET", path, headers=headers, preload_content=False, redirect=False,
                                                  retries=False, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError, BotoCoreError, ValueError):
            return None  # the client says why, and retries what is worth retrying
        headers = answer.headers
        if answer.status != 200 or "Content-Length" not in headers:
            answer.drain_conn()
            answer.release_conn()
            return None
        etag = _unquoted(headers.get("ETag"))
        meta = {name[len("x-amz-meta-"):]: value for name, value in headers.items()
                if name.lower().startswith("x-amz-meta-")}
        info = ObjectInfo(
            key=key, size=int(headers["Content-Length"]), hash=etag,
            md5=_md5_of(etag, headers.get("x-amz-server-side-encryption")),
            content_type=headers.get("Content-Type"), meta=meta,
        )
        return SourceObject(info=info, chunks=_streamed(answer, f"s3 GET {bucket}/{key}"), close=answer.release_conn)

    def listing(self, client: Any, region: str, bucket: str) -> Iterator[ObjectInfo]:
        """ListObjectsV2, page by page, each a signed GET parsed with ElementTree (botocore's
        parser, its timestamps parsed by dateutil, cost more than the copies' requests). Raises
        NotServed where the client must take over: not enabled, an answer but a 200."""
        if not self.enabled:
            raise NotServed()
        endpoint = client.meta.endpoint_url.rstrip("/")
        path = f"/{quote(bucket, safe='')}"
        params = {"list-type": "2", "encoding-type": "url", "max-keys": "1000"}
        while True:
            query = urlencode(sorted(params.items()), quote_via=quote, safe="-_.~")
            try:
                headers = self._signed(f"{endpoint}{path}?{query}", region)
                answer = self._pool(endpoint).urlopen("GET", f"{path}?{query}", headers=headers, redirect=False,
                                                      retries=False)
            except (urllib3.exceptions.HTTPError, OSError, BotoCoreError, ValueError) as exc:
                raise NotServed() from exc
            if answer.status != 200:
                raise NotServed()
            try:
                root = ElementTree.fromstring(answer.data)
            except ElementTree.ParseError as exc:
                raise NotServed() from exc
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            decode = root.findtext(f"{ns}EncodingType") == "url"
            for contents in root.iter(f"{ns}Contents"):
                key = contents.findtext(f"{ns}Key") or ""
                etag = _unquoted(contents.findtext(f"{ns}ETag"))
                yield ObjectInfo(key=unquote_plus(key) if decode else key, size=int(contents.findtext(f"{ns}Size") or 0),
                                 hash=etag, md5=_md5_of(etag))
            token = root.findtext(f"{ns}NextContinuationToken")
            if root.findtext(f"{ns}IsTruncated") != "true" or not token:
                return
            params["continuation-token"] = token

    def _signed(self, url: str, region: str) -> dict[str, str]:
        request = AWSRequest(method="GET", url=url)
        S3SigV4Auth(self._frozen_credentials(), "s3", region).add_auth(request)
        return dict(request.headers.items())

    def _frozen_credentials(self) -> Any:
        with self._lock:
            if self._credentials is None:
                found = botocore.session.Session(profile=self._profile).get_credentials()
                if found is None:
                    raise BotoCoreError()
                # Credentials that never refresh are frozen once; others are asked each time (refreshed when due).
                self._credentials = found if hasattr(found, "refresh_needed") else found.get_frozen_credentials()
        credentials = self._credentials
        return credentials.get_frozen_credentials() if hasattr(credentials, "refresh_needed") else credentials

    def _pool(self, endpoint: str) -> urllib3.HTTPConnectionPool:
        with self._lock:
            pool = self._pools.get(endpoint)
            if pool is None:
                bundle = os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)
                tls = {"ca_certs": bundle, "cert_reqs": "CERT_REQUIRED"} if endpoint.startswith("https:") else {}
                pool = self._pools[endpoint] = urllib3.connection_from_url(
                    endpoint, maxsize=self._workers, timeout=urllib3.Timeout(connect=5, read=60), **tls)
            return pool


class NotServed(Exception):
    """A request the client must make instead."""


def _plain_key(key: str) -> bool:
    """Whether a URL carries ``key`` exactly: no empty or dot segments a client could fold."""
    return "//" not in key and not any(segment in (".", "..") for segment in key.split("/"))


def _streamed(answer: Any, what: str) -> Iterator[bytes]:
    """An answer's body as it comes; a connection dropped while reading is transient (copied again)."""
    try:
        yield from answer.stream(CHUNK_SIZE, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientError(f"{what}: the connection dropped while reading ({exc})") from exc


def _chunks(body: Any, what: str) -> Iterator[bytes]:
    """The body's bytes; a connection dropped or a body cut short while reading is transient (the
    object is copied again, afresh), any other failure translated like any call's."""
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    except FailoverError:
        raise
    except (*DROPPED, IncompleteReadError, OSError) as exc:
        raise TransientError(f"{what}: the connection dropped while reading ({exc})") from exc
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, what) from exc


def _md5_of(etag: str | None, encryption: str | None = None) -> str | None:
    """The content's MD5 when the ETag is one: a single-part upload, not encrypted with KMS."""
    if etag and _PLAIN_MD5.fullmatch(etag) and encryption not in _OPAQUE_ETAG_ENCRYPTION:
        return etag
    return None


def _unquoted(etag: str | None) -> str | None:
    return etag.strip('"').lower() if etag else None
