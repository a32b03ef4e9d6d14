"""The bucket copy path under faults, several seeds: ``failover replicate`` (the real executable,
``--json``) with a fault-injecting :class:`LatencyProxy` on the SOURCE side (moto S3: object GETs
and listing pages answered 503 SlowDown / 503 / 500, reset without an answer, or cut short in
their body) and, separately, on the TARGET side (Azurite: 503 ServerBusy, 500, resets, listing
pages cut short; moto S3 through libcloud's S3 driver: 503 SlowDown, 500, resets after the PUT
was stored, listings cut short); then one ``failover evacuate --deadline`` with faults on both
sides and one object the target refuses throughout, the source gone after the first pass: it
ends incomplete (exit 1) naming that object, and a later ``replicate`` copies that object alone.

What is checked, from the emulators themselves: exit 0 (a fault that outlived every retry is
exit 1 naming its key, never a traceback nor exit 4, and the next pass completes the copy); every
object on the target is the source's, byte for byte (size and MD5 as the emulator lists them, the
large and hostile ones read back whole); the state store records exactly what the target holds;
the faults were injected (the proxies' counts). Under each seed one side's copy is also run again
under the same faults (it copies nothing) and then checked with ``failover check`` while the
source's proxy is stopped (it passes); each side gets this under one of the seeds. Listing pages,
few per pass, are aimed at by a copy of their own whose faults hit only them (deterministic for
its seed).

One module-scoped bucket on one ``moto_server`` (the target's S3 containers live beside it) and one
Azurite; each copy in a workdir of its own (config, a snapshot planted in its state store). The
copies run one after the other: on two loaded cores, three at once took longer in all.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
import yaml

from failover.keytext import shown
from failover.manifest import Bucket, Manifest, SourceInfo, now_iso
from failover.state import StateStore
from failover.testing.emulators import Azurite
from failover.testing.proxy import LatencyProxy, ProxyStats
from failover.testing.servers import MotoServer
from failover.testing.world import failover_command

SERVICE = "social-app"
TARGET = "fallback"
BUCKET = "copyfaults-media"
SEEDS = (1, 2, 3)
SMALL = 200  # small objects, 100 B to 3 KB
LARGE = {"large/two-chunks.bin": 2 * 1024 * 1024 + 333_333, "large/three-chunks.bin": 3 * 1024 * 1024 + 17}
LONG_KEY = "long/" + "k" * 700 + ".txt"
CARRIED = (  # hostile names every target here holds under their own name
    "unicode/été ü ñ 漢字.txt", "spaces and + plus.txt", "percent%2Fslash%20.txt", "query?x=1&y=2#frag.txt",
    "<script>alert(1)</script>.html", "quote'\"`$(rm -rf ~).txt", "emoji 🎉/😀.txt", "semi;colon,comma=eq.txt",
    "~tilde/!bang*star(paren).txt", LONG_KEY,
)
REFUSED = ("esc\x1b[2Jkey.txt", "ctl\x01key.txt", "../escape.txt", "dir/./dot.txt")  # by every target
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
SECRET = "COPYFAULTS_STORAGE_SECRET"
CHECK_PLAYBOOK = "name: data\ndescription: the buckets' data only\nsteps:\n  - id: data\n    action: sync-buckets\n"


def s3_object_or_listing(method: str, path: str) -> bool:
    """An S3 object GET or a ListObjectsV2 page of the bucket (not the inventory's other calls)."""
    if method != "GET" or not path.startswith(f"/{BUCKET}"):
        return False
    query = path.partition("?")[2]
    return "list-type=2" in query or (not query and path.startswith(f"/{BUCKET}/"))


def listing_page(method: str, path: str) -> bool:
    """A page of a listing: S3's ListObjectsV2, Azure's List Blobs."""
    query = path.partition("?")[2]
    return method == "GET" and ("list-type=2" in query or "comp=list" in query)


@dataclass(frozen=True)
class Side:
    """Where a copy's faults are, and which (a proxy's fault options): the source is always reached
    through a proxy (stopped for ``check``), the target through one when it has faults."""

    name: str
    storage: str  # "azure" or "s3": the target's storage
    source_faults: dict[str, Any] = field(default_factory=dict)
    target_faults: dict[str, Any] | None = None


RATIOS = {"fail_ratio": 0.08, "reset_ratio": 0.04, "truncate_ratio": 0.06}
SOURCE_FAULTS = {**RATIOS, "fail_kinds": ("slowdown", "unavailable", "internal"), "fault_for": s3_object_or_listing}
AZURE_FAULTS = {**RATIOS, "fail_kinds": ("server-busy", "unavailable", "internal")}
S3_FAULTS = {**RATIOS, "reset_after_forward": True, "fail_kinds": ("slowdown", "internal")}
SIDES = (
    Side("source", "azure", source_faults=SOURCE_FAULTS),
    Side("azure", "azure", target_faults=AZURE_FAULTS),
    Side("s3", "s3", target_faults=S3_FAULTS),
)
# Only listing pages, on both sides, half of them cut short: the draws fall on them alone, in order.
LISTING_FAULTS = {"truncate_ratio": 0.5, "reset_ratio": 0.1, "fail_ratio": 0.1, "fail_kinds": ("slowdown", "server-busy"),
                  "fault_for": listing_page}
LISTINGS = Side("listings", "azure", source_faults=LISTING_FAULTS, target_faults=LISTING_FAULTS)
EVACUATE = Side("evacuate", "azure", source_faults=SOURCE_FAULTS, target_faults=AZURE_FAULTS)
LISTING_SEED, EVACUATE_SEED = 5, 7


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Variant:
    """One side's faults under one seed: its workdir (config, state), its proxies, what it ran and
    the faults each run met (``stats[run][\"source\"|\"target\"]``)."""

    side: Side
    workdir: Path
    source: LatencyProxy
    target: LatencyProxy | None  # None: the target reached directly
    prefix: str
    runs: dict[str, Ran] = field(default_factory=dict)
    stats: dict[str, dict[str, ProxyStats]] = field(default_factory=dict)

    @property
    def container(self) -> str:
        return f"{self.prefix}{BUCKET}"

    @property
    def proxies(self) -> dict[str, LatencyProxy]:
        return {"source": self.source, **({"target": self.target} if self.target is not None else {})}

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()


# -- the source bucket and its snapshot -----------------------------------------------------------


def s3_client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def source_objects(moto_server: MotoServer) -> dict[str, bytes]:
    """The tagged bucket on the source: small objects, two of several 1 MiB chunks, hostile keys."""
    draw = random.Random(16)
    objects = {f"small/{index:04d}-{draw.randrange(10**6)}.bin": draw.randbytes(draw.randrange(100, 3000))
               for index in range(SMALL)}
    objects |= {key: draw.randbytes(size) for key, size in LARGE.items()}
    objects |= {key: f"content of {key!r}".encode() for key in (*CARRIED, *REFUSED)}
    s3 = s3_client(moto_server.url)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "service", "Value": SERVICE}]})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: s3.put_object(Bucket=BUCKET, Key=item[0], Body=item[1]), objects.items()))
    listed = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
              for item in page.get("Contents", [])}
    assert listed == set(objects)  # moto holds every hostile key under its own name
    return objects


