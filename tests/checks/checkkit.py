"""Helpers of the readiness check tests: real target peers (a ``moto_server`` process for
compute and as the source of replicated buckets, Azurite for storage, PowerDNS for DNS),
started once per test module (tests/checks/conftest.py), and per test a ``failover.yaml``
of its own, a state store in ``tmp_path``, hand-made snapshots and a way to run one check.

Every test gets its own container prefix, bucket and zone names: the emulators outlive a test.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from targetkit import database, node  # noqa: F401 - re-exported for the tests

from failover.checks.base import CHECKS, CheckContext, CheckResult
from failover.checks.runner import run_one
from failover.config import Config, load_config
from failover.manifest import Bucket, DnsZone, Manifest, Record, SourceInfo
from failover.state import StateStore
from failover.targets import Targets
from failover.testing.emulators import Azurite, PowerDns
from failover.testing.servers import MotoServer

SERVICE = "social-app"
TARGET = "fallback"
EC2_SHIM = "failover.testing.ec2_shim:MotoEC2NodeDriver"
# The variables the test configs' ${env:...} references name.
SECRETS = {"compute": "CHECK_TEST_COMPUTE_SECRET", "storage": "CHECK_TEST_AZURE_KEY", "dns": "CHECK_TEST_PDNS_KEY"}
_names = itertools.count(1)


@dataclass(frozen=True)
class Peers:
    moto: MotoServer  # the target's compute (EC2), and the source's S3 for replication
    azurite: Azurite
    pdns: PowerDns


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def ago(**delta: float) -> str:
    """An ISO-8601 UTC time this long ago: ``ago(hours=3)``."""
    return iso(datetime.now(UTC) - timedelta(**delta))


def bucket(name: str, objects: int, size: int = 0) -> Bucket:
    return Bucket(id=name, name=name, region="us-east-1", tags={}, objects=objects, bytes=size, versioning=False)


def zone(name: str, *records: tuple[str, str, int | None, list[str]], private: bool = False) -> DnsZone:
    return DnsZone(id=f"Z-{name}", name=name, region="global", private=private,
                   records=[Record(name=n, type=t, ttl=ttl, values=list(v)) for n, t, ttl, v in records])


def manifest(*resources: Any, taken_at: str | None = None) -> Manifest:
    source = SourceInfo(provider="aws", account="123456789012", regions=["us-east-1"])
    return Manifest(service=SERVICE, taken_at=taken_at or ago(minutes=5), source=source, resources=list(resources))


class Kit:
    """One test's config, state store and target profile on the shared peers."""

    def __init__(self, directory: Path, peers: Peers, monkeypatch: pytest.MonkeyPatch) -> None:
        self.directory = directory
        self.peers = peers
        self.monkeypatch = monkeypatch
        self.unique = f"c{next(_names)}x{os.getpid()}"
        self.prefix = f"{self.unique}-"
        for capability, value in self.secret_values().items():
            monkeypatch.setenv(SECRETS[capability], value)
        monkeypatch.delenv("FAILOVER_CONFIG", raising=False)  # fake AWS credentials: the kit fixture's aws_env
        self._store: StateStore | None = None
        self.config = self.write()

    # -- the config ------------------------------------------------------------------------
    def secret_values(self) -> dict[str, str]:
        # moto takes any secret; a long one, so that redacting it never touches other words
        return {"compute": "moto-compute-secret-1234", "storage": self.peers.azurite.driver_options["secret"],
                "dns": self.peers.pdns.api_key}

    def compute(self, **changes: Any) -> dict[str, Any]:
        options = {"key": "testing", "secret": f"${{env:{SECRETS['compute']}}}", "host": "127.0.0.1",
                   "port": self.peers.moto.port, "secure": False}
        return {"driver": EC2_SHIM, "options": options, "location": "us-east-1a", **changes}

    def storage(self, **changes: Any) -> dict[str, Any]:
        options = {**self.peers.azurite.driver_options, "secret": f"${{env:{SECRETS['storage']}}}"}
        return {"driver": "azure_blobs", "options": options, "container_prefix": self.prefix, **changes}

    def dns(self, **changes: Any) -> dict[str, Any]:
        options = {**self.peers.pdns.driver_options, "key": f"${{env:{SECRETS['dns']}}}"}
        return {"driver": "powerdns", "options": options, **changes}

    def profile(self, **changes: Any) -> dict[str, Any]:
        return {"compute": self.compute(), "storage": self.storage(), "dns": self.dns(), **changes}

    def write(self, profile: dict[str, Any] | None = None, readiness: dict[str, Any] | None = None) -> Config:
        """(Re)write failover.yaml and load it; a new file path each time, so that no
        adapter (and its cached catalogues) of an earlier version is reused."""
        data: dict[str, Any] = {
            "service": SERVICE, "state": str(self.directory / "state"),
            "source": {"regions": ["us-east-1"], "select": {"tags": {"service": SERVICE}}},
            "targets": {TARGET: self.profile() if profile is None else profile},
        }
        if readiness is not None:
            data["readiness"] = readiness
        path = self.directory / f"failover-{next(_names)}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        self.config = load_config(path)
        return self.config

    # -- the state -------------------------------------------------------------------------
    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.config.state_dir)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def snapshot(self, *resources: Any, taken_at: str | None = None) -> Manifest:
        built = manifest(*resources, taken_at=taken_at)
        self.store.save_snapshot(built)
        return built

    def context(self, playbook: str = "standard", vars: dict[str, str] | None = None,
                snapshot: str = "latest") -> CheckContext:
        info = built = None
        if self.store.snapshots(SERVICE):
            info, built = self.store.load_snapshot(SERVICE, snapshot)
        return CheckContext(config=self.config, target_name=TARGET, targets=Targets(self.config, TARGET),
                            store=self.store, playbook=playbook, vars=vars or {}, snapshot=info, manifest=built)

    def run(self, name: str, **context: Any) -> CheckResult:
        """One registered check, as ``failover check`` runs it (its errors become its failure)."""
        ctx = self.context(**context)
        cls = CHECKS.get(name)
        assert cls is not None, f"no check {name}"
        return run_one(cls, ctx, ctx.secret_values())

    @property
    def targets(self) -> Targets:
        return Targets(self.config, TARGET)

    # -- the source, for replication -------------------------------------------------------
    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.peers.moto.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def source_bucket(self, objects: dict[str, bytes]) -> str:
        """A bucket of this test's own on the source, holding ``objects``; its name."""
        name = f"media-{self.unique}"
        s3 = self.s3()
        s3.create_bucket(Bucket=name)
        for key, body in objects.items():
            s3.put_object(Bucket=name, Key=key, Body=body)
        return name

    def replicate(self, bucket_name: str) -> Any:
        """``replicate``'s engine, from the source's S3 into this test's target storage."""
        from failover.replicate.buckets import Replicator
        from providers.aws.objects import S3Objects
        from providers.aws.session import AwsSession

        session = AwsSession(endpoint_url=self.peers.moto.url, max_backoff=0.05, pool_size=4)
        replicator = Replicator(S3Objects(session), self.targets.storage, self.store, service=SERVICE,
                                target_name=TARGET, workers=4)
        return replicator.replicate([bucket_name])
