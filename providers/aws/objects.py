"""S3 as a replication source: the current version of each object, listed and streamed.

Reads go through one ``AwsSession`` (one client per region, its connection pool sized to
the worker threads, each request retried when transient). ``probe`` is the exception:
one request on a client of its own, with a short timeout and no retries, because on
failover day it decides whether the source is still there and must not wait for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from failover.errors import FailoverError
from failover.ports import ObjectInfo, SourceObject
from providers.aws.inventory import HOME_REGION
from providers.aws.session import AwsSession, translate

CHUNK_SIZE = 1024 * 1024
PROBE_CONFIG = BotoConfig(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})

_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")
# Under these server-side encryptions an ETag is not the MD5 of the content.
_OPAQUE_ETAG_ENCRYPTION = {"aws:kms", "aws:kms:dsse"}


class S3Objects:
    """The objects of source buckets; ``bucket_regions`` says where each bucket lives
    (a bucket not in it is asked in us-east-1, and S3 redirects)."""

    def __init__(
        self, session: AwsSession, bucket_regions: dict[str, str] | None = None, *, profile: str | None = None
    ) -> None:
        self.session = session
        self.bucket_regions = dict(bucket_regions or {})
        self.profile = profile

    @classmethod
    def from_config(cls, config: Any, *, bucket_regions: dict[str, str], workers: int) -> S3Objects:
        source = config.source
        session = AwsSession(endpoint_url=source.endpoint_url, profile=source.profile, pool_size=workers)
        return cls(session, bucket_regions, profile=source.profile)

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
        for page in self.session.pages("s3", self._region(bucket), "list_objects_v2", Bucket=bucket):
            for item in page.get("Contents", []):
                etag = _unquoted(item.get("ETag"))
                yield ObjectInfo(key=item["Key"], size=int(item.get("Size", 0)), hash=etag, md5=_md5_of(etag),
                                 modified=item.get("LastModified"))

    def open(self, bucket: str, key: str) -> SourceObject | None:
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


def _chunks(body: Any, what: str) -> Iterator[bytes]:
    """The body's bytes, with a connection dropped while reading translated like any call's failure."""
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    except FailoverError:
        raise
    except (BotoCoreError, ClientError, OSError) as exc:
        raise translate(exc, what) from exc


def _md5_of(etag: str | None, encryption: str | None = None) -> str | None:
    """The content's MD5 when the ETag is one: a single-part upload, not encrypted with KMS."""
    if etag and _PLAIN_MD5.fullmatch(etag) and encryption not in _OPAQUE_ETAG_ENCRYPTION:
        return etag
    return None


def _unquoted(etag: str | None) -> str | None:
    return etag.strip('"').lower() if etag else None