def run_cli(workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> Ran:
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("AWS_") and key != "FAILOVER_CONFIG"}
    proc = subprocess.run([*failover_command(), *args], cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env={**inherited, **AWS_ENV, **(env or {})}, check=False)
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def write_config(workdir: Path, source_url: str, storage: dict[str, Any]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "service": SERVICE, "state": ".failover",
        "source": {"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": SERVICE}},
                   "endpoint_url": source_url},
        "targets": {TARGET: {"storage": storage}},
    }
    path = workdir / "failover.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    (workdir / "data.yaml").write_text(CHECK_PLAYBOOK)
    return path


def plant_snapshot(workdir: Path, objects: dict[str, bytes]) -> None:
    """A snapshot of the source holding the bucket, stored as ``inventory`` stores one (taken now)."""
    bucket = Bucket(id=BUCKET, name=BUCKET, region="us-east-1", tags={"service": SERVICE}, objects=len(objects),
                    bytes=sum(len(body) for body in objects.values()), versioning=False)
    manifest = Manifest(service=SERVICE, taken_at=now_iso(), resources=[bucket],
                        source=SourceInfo(provider="aws", account="123456789012", regions=["us-east-1"]))
    with StateStore(workdir / ".failover") as store:
        store.save_snapshot(manifest)


def storage_spec(kind: str, host: str, port: int, prefix: str, azurite: Azurite) -> dict[str, Any]:
    if kind == "azure":
        options = {**azurite.driver_options, "host": host, "port": port, "secret": f"${{env:{SECRET}}}"}
    else:
        options = {"key": "testing", "secret": f"${{env:{SECRET}}}", "host": host, "port": port, "secure": False,
                   "region": "us-east-1"}
    return {"driver": "azure_blobs" if kind == "azure" else "s3", "options": options, "container_prefix": prefix}


