"""User data composed with cloud-init's multi-part MIME, and security groups as nftables."""

from __future__ import annotations

import email

import yaml

from failover.cloudinit import (
    PRIVATE_NETWORKS_MARK,
    cloud_config,
    cloud_config_parts,
    firewall_cloud_config,
    nftables_ruleset,
    user_data_parts,
    with_cloud_config,
)
from failover.manifest import Firewall, FirewallRule

ADDED = {"runcmd": [["echo", "added"]]}


def _rule(direction: str, protocol: str, port_from, port_to, *sources: str) -> FirewallRule:
    return FirewallRule(direction=direction, protocol=protocol, port_from=port_from, port_to=port_to, sources=list(sources))


def test_without_user_data_the_added_config_is_the_user_data() -> None:
    assert with_cloud_config(None, ADDED) == cloud_config(ADDED)
    assert with_cloud_config("  \n", ADDED).startswith("#cloud-config\n")


def test_the_original_is_kept_byte_for_byte_as_the_first_part() -> None:
    for original, subtype in (
        ("#!/bin/bash\necho 'hi'\n", "x-shellscript"),
        ("#cloud-config\nruncmd: [[echo, own]]\n", "cloud-config"),
        ("#cloud-boothook\n#!/bin/sh\necho early\n", "cloud-boothook"),
        ("#include\nhttps://example.com/config\n", "x-include-url"),
        ("just some text\n", "plain"),
    ):
        combined = with_cloud_config(original, ADDED)
        assert combined.startswith("MIME-Version: 1.0\n") or "MIME-Version: 1.0" in combined[:200]
        parts = user_data_parts(combined)
        assert parts[0] == (subtype, original)
        assert parts[1][0] == "cloud-config"
        added = yaml.safe_load(parts[1][1])
        assert added["runcmd"] == ADDED["runcmd"]
        assert added["merge_how"] == [
            {"name": "list", "settings": ["prepend"]}, {"name": "dict", "settings": ["no_replace", "recurse_list"]},
        ]
    assert with_cloud_config("#!/bin/sh\n", ADDED) == with_cloud_config("#!/bin/sh\n", ADDED)  # deterministic


def test_a_multipart_original_gets_one_more_part() -> None:
    first = with_cloud_config("#!/bin/sh\necho one\n", {"runcmd": [["echo", "two"]]})

    combined = with_cloud_config(first, ADDED)

    assert [subtype for subtype, _ in user_data_parts(combined)] == ["x-shellscript", "cloud-config", "cloud-config"]
    assert [config["runcmd"] for config in cloud_config_parts(combined)] == [[["echo", "two"]], ADDED["runcmd"]]
    assert email.message_from_string(combined).is_multipart()


def test_non_ascii_user_data_survives() -> None:
    original = "#!/bin/sh\necho 'café ☕'\n"
    assert user_data_parts(with_cloud_config(original, ADDED))[0] == ("x-shellscript", original)


def test_security_groups_become_an_nftables_table_with_drop_policies() -> None:
    web = Firewall(id="sg-1", name="web", region="us-east-1", rules=[
        _rule("ingress", "tcp", 443, 443, "0.0.0.0/0", "::/0"),
        _rule("ingress", "tcp", 8000, 8100, "sg-1"),
        _rule("ingress", "udp", None, None, "10.0.0.0/8"),
        _rule("ingress", "icmp", 3, 4, "0.0.0.0/0"),
        _rule("ingress", "icmp", -1, -1, "192.0.2.0/24"),
        _rule("ingress", "50", None, None, "198.51.100.7/32"),
        _rule("egress", "-1", None, None, "0.0.0.0/0"),
    ])
    ruleset = nftables_ruleset([web])

    assert ruleset.startswith("#!/usr/sbin/nft -f\n")
    assert "table inet failover\ndelete table inet failover\n" in ruleset  # replaces an earlier load
    for statement in (
        "type filter hook input priority filter; policy drop;",
        "ct state established,related accept",
        'iif "lo" accept',
        "ip saddr 0.0.0.0/0 tcp dport 443 accept",
        "ip6 saddr ::/0 tcp dport 443 accept",
        "ip saddr @private_networks tcp dport 8000-8100 accept",
        "ip saddr 10.0.0.0/8 meta l4proto udp accept",
        "ip saddr 0.0.0.0/0 icmp type 3 icmp code 4 accept",
        "ip saddr 192.0.2.0/24 meta l4proto icmp accept",
        "ip saddr 198.51.100.7/32 meta l4proto 50 accept",
        "type filter hook output priority filter; policy drop;",
        "ip daddr 0.0.0.0/0 accept",
        "meta l4proto { tcp, udp } th dport 53 accept",
    ):
        assert statement in ruleset, statement
    assert PRIVATE_NETWORKS_MARK in ruleset


def test_the_firewall_config_installs_nftables_and_loads_the_rules_at_every_boot() -> None:
    config = firewall_cloud_config([Firewall(id="sg-1", name="web", region="us-east-1")])

    files = {f["path"]: f for f in config["write_files"]}
    assert config["packages"] == ["nftables"]
    assert config["runcmd"] == [["/usr/local/sbin/failover-firewall"]]
    assert "ExecStart=/usr/sbin/nft -f /etc/failover/firewall.nft" in files["/etc/systemd/system/failover-firewall.service"]["content"]
    loader = files["/usr/local/sbin/failover-firewall"]["content"]
    assert files["/usr/local/sbin/failover-firewall"]["permissions"] == "0755"
    assert f's|{PRIVATE_NETWORKS_MARK}|elements = {{ $networks }}|' in loader
    assert "systemctl enable --now failover-firewall.service" in loader
    # written as literal blocks: readable on the node
    assert "content: |" in cloud_config(config)


def test_a_single_mime_part_becomes_the_first_of_two() -> None:
    original = 'MIME-Version: 1.0\nContent-Type: text/x-shellscript; charset="utf-8"\n\n#!/bin/sh\necho own\n'

    combined = with_cloud_config(original, ADDED)

    parts = user_data_parts(combined)
    assert [subtype for subtype, _ in parts] == ["x-shellscript", "cloud-config"]
    assert parts[0][1] == "#!/bin/sh\necho own\n"
    assert cloud_config_parts(combined)[0]["runcmd"] == ADDED["runcmd"]
