"""``failover check`` end to end: the real executable.

On an :class:`EmulatedWorld` (the sample service on a moto_server source; EC2 on a second
moto_server, Azurite and PowerDNS as the target, each behind a counting proxy), after
``inventory`` and ``replicate``: ready, still ready once the source is gone, never a
request that would change the target; and not ready, naming the cause, for a stale
snapshot, an unmappable node, refused credentials and a missing replica.

Without emulators: the input errors (exit 2), an unreachable target (a failed check,
exit 1, never 4), an invalid playbook, and a team's own check added through
``$FAILOVER_CHECK_MODULES``.

The zones are put on the target DNS here, as copy-dns-zones writes them, through the
target's DnsTarget (``replicate`` keeps them so where it mirrors zones); dns-mirror then
passes, or warns while no mirror is recorded.
"""

from __future__ import annotations

import base64
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml
from clikit import snapshot_taken

from failover.adapters import dns_target
from failover.config import DnsSpec
from failover.dnsnames import ZoneRename, read_zone, selected_zones
from failover.state import StateStore
from failover.testing.plugin import started_world
from failover.testing.servers import free_port
from failover.testing.world import SECRET_VARIABLES, CliResult, EmulatedWorld
from failover.zonecopy import zone_copy
from providers.libcloud.drivers import forget_adapters

SCHEMA = xmlschema.XMLSchema(Path(__file__).resolve().parents[1] / "checks" / "junit.xsd")
CHECKS = ["snapshot-age", "unsupported-acknowledged", "playbook-valid", "target-credentials", "target-location", "node-mapping",
          "tls-certificates", "replicas", "dns-mirror", "source-ttls", "database-dumps", "last-drill"]
BUCKET = "social-app-media"
READ_ONLY_METHODS = {"GET", "HEAD"}
WRONG_AZURE_KEY = base64.b64encode(b"a key Azurite never issued, 32+ bytes long").decode()
WRONG_PDNS_KEY = "wrong-pdns-api-key-0123"


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in document["checks"]}


def detail(document: dict[str, Any], name: str) -> str:
    return next(check["detail"] for check in document["checks"] if check["name"] == name)


# -- the emulated world ------------------------------------------------------------------------


def mirror_zones(world: EmulatedWorld) -> None:
    """The snapshot's zones on the target DNS as copy-dns-zones writes them (only what differs)."""
    with StateStore(world.state_dir) as store:
        _, manifest = store.load_snapshot(world.service, "latest")
    dns = dns_target(DnsSpec(driver="powerdns", options=world.pdns.driver_options))
    for zone in selected_zones(manifest, None):
        copy = zone_copy(zone, ZoneRename(None), ["SOA", "NS"])
        current = read_zone(dns, copy.domain)
        created = current.zone or dns.create_zone(copy.domain)
        for wanted in copy.sets.values():
            if not wanted.matches(current.sets.get((wanted.name, wanted.type))):
                dns.set_record(created, wanted.name, wanted.type, wanted.ttl, wanted.values)
    forget_adapters()


@pytest.fixture(scope="module")
def world() -> Iterator[EmulatedWorld]:
    # A latency of 1 ms puts a proxy in front of each target API, counting requests by method.
    with started_world(storage="azurite", latency_s=0.001) as built:
        taken = built.failover("inventory")
        assert taken.code == 0, taken.stderr
        replicated = built.failover("replicate", "--target", built.target)
        assert replicated.code == 0, replicated.stderr
        mirror_zones(built)
        yield built


def check(world: EmulatedWorld, *args: str, env: dict[str, str] | None = None) -> CliResult:
    """``failover check standard --target fallback --json ARGS``, asserting that it sent the
    target nothing but GET and HEAD requests (as the proxies in front of it counted them)."""
    for proxy in world.proxies.values():
        proxy.reset_stats()
    result = world.failover("check", "standard", "--target", world.target, "--json", *args, env=env)
    methods = {name: proxy.stats().by_method for name, proxy in world.proxies.items()}
    assert {method for counts in methods.values() for method in counts} <= READ_ONLY_METHODS, methods
    return result


def variant_config(world: EmulatedWorld, name: str, **profile_changes: Any) -> Path:
    """The world's config with changes to its target profile, sharing its state."""
    config = yaml.safe_load(world.config_path.read_text())
    config["state"] = str(world.state_dir)
    config["targets"][world.target].update(profile_changes)
    path = world.workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path




