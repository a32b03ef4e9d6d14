"""``failover.replicate.replicate``, the whole pass as a library call, in-process and without
the CLI: the source a ``moto_server`` process snapshotted by ``take_snapshot``, the target
local disk (buckets, dumps) and a real PowerDNS (zones), the dump taken from a real
PostgreSQL. What is checked is the result object and the emulators' state afterwards."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from failover.config import Config, load_config
from failover.engine.lock import ServiceLock
from failover.errors import InputError, LockHeld
from failover.inventory import take_snapshot
from failover.naming import DUMPS_BUCKET
from failover.replicate import PARTS, ReplicateProgress, ReplicateResult, replicate
from failover.replicate.buckets import CopyProgress
from failover.state import StateStore
from failover.testing.emulators import EmulatorMissing, PowerDns
from failover.testing.postgres import LocalPostgres
from failover.testing.servers import MotoServer

TAGS = [{"Key": "service", "Value": "social-app"}]
BUCKET, ZONE, DATABASE = "media", "shop.example.", "orders-db"
OBJECTS = {"index.html": b"<h1>hello</h1>", "img/logo one.png": bytes(range(256)) * 40}
RECORDS = {("www.shop.example.", "A"): ["192.0.2.10"], ("shop.example.", "TXT"): ['"v=spf1 -all"']}


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(log=tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[LocalPostgres]:
    server = LocalPostgres().start()
    yield server
    server.stop()


@pytest.fixture
def powerdns(monkeypatch: pytest.MonkeyPatch) -> Iterator[PowerDns]:
    try:
        server = PowerDns(api_key="library-test-key").start()
    except EmulatorMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    monkeypatch.setenv("PDNS_KEY", server.api_key)
    yield server
    server.stop()


@pytest.fixture
def source(moto_server: MotoServer, aws_env: None) -> Callable[[str], Any]:
    """The sample account, emptied: a tagged bucket, a tagged zone and a tagged RDS instance."""
    moto_server.reset()

    def client(service: str) -> Any:
        return boto3.session.Session().client(service, region_name="us-east-1", endpoint_url=moto_server.url)

    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": TAGS})
    for key, body in OBJECTS.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    route53 = client("route53")
    zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference="library")["HostedZone"]["Id"].split("/")[-1]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, AddTags=TAGS)
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": type, "TTL": 300,
                                                   "ResourceRecords": [{"Value": value} for value in values]}}
        for (name, type), values in RECORDS.items()
    ]})
    client("rds").create_db_instance(
        DBInstanceIdentifier=DATABASE, Engine="postgres", EngineVersion="15.4", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="not-used-1", Tags=TAGS,
    )
    return client


@pytest.fixture
def config(tmp_path: Path, moto_server: MotoServer, powerdns: PowerDns, postgres: LocalPostgres,
           monkeypatch: pytest.MonkeyPatch) -> Config:
    postgres.recreate("orders")
    postgres.sql("orders", "CREATE TABLE orders (id int PRIMARY KEY, item text)")
    postgres.sql("orders", "INSERT INTO orders VALUES (1, 'tea'), (2, 'coffee')")
    monkeypatch.setenv("ORDERS_DB_DSN", postgres.dsn("orders"))
    (tmp_path / "replicas").mkdir()
    document = {
        "service": "social-app", "state": ".failover",
        "source": {"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}},
                   "endpoint_url": moto_server.url},
        "targets": {"fallback": {
            "storage": {"driver": "local", "options": {"key": str(tmp_path / "replicas")},
                        "container_prefix": "replica-"},
            "dns": {"driver": "powerdns", "options": {**powerdns.driver_options, "key": "${env:PDNS_KEY}"}},
        }},
        "databases": {DATABASE: {"dsn": "${env:ORDERS_DB_DSN}", "keep": 2}},
    }
    path = tmp_path / "failover.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_config(path)


@pytest.fixture
def store(config: Config, source: Any) -> Iterator[StateStore]:
    """The config's state store, holding a snapshot of the source."""
    with StateStore(config.state_dir) as opened:
        take_snapshot(config, opened)
        yield opened