def secret_env(kind: str, azurite: Azurite) -> dict[str, str]:
    return {SECRET: azurite.driver_options["secret"] if kind == "azure" else "testing"}


# -- what the target holds and what the state store says -----------------------------------------------


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def listed_on_target(kind: str, container: str, moto: MotoServer, azurite: Azurite) -> dict[str, tuple[int, str]]:
    """key -> (size, MD5) as the emulator lists what it stores, directly (no proxy): the MD5 is the
    emulator's own (moto's ETag of a PutObject; Azurite's Content-MD5, which it computes, or checks
    against the bytes it received and refuses them when they differ)."""
    if kind == "s3":
        s3 = s3_client(moto.url)
        return {item["Key"]: (item["Size"], item["ETag"].strip('"'))
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=container)
                for item in page.get("Contents", [])}
    driver = azure_driver(azurite)
    return {item.name: (item.size, item.extra["md5_hash"])
            for item in driver.list_container_objects(driver.get_container(container))}


def read_back(kind: str, container: str, keys: list[str], moto: MotoServer, azurite: Azurite) -> dict[str, str]:
    """key -> MD5 of the bytes the target gives back for it, read whole (no proxy)."""
    if kind == "s3":
        s3 = s3_client(moto.url)
        return {key: md5(s3.get_object(Bucket=container, Key=key)["Body"].read()) for key in keys}
    driver = azure_driver(azurite)
    return {key: md5(b"".join(driver.download_object_as_stream(driver.get_object(container, key)))) for key in keys}


def azure_driver(azurite: Azurite) -> Any:
    from libcloud.storage.providers import get_driver

    return get_driver("azure_blobs")(**azurite.driver_options)


def recorded(workdir: Path, container: str) -> dict[str, tuple[int, str]]:
    """key -> (size, MD5) as the state store recorded each copy."""
    with StateStore(workdir / ".failover") as store:
        return {key: (record.size, record.md5)
                for key, record in store.replica_objects(SERVICE, TARGET, container).items()}


def expected(objects: dict[str, bytes]) -> dict[str, str]:
    return {key: md5(body) for key, body in objects.items() if key not in REFUSED}


def bucket_row(document: dict[str, Any]) -> dict[str, Any]:
    [row] = document["buckets"]["items"]
    return row


# -- the runs ------------------------------------------------------------------------------------------


def variant_for(side: Side, seed: int, tmp_path_factory: pytest.TempPathFactory, moto: MotoServer, azurite: Azurite,
                objects: dict[str, bytes]) -> Variant:
    """A workdir (config, a snapshot) and the proxies of one side's faults under one seed, faults on."""
    source = LatencyProxy(moto.url, 0, **side.source_faults, seed=seed).start()
    upstream = f"http://127.0.0.1:{azurite.port}" if side.storage == "azure" else moto.url
    target = None
    if side.target_faults is not None:
        target = LatencyProxy(upstream, 0, **side.target_faults, seed=seed + 1000).start()
    port = int((target.url if target is not None else upstream).rsplit(":", 1)[1])
    prefix = f"f{seed}{side.name[0]}-"
    workdir = tmp_path_factory.mktemp(f"copyfaults-{seed}-{side.name}")
    write_config(workdir, source.url, storage_spec(side.storage, "127.0.0.1", port, prefix, azurite))
    plant_snapshot(workdir, objects)
    return Variant(side, workdir, source, target, prefix)


def met(variant: Variant) -> dict[str, ProxyStats]:
    """The faults each proxy injected since the last call (counters reset)."""
    stats = {name: proxy.stats() for name, proxy in variant.proxies.items()}
    for proxy in variant.proxies.values():
        proxy.reset_stats()
    return stats


def replicate(variant: Variant, azurite: Azurite, name: str) -> Ran:
    """``failover replicate --json`` under the variant's faults."""
    ran = variant.runs[name] = run_cli(variant.workdir, "replicate", "--target", TARGET, "--json", "-c",
                                       "failover.yaml", env=secret_env(variant.side.storage, azurite))
    variant.stats[name] = met(variant)
    return ran