@pytest.mark.slow
def test_a_replicated_service_is_ready_with_and_without_the_source(world: EmulatedWorld) -> None:
    report = world.workdir / "readiness.xml"

    ready = check(world, "--junit-xml", str(report))

    assert ready.code == 0, ready.stdout + ready.stderr
    document = ready.json()  # exactly one JSON document on stdout
    assert list(document) == ["service", "target", "playbook", "snapshot", "checked_at", "ready", "counts", "checks"]
    assert (document["service"], document["target"], document["playbook"]) == ("social-app", "fallback", "standard")
    assert document["ready"] is True and document["snapshot"].startswith("snap-")
    assert [item["name"] for item in document["checks"]] == CHECKS
    assert all(set(item) == {"name", "status", "detail", "elapsed_s", "data"} for item in document["checks"])
    found = statuses(document)
    assert found.pop("last-drill") == "warn" and detail(document, "last-drill").startswith("never drilled")
    assert found.pop("dns-mirror") in ("pass", "warn")  # warns while replicate records no mirror
    assert set(found.values()) == {"pass"}, document
    assert document["counts"]["fail"] == 0
    objects = len(world.source_objects[BUCKET])
    assert f"(replica-{BUCKET}): {objects}/{objects} objects, " in detail(document, "replicas")
    assert detail(document, "database-dumps").startswith(f"orders-db: {world.dump_key} (")
    # People's text on stderr: the table and the verdict.
    assert "replicas" in ready.stderr and ready.stderr.rstrip().splitlines()[-1].startswith("ready")

    # Read-only: every target was asked (and check() saw only GET and HEAD).
    methods = {name: proxy.stats().by_method for name, proxy in world.proxies.items()}
    assert set(methods) == {"compute", "storage", "dns"}
    assert all(counts for counts in methods.values()), methods

    SCHEMA.validate(str(report))
    assert report.read_text().count("<testcase ") == len(CHECKS)

    world.source.stop()  # the AWS account is gone
    without_source = check(world)
    assert without_source.code == 0, without_source.stdout + without_source.stderr
    assert statuses(without_source.json()) == statuses(document)


@pytest.mark.slow
def test_a_stale_snapshot_is_not_ready(world: EmulatedWorld) -> None:
    with snapshot_taken(world, "2020-01-15T10:30:00Z"):
        stale = check(world)
    assert stale.code == 1, stale.stderr
    document = stale.json()
    assert document["ready"] is False and statuses(document)["snapshot-age"] == "fail"
    assert "older than readiness.max_snapshot_age (24.0h): run `failover inventory`" in detail(document, "snapshot-age")
    assert stale.stderr.rstrip().splitlines()[-1].startswith("NOT READY: ")


@pytest.mark.slow
def test_an_unmappable_node_is_not_ready(world: EmulatedWorld) -> None:
    config = variant_config(world, "no-such-size", sizes={"t3.medium": "no-such-size"})
    unmappable = check(world, "--config", str(config))
    assert unmappable.code == 1, unmappable.stderr
    document = unmappable.json()
    assert statuses(document)["node-mapping"] == "fail"
    text = detail(document, "node-mapping")
    assert text.startswith("2 of 5 nodes cannot be mapped: ")  # 4 nodes and the database node of orders-db
    assert "web-1 (i-" in text and "web-2 (i-" in text and "worker-1" not in text
    assert "sizes override t3.medium: 'no-such-size' names no size the target offers" in text


@pytest.mark.slow
def test_refused_credentials_are_a_failed_check_naming_the_capability_never_the_secret(world: EmulatedWorld) -> None:
    wrong = {SECRET_VARIABLES["storage"]: WRONG_AZURE_KEY, SECRET_VARIABLES["dns"]: WRONG_PDNS_KEY}
    report = world.workdir / "refused.xml"
    refused = check(world, "--junit-xml", str(report), env=wrong)
    assert refused.code == 1, refused.stderr  # not 4: for check, a refusing provider is a failed check
    document = refused.json()
    found = statuses(document)
    assert found["target-credentials"] == "fail"
    text = detail(document, "target-credentials")
    assert text.startswith("storage: storage target (azure_blobs): ") and "credentials refused" in text
    assert "; dns: dns target (powerdns): " in text and "compute ok" in text
    assert found["replicas"] == found["dns-mirror"] == found["database-dumps"] == "fail"  # they could not read
    everything = refused.stdout + refused.stderr + report.read_text()
    for secret in wrong.values():
        assert secret not in everything
    SCHEMA.validate(str(report))


@pytest.mark.slow
def test_a_missing_replica_is_not_ready(world: EmulatedWorld) -> None:
    """Last in this module: it deletes the bucket's replica (the source is gone by now)."""
    driver = world.storage_driver()
    container = driver.get_container(world.container_name(BUCKET))
    for item in driver.list_container_objects(container):
        driver.delete_object(item)
    driver.delete_container(container)

    missing = check(world)
    assert missing.code == 1, missing.stderr
    document = missing.json()
    assert {name for name, status in statuses(document).items() if status == "fail"} == {"replicas"}
    assert detail(document, "replicas") == (f"bucket {BUCKET} (replica-{BUCKET}): no container replica-{BUCKET} "
                                            "on the target: run `failover replicate`")