class Recorder(ReplicateProgress):
    """Every progress event of a pass, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.copies: list[CopyProgress] = []

    @contextmanager
    def bucket(self, name: str) -> Iterator[None]:
        self.events.append(("bucket", name))
        yield

    def copied(self, progress: CopyProgress) -> None:
        self.copies.append(progress)

    @contextmanager
    def transfer(self, name: str) -> Iterator[Callable[[int], None]]:
        self.events.append(("transfer", name))
        yield lambda done: self.events.append(("sent", done))


def pdns_records(powerdns: PowerDns) -> dict[tuple[str, str], list[str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{powerdns.api_port}/api/v1/servers/localhost/zones/{ZONE}",
                                     headers={"X-API-Key": powerdns.api_key})
    with urllib.request.urlopen(request) as answer:
        zone = json.load(answer)
    return {(rrset["name"], rrset["type"]): sorted(record["content"] for record in rrset["records"])
            for rrset in zone["rrsets"] if rrset["type"] not in ("SOA", "NS")}


def stored(tmp_path: Path, bucket: str) -> dict[str, bytes]:
    root = tmp_path / "replicas" / f"replica-{bucket}"
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_a_whole_pass_in_process_returns_its_parts_and_a_second_pass_copies_nothing(
    config: Config, store: StateStore, powerdns: PowerDns, tmp_path: Path
) -> None:
    progress = Recorder()

    first = replicate(config, "fallback", store=store, progress=progress)

    assert isinstance(first, ReplicateResult) and first.ok and first.failures == []
    assert (first.service, first.target, list(first.parts)) == ("social-app", "fallback", list(PARTS))
    [bucket] = first.parts["buckets"].items
    assert (bucket["bucket"], bucket["container"], bucket["objects"], bucket["copied"], bucket["error"]) == (
        BUCKET, "replica-media", 2, 2, None)
    assert bucket["copied_bytes"] == sum(map(len, OBJECTS.values())) == first.parts["buckets"].totals["bytes"]
    assert stored(tmp_path, BUCKET) == OBJECTS
    [zone] = first.parts["zones"].items
    assert (zone["zone"], zone["written"], zone["created_zone"], zone["error"]) == (ZONE, 2, True, None)
    assert pdns_records(powerdns) == {key: sorted(values) for key, values in RECORDS.items()}
    [dump] = first.parts["databases"].items
    assert dump["database"] == DATABASE and dump["error"] is None and dump["bytes"] > 0
    assert (tmp_path / "replicas" / f"replica-{DUMPS_BUCKET}" / dump["key"]).read_bytes().startswith(b"PGDMP")
    assert [record.key for record in store.dumps("social-app", "fallback", DATABASE)] == [dump["key"]]
    assert ("bucket", BUCKET) in progress.events and ("transfer", f"{DATABASE} (dump)") in progress.events
    assert progress.copies and progress.copies[-1].objects_done == 2
    document = first.to_dict()  # the CLI's --json document
    assert json.loads(json.dumps(document)) == document
    assert list(document) == ["service", "target", "snapshot", "started_at", "finished_at", "elapsed_s", "parts", "ok",
                              *PARTS]
    assert document["buckets"] == {"items": [bucket], "totals": first.parts["buckets"].totals}

    second = replicate(config, "fallback", store=store, only=["buckets,zones"])

    assert second.ok and list(second.parts) == ["buckets", "zones"]
    assert (second.parts["buckets"].items[0]["copied"], second.parts["buckets"].items[0]["skipped"]) == (0, 2)
    assert (second.parts["zones"].items[0]["written"], second.parts["zones"].items[0]["unchanged"]) == (0, 2)


def test_bad_input_raises_before_anything_is_written(config: Config, store: StateStore, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no bucket nope in snapshot"):
        replicate(config, "fallback", store=store, buckets=["nope"])
    with pytest.raises(InputError, match="only means something with --delete"):
        replicate(config, "fallback", store=store, force=True)
    with pytest.raises(InputError, match="no part 'tables'"):
        replicate(config, "fallback", store=store, only=["tables"])

    assert list((tmp_path / "replicas").iterdir()) == []
    assert store.dumps("social-app", include_pruned=True) == []


def test_a_pass_holds_the_service_lock(config: Config, store: StateStore, tmp_path: Path) -> None:
    lock = ServiceLock(store, "social-app")
    lock.acquire("run-elsewhere")
    try:
        with pytest.raises(LockHeld):
            replicate(config, "fallback", store=store)
    finally:
        lock.release("run-elsewhere")
    assert list((tmp_path / "replicas").iterdir()) == []


def test_a_lock_left_by_a_dead_process_is_taken_over_and_the_progress_observer_told(
    config: Config, store: StateStore
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid exists no more
    with store.transaction() as db:
        db.execute("INSERT INTO locks (service, run_id, host, pid, process_started, since) VALUES (?, ?, ?, ?, ?, ?)",
                   ("social-app", "run-crashed", socket.gethostname(), gone.pid, "1", "2026-01-01T00:00:00Z"))
    told: list[tuple[str, str]] = []

    class Observer(ReplicateProgress):
        def lock_taken_over(self, service: str, holder: str) -> None:
            told.append((service, holder))

    result = replicate(config, "fallback", store=store, only=["zones"], progress=Observer())

    assert result.ok and list(result.parts) == ["zones"]
    assert [(service, holder.split(" (")[0]) for service, holder in told] == [("social-app", "run run-crashed")]
    assert ServiceLock(store, "social-app").holder() is None  # released after the pass