def replicate_until_complete(variant: Variant, azurite: Azurite) -> None:
    """``first``; when a fault outlived every retry there (exit 1), ``completed``: the next pass."""
    if replicate(variant, azurite, "first").code == 1:
        replicate(variant, azurite, "completed")


def check_without_source(variant: Variant, azurite: Azurite) -> None:
    """``failover check`` with the source's proxy stopped (the account gone) and the target's faults off."""
    variant.source.stop()
    if variant.target is not None:
        variant.target.fail_ratio = variant.target.reset_ratio = variant.target.truncate_ratio = 0.0
    variant.runs["check"] = run_cli(variant.workdir, "check", "data.yaml", "--target", TARGET, "--json", "-c",
                                    "failover.yaml", env=secret_env(variant.side.storage, azurite))


def rotating(seed: int) -> Side:
    """The side whose copy is run again and checked under this seed: each side under one seed."""
    return SIDES[(seed - 1) % len(SIDES)]


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{seed}" for seed in SEEDS])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer,
           azurite: Azurite, source_objects: dict[str, bytes]) -> Iterator[dict[str, Variant]]:
    """For one seed, each side's faults in turn: ``replicate``; for the rotating side, ``replicate``
    again under the same faults, then ``check`` without the source."""
    seed = request.param
    variants: dict[str, Variant] = {}
    try:
        for offset, side in enumerate(SIDES):
            variant = variants[side.name] = variant_for(side, seed * 10 + offset, tmp_path_factory, moto_server,
                                                        azurite, source_objects)
            replicate_until_complete(variant, azurite)
            if side is rotating(seed):
                replicate(variant, azurite, "again")
                check_without_source(variant, azurite)
        yield variants
    finally:
        for variant in variants.values():
            variant.stop()


def assert_exit_0_or_named_key(ran: Ran, variant: Variant, objects: dict[str, bytes]) -> None:
    """Exit 0; or, when a fault outlived every retry, exit 1 naming the key it hit and a next pass
    that completes the copy. Never a traceback, never exit 4 (a fault is no unreachable provider)."""
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.code in (0, 1), ran.stderr
    if ran.code == 1:
        error = bucket_row(ran.json())["error"]
        assert error and any(key in error or shown(key) in error for key in objects), error
        assert variant.runs["completed"].code == 0, variant.runs["completed"].stderr
    else:
        row = bucket_row(ran.json())
        assert row["error"] is None and set(row["refused_keys"]) == set(REFUSED), row
        assert row["copied"] == len(objects) - len(REFUSED), row


def assert_copied_and_recorded(variant: Variant, objects: dict[str, bytes], moto: MotoServer, azurite: Azurite) -> None:
    """Every object the target can hold is there, its size and MD5 the source's (as the emulator lists
    them; the large and hostile ones also read back whole), and the state store records exactly those
    copies (size and MD5)."""
    kind, container = variant.side.storage, variant.container
    wanted = {key: (len(objects[key]), digest) for key, digest in expected(objects).items()}
    listed = listed_on_target(kind, container, moto, azurite)
    assert sorted(listed) == sorted(wanted)
    assert [key for key in wanted if listed[key] != wanted[key]] == []
    whole = [*LARGE, *CARRIED]
    assert read_back(kind, container, whole, moto, azurite) == {key: md5(objects[key]) for key in whole}
    assert recorded(variant.workdir, container) == wanted


def assert_rerun_copies_nothing(ran: Ran, objects: dict[str, bytes]) -> None:
    assert ran.code == 0, ran.stderr
    row = bucket_row(ran.json())
    assert (row["copied"], row["copied_bytes"], row["refused"]) == (0, 0, len(REFUSED)), row
    assert row["skipped"] == len(objects) - len(REFUSED), row


def assert_check_passes(check: Ran) -> None:
    assert check.code == 0, check.stderr
    replicas = next(item for item in check.json()["checks"] if item["name"] == "replicas")
    assert replicas["status"] == "warn", replicas  # the refused keys, counted toward the snapshot's
    assert f"{len(REFUSED)} object(s) with keys the target cannot hold were refused" in replicas["detail"], replicas


