from __future__ import annotations

from pathlib import Path

import pytest

from failover.config import load_config, parse_duration, resolve_secrets
from failover.errors import ConfigError

GOOD = """\
service: social-app
state: .failover
source:
  provider: aws
  regions: [us-east-1, eu-west-1]
  select:
    tags: {service: social-app}
targets:
  fallback:
    compute: {driver: digitalocean, location: fra1, options: {key: "${env:DO_TOKEN}"}}
    storage: {driver: azure_blobs, options: {key: acct, secret: "${env:AZ_KEY}"}, container_prefix: "replica-"}
    dns: {driver: powerdns, options: {key: "${env:PDNS_KEY}", host: 10.0.0.2, port: 8081}}
    sizes: {t3.medium: s-2vcpu-4gb}
    images: {ami-0abc: ubuntu-22-04-x64}
databases:
  orders-db: {dsn: "${env:ORDERS_DB_DSN}"}
readiness: {max_snapshot_age: 24h, rpo: 1h, rto: 30m, max_ttl: 300}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "failover.yaml"
    path.write_text(text)
    return path


def test_the_design_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.service == "social-app"
    assert config.source.regions == ["us-east-1", "eu-west-1"]
    assert config.targets["fallback"].storage.container_prefix == "replica-"
    assert config.readiness.max_snapshot_age == 86400
    assert config.readiness.rto == 1800
    assert config.state_dir == (tmp_path / ".failover").resolve()
    # secrets stay references in the loaded config
    assert config.targets["fallback"].compute.options["key"] == "${env:DO_TOKEN}"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("FAILOVER_CONFIG", str(path))
    assert load_config(None).path == path


def test_secrets_resolve_at_call_time_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DO_TOKEN", "s3cr3t")
    assert resolve_secrets({"key": "${env:DO_TOKEN}", "n": 1}) == {"key": "s3cr3t", "n": 1}
    monkeypatch.delenv("DO_TOKEN")
    with pytest.raises(ConfigError) as info:
        resolve_secrets({"key": "${env:DO_TOKEN}"}, field="targets.fallback.compute.options")
    assert "DO_TOKEN is not set" in str(info.value)
    assert "targets.fallback.compute.options.key" in str(info.value)


@pytest.mark.parametrize(
    "text, where, message",
    [
        (GOOD.replace("service: social-app\n", "service: Social App\n"), "failover.yaml:1: service", "String should match"),
        (GOOD.replace("  regions: [us-east-1, eu-west-1]\n", "  regions: []\n"), "failover.yaml:5: source.regions", "at least 1"),
        (GOOD.replace("us-east-1, eu-west-1", "us-east-1, mars-1"), "failover.yaml:5: source.regions", "not an AWS region: mars-1"),
        (GOOD.replace("    tags: {service: social-app}", "    tagz: {service: social-app}"), "failover.yaml:7: source.select.tagz", "unknown key"),
        (GOOD.replace("driver: digitalocean", "driver: 'digital ocean'"), "failover.yaml:10: targets.fallback.compute.driver", "neither a libcloud"),
        (GOOD.replace('"${env:DO_TOKEN}"', '"${DO_TOKEN}"'), "failover.yaml:10: targets.fallback.compute.options", "not a secret reference"),
        (GOOD.replace("rpo: 1h", "rpo: soon"), "failover.yaml:17: readiness.rpo", "not a duration"),
        (GOOD.replace("source:\n  provider: aws\n", "source:\n  provider: gcp\n"), "failover.yaml:4: source.provider", "'aws'"),
        (GOOD.replace("state: .failover\n", "state: .failover\nservice: again\n"), "failover.yaml:3: service", "duplicate key"),
        ("service: [unclosed\n", "failover.yaml:2", "invalid YAML"),
        ("- just\n- a list\n", "failover.yaml:1", "expected a mapping"),
        ("a: &x [1]\nb: *x\n", "failover.yaml:2", "aliases are not allowed"),
        (GOOD.replace("port: 8081}}", "port: 8081}, nameservers: [ns1.example.net, 'not a host']}"),
         "failover.yaml:12: targets.fallback.dns.nameservers", "'not a host' is not a host name"),
    ],
    ids=["service-pattern", "no-regions", "bad-region", "unknown-key", "driver-name", "bad-secret-ref", "duration",
         "provider", "duplicate-key", "invalid-yaml", "not-mapping", "alias", "nameserver"],
)
def test_bad_config_names_file_line_and_field(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = info.value.lines()
    assert any(line.startswith(str(tmp_path / where)) and message in line for line in lines), lines


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("rpo: 1h", "rpo: soon").replace("container_prefix", "container_prefx")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert len(info.value.lines()) == 2


@pytest.mark.parametrize("value, seconds", [(90, 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("2d", 172800), ("1.5h", 5400)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds
