"""``source.provider: libcloud`` in failover.yaml: the README's contract loads as written, and each
mistake exits 2 naming the file, line and field; AWS configs keep their rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.config import load_config
from failover.errors import ConfigError

LIBCLOUD = """\
service: social-app
source:
  provider: libcloud
  compute: {driver: digitalocean, options: {key: "${env:DO_TOKEN}"}, locations: [fra1, ams3]}
  storage: {driver: s3, options: {key: AKIA, secret: "${env:S3_SECRET}"}}
  dns:     {driver: digitalocean, options: {key: "${env:DO_TOKEN}"}}
  select:
    tags: {service: social-app}
    containers: [social-media]
    container_prefix: social-
    zones: [social.example.]
targets:
  fallback:
    compute: {driver: ec2, location: us-east-1a, options: {key: AKIA, secret: "${env:AWS_SECRET}"}}
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "failover.yaml"
    path.write_text(text)
    return load_config(path)


def test_the_readme_contract_loads(tmp_path: Path) -> None:
    source = load(tmp_path, LIBCLOUD).source
    assert (source.provider, source.regions) == ("libcloud", [])
    assert (source.compute.driver, source.compute.locations) == ("digitalocean", ["fra1", "ams3"])
    assert source.compute.options == {"key": "${env:DO_TOKEN}"}  # secrets stay references
    assert (source.storage.driver, source.dns.driver) == ("s3", "digitalocean")
    assert (source.select.containers, source.select.container_prefix) == (["social-media"], "social-")
    assert source.select.zones == ["social.example."]


def test_nodes_by_name_prefix_and_zones_without_the_trailing_dot(tmp_path: Path) -> None:
    text = LIBCLOUD.replace("    tags: {service: social-app}\n", "    name_prefix: social-\n").replace(
        "zones: [social.example.]", "zones: [Social.Example]")
    select = load(tmp_path, text).source.select
    assert (select.tags, select.name_prefix, select.zones) == ({}, "social-", ["social.example."])


@pytest.mark.parametrize(
    "text, where, message",
    [
        (LIBCLOUD.replace("  provider: libcloud\n", "  provider: libcloud\n  regions: [us-east-1]\n"),
         "failover.yaml:4: source.regions", "a libcloud source has no regions"),
        (LIBCLOUD.replace("    tags: {service: social-app}\n", ""), "failover.yaml:2: source",
         "nodes are selected by tags or name_prefix"),
        (LIBCLOUD.replace("    containers: [social-media]\n    container_prefix: social-\n", ""),
         "failover.yaml:2: source", "containers or container_prefix"),
        (LIBCLOUD.replace("    zones: [social.example.]\n", ""), "failover.yaml:2: source", "zones names the DNS zones"),
        (LIBCLOUD.replace("driver: digitalocean, options: {key: \"${env:DO_TOKEN}\"}, locations",
                          "driver: 'digital ocean', options: {}, locations"),
         "failover.yaml:4: source.compute.driver", "neither a libcloud"),
        (LIBCLOUD.replace("locations: [fra1, ams3]", "location: fra1"), "failover.yaml:4: source.compute.location",
         "unknown key"),
        (LIBCLOUD.replace('secret: "${env:S3_SECRET}"', 'secret: "${S3_SECRET}"'),
         "failover.yaml:5: source.storage.options", "not a secret reference"),
    ],
    ids=["regions", "no-node-selector", "no-container-selector", "no-zones", "driver-name", "target-key", "secret-ref"],
)
def test_a_bad_libcloud_source_names_file_line_and_field(tmp_path: Path, text: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    lines = info.value.lines()
    assert any(line.startswith(str(tmp_path / where)) and message in line for line in lines), lines


AWS = """\
service: social-app
source:
  provider: aws
  regions: [us-east-1]
  select:
    tags: {service: social-app}
"""


@pytest.mark.parametrize(
    "text, where, message",
    [
        (AWS.replace("    tags: {service: social-app}\n", "    tags: {}\n"), "failover.yaml:5: source.select",
         "at least 1 tag"),
        (AWS.replace("    tags: {service: social-app}\n", "    tags: {service: social-app}\n    zones: [a.example.]\n"),
         "failover.yaml:5: source.select", "only a libcloud source reads these"),
        (AWS + "  compute: {driver: digitalocean}\n", "failover.yaml:7: source.compute", "only a libcloud source"),
        (AWS.replace("  regions: [us-east-1]\n", ""), "failover.yaml:2: source", "at least 1 region"),
    ],
    ids=["no-tags", "libcloud-selector", "libcloud-driver", "no-regions"],
)
def test_an_aws_source_keeps_its_rules(tmp_path: Path, text: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    lines = info.value.lines()
    assert any(line.startswith(str(tmp_path / where)) and message in line for line in lines), lines