def assert_faults_met(stats: ProxyStats, *, cut: bool = False) -> None:
    """Failures answered, and connections reset or answers cut short (``cut``: some cut short)."""
    assert stats.failed > 0 and stats.resets + stats.truncated > 0, stats
    if cut:
        assert stats.truncated > 0, stats


@pytest.mark.slow
@pytest.mark.parametrize("side", [side.name for side in SIDES])
def test_replicate_under_faults_copies_every_object_and_records_only_good_copies(
        seeded: dict[str, Variant], side: str, source_objects: dict[str, bytes], moto_server: MotoServer,
        azurite: Azurite) -> None:
    variant = seeded[side]
    assert_exit_0_or_named_key(variant.runs["first"], variant, source_objects)
    faulty = "source" if variant.side.target_faults is None else "target"
    assert_faults_met(variant.stats["first"][faulty], cut=faulty == "source")  # GET bodies cut short
    assert variant.stats["first"]["source"].upstream_errors == 0
    assert_copied_and_recorded(variant, source_objects, moto_server, azurite)


@pytest.mark.slow
def test_a_rerun_under_the_same_faults_copies_nothing_and_check_passes_without_the_source(
        seeded: dict[str, Variant], source_objects: dict[str, bytes]) -> None:
    """Under each seed one side's copy (each side under one of the seeds) is run again, then checked."""
    [variant] = [variant for variant in seeded.values() if "again" in variant.runs]
    assert_rerun_copies_nothing(variant.runs["again"], source_objects)
    assert_check_passes(variant.runs["check"])


# -- listing pages cut short ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listings_cut(tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, azurite: Azurite,
                 source_objects: dict[str, bytes]) -> Iterator[Variant]:
    """A copy whose faults hit only listing pages, on both sides (the source's ListObjectsV2, Azure's List
    Blobs): half of them cut short, some reset or answered 503; then a re-run under the same faults."""
    variant = variant_for(LISTINGS, LISTING_SEED, tmp_path_factory, moto_server, azurite, source_objects)
    try:
        replicate_until_complete(variant, azurite)
        replicate(variant, azurite, "again")
        yield variant
    finally:
        variant.stop()


@pytest.mark.slow
def test_listing_pages_cut_short_or_reset_are_listed_again(
        listings_cut: Variant, source_objects: dict[str, bytes], moto_server: MotoServer, azurite: Azurite) -> None:
    variant = listings_cut
    assert_exit_0_or_named_key(variant.runs["first"], variant, source_objects)
    cut = {name: stats.truncated for name, stats in variant.stats["first"].items()}
    assert cut["source"] > 0 and cut["target"] > 0, variant.stats["first"]
    assert_copied_and_recorded(variant, source_objects, moto_server, azurite)
    assert_rerun_copies_nothing(variant.runs["again"], source_objects)


# -- evacuate --deadline under faults, on both sides ---------------------------------------------------


def blocked_key(objects: dict[str, bytes]) -> str:
    """The object the target refuses to store during the evacuation (every PUT of it answered 503 ServerBusy)."""
    return min(key for key in objects if key.startswith("small/"))