# -- without emulators ---------------------------------------------------------------------------

SECRET = "a-pdns-secret-never-shown-42"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose only target, a PowerDNS API, does not answer; no snapshot yet."""
    monkeypatch.setenv("CHECK_CLI_PDNS_KEY", SECRET)
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)
    config = {
        "service": "social-app", "state": ".failover",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
        "targets": {"fallback": {"dns": {"driver": "powerdns", "options": {
            "key": "${env:CHECK_CLI_PDNS_KEY}", "host": "127.0.0.1", "port": free_port(), "secure": False,
            "api_version": "v1"}}}},
    }
    (tmp_path / "failover.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


@pytest.mark.parametrize(("args", "expected"), [
    (["standard", "--target", "nope"], "failover.yaml: targets.nope: no such target profile (known: fallback)"),
    (["standard", "--target", "fallback", "--var", "novalue"], "arguments: --var: 'novalue' is not KEY=VALUE"),
    (["missing.yaml", "--target", "fallback"], "missing.yaml: no such playbook file, nor a built-in playbook"),
    (["no-such-builtin", "--target", "fallback"], "no-such-builtin: no such playbook file, nor a built-in playbook"),
    (["standard", "--target", "fallback", "--snapshot", "snap-nope"], "snapshot: snap-nope: no snapshot of social-app"),
    (["standard", "--target", "fallback", "--junit-xml", "gone/r.xml"], "arguments: --junit-xml: directory gone"),
    (["--target", "fallback"], "Missing argument"),
])
def test_invalid_input_exits_2_before_any_check(offline: Path, failover, args: list[str], expected: str) -> None:
    result = failover("check", *args, "--json")
    assert result.code == 2, result.stderr
    assert expected in result.stderr
    assert result.stdout == ""


def test_an_invalid_config_exits_2(offline: Path, failover) -> None:
    path = offline / "failover.yaml"
    path.write_text(path.read_text() + "readiness: {rpo: soon}\n")
    result = failover("check", "standard", "--target", "fallback")
    assert result.code == 2
    assert "failover.yaml:" in result.stderr and "readiness.rpo: 'soon' is not a duration" in result.stderr


def test_an_unreachable_target_and_no_snapshot_are_failed_checks(offline: Path, failover) -> None:
    result = failover("check", "standard", "--target", "fallback", "--json", "--junit-xml", "r.xml")
    assert result.code == 1, result.stderr  # never 4: an unreachable provider is a failed check
    document = json.loads(result.stdout)
    found = statuses(document)
    assert found["snapshot-age"] == found["target-credentials"] == "fail"
    assert found["playbook-valid"] == "pass"
    assert detail(document, "target-credentials").startswith("dns: dns target (powerdns): ")
    assert "provider unreachable (connection refused)" in detail(document, "target-credentials")
    assert f"NOT READY: {document['counts']['fail']} failed, " in result.stderr
    junit = (offline / "r.xml").read_text()
    SCHEMA.validate(str(offline / "r.xml"))
    assert SECRET not in result.stdout + result.stderr + junit


def test_an_invalid_playbook_is_the_failed_check_playbook_valid(offline: Path, failover) -> None:
    (offline / "bad.yaml").write_text("name: bad\nsteps:\n  - id: x\n    action: no-such-action\n")
    result = failover("check", "bad.yaml", "--target", "fallback", "--json")
    assert result.code == 1
    document = json.loads(result.stdout)
    assert statuses(document)["playbook-valid"] == "fail"
    assert "bad.yaml:4: steps[0].action: unknown action 'no-such-action'" in detail(document, "playbook-valid")


def test_a_teams_own_check_joins_through_failover_check_modules(offline: Path, failover) -> None:
    (offline / "team_checks.py").write_text(textwrap.dedent("""
        from failover.checks.base import CHECKS, Check, warned

        @CHECKS.register("on-call-paged")
        class OnCallPaged(Check):
            summary = "Someone is on call."

            def run(self, ctx):
                return warned(f"nobody on call for {ctx.service} on {ctx.target_name}")
    """))
    env = {"FAILOVER_CHECK_MODULES": "team_checks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(offline), os.environ.get("PYTHONPATH")]))}
    result = failover("check", "standard", "--target", "fallback", "--json", env=env)
    document = json.loads(result.stdout)
    assert [item["name"] for item in document["checks"]] == [*CHECKS, "on-call-paged"]
    assert document["checks"][-1]["status"] == "warn"
    assert document["checks"][-1]["detail"] == "nobody on call for social-app on fallback"

    broken = failover("check", "standard", "--target", "fallback", env={**env, "FAILOVER_CHECK_MODULES": "nope_checks"})
    assert broken.code == 2
    assert "$FAILOVER_CHECK_MODULES: nope_checks: cannot import: ModuleNotFoundError" in broken.stderr