@pytest.fixture(scope="module")
def evacuated(tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, azurite: Azurite,
              source_objects: dict[str, bytes]) -> Iterator[tuple[Variant, Ran, list[dict[str, Any]]]]:
    """``failover evacuate --deadline 10m --json`` with the source's object GETs and listing pages and every
    request to Azurite under faults, and one object's every PUT refused (a proxy in front of the faulty
    one): its copy outlives every retry. Once the first pass is done the source's proxy stops (the account
    is gone), which ends the passes: the evacuation must end incomplete, naming that object. Then
    ``check`` (not ready); then, the source back (its faults too) and the object no longer refused,
    ``replicate`` (it copies that object alone) and ``check`` again (ready)."""
    variant = variant_for(EVACUATE, EVACUATE_SEED, tmp_path_factory, moto_server, azurite, source_objects)
    path = "/" + quote(f"{variant.container}/{blocked_key(source_objects)}")
    blocker = LatencyProxy(variant.target.url, 0, fail_ratio=1.0, fail_kinds=("server-busy",),
                           fault_for=lambda method, sent: method == "PUT" and sent.split("?")[0].endswith(path)).start()
    source_port = int(variant.source.url.rsplit(":", 1)[1])
    write_config(variant.workdir, variant.source.url, storage_spec(
        "azure", "127.0.0.1", int(blocker.url.rsplit(":", 1)[1]), variant.prefix, azurite))
    try:
        inherited = {key: value for key, value in os.environ.items()
                     if not key.startswith("AWS_") and key != "FAILOVER_CONFIG"}
        process = subprocess.Popen(
            [*failover_command(), "evacuate", "--target", TARGET, "--deadline", "10m", "--json", "-c", "failover.yaml"],
            cwd=variant.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**inherited, **AWS_ENV, **secret_env("azure", azurite)})
        events: list[dict[str, Any]] = []
        try:
            for line in process.stdout:
                events.append(json.loads(line))
                if events[-1]["event"] == "pass_done" and events[-1]["pass"] == 1:
                    variant.stats["evacuate"] = {**met(variant), "blocker": blocker.stats()}
                    variant.source.stop()  # the account is gone: the passes end
            process.wait(timeout=240)
            ran = Ran(process.returncode, "", process.stderr.read())
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            process.stdout.close()
            process.stderr.close()
        variant.runs["evacuated"] = ran
        variant.stats["after-evacuate"] = {"target": listed_on_target("azure", variant.container, moto_server, azurite),
                                           "records": recorded(variant.workdir, variant.container)}
        check_without_source(variant, azurite)
        variant.runs["not-ready"] = variant.runs.pop("check")
        # The source back on its port, under faults again; the target's faults on, the object no longer refused.
        variant.source = LatencyProxy(moto_server.url, 0, port=source_port, **SOURCE_FAULTS, seed=EVACUATE_SEED + 1)
        variant.source.start()
        for name, ratio in RATIOS.items():
            setattr(variant.target, name, ratio)
        blocker.fail_ratio = 0.0
        replicate(variant, azurite, "again")
        check_without_source(variant, azurite)
        yield variant, ran, events
    finally:
        variant.stop()
        blocker.stop()


@pytest.mark.slow
def test_evacuate_under_faults_ends_incomplete_naming_what_outlived_the_retries_and_records_only_good_copies(
        evacuated: tuple[Variant, Ran, list[dict[str, Any]]], source_objects: dict[str, bytes],
        moto_server: MotoServer, azurite: Azurite) -> None:
    variant, ran, events = evacuated
    blocked = blocked_key(source_objects)
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.code == 1, ran.stderr
    summary = events[-1]
    assert summary["event"] == "summary" and summary["ok"] is False and summary["complete"] is False, summary
    assert summary["stopped_by"] == "source_gone", summary
    [row] = summary["buckets"]
    # That object, and any other whose copy a random fault made outlive its retries too (rare), named.
    failed = set(row["failed_keys"])
    assert blocked in failed, row  # its last attempt's error: the PUT's 503 ServerBusy, or a source fault before it
    assert summary["missing"] == [{"bucket": BUCKET, "objects": len(failed),
                                   "bytes": sum(len(source_objects[key]) for key in failed)}], summary
    assert row["copied"] == len(source_objects) - len(REFUSED) - len(failed), row
    assert set(row["refused_keys"]) == set(REFUSED), row
    assert_faults_met(variant.stats["evacuate"]["source"], cut=True)
    assert_faults_met(variant.stats["evacuate"]["target"])
    assert variant.stats["evacuate"]["blocker"].failed > 0  # that object's PUTs, each refused

    # What the target holds is what is recorded: every other object, the source's, byte for byte.
    wanted = {key: (len(source_objects[key]), digest) for key, digest in expected(source_objects).items()
              if key not in failed}
    assert variant.stats["after-evacuate"] == {"target": wanted, "records": wanted}
    not_ready = variant.runs["not-ready"]
    assert not_ready.code == 1 and "Traceback" not in not_ready.stderr, not_ready.stderr
    assert next(item for item in not_ready.json()["checks"] if item["name"] == "replicas")["status"] == "fail"

    # replicate, the source back under faults: evacuate's records are its own; it copies what failed alone.
    again = variant.runs["again"]
    assert again.code == 0, again.stderr
    row = bucket_row(again.json())
    assert (row["copied"], row["skipped"], row["refused"]) == (len(failed), len(wanted), len(REFUSED)), row
    assert_copied_and_recorded(variant, source_objects, moto_server, azurite)
    assert_check_passes(variant.runs["check"])
