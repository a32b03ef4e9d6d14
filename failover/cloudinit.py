"""What a new node does at first boot: cloud-init user data composed from parts, and a
node's source security groups rendered as an nftables firewall for targets whose
libcloud driver has no firewall API.

Adding to a node's own user data keeps it working: it becomes the first part of a
multi-part MIME message (byte for byte), and failover's ``#cloud-config`` part follows,
with a ``merge_how`` that merges lists instead of replacing them (cloud-init's default
would drop the original's ``runcmd`` and ``write_files``).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import ipaddress
from collections.abc import Sequence
from email.message import EmailMessage, Message
from typing import Any

import yaml

from failover.manifest import Firewall, FirewallRule

CLOUD_CONFIG_HEADER = "#cloud-config"
# Lists of the added part go first (our runcmd runs before the node's own), and the
# node's own settings win where both set one.
MERGE_HOW = [
    {"name": "list", "settings": ["prepend"]},
    {"name": "dict", "settings": ["no_replace", "recurse_list"]},
]
# Lines up to RFC 5322's limit stay as written (7bit) rather than quoted-printable.
_MIME = email.policy.default.clone(max_line_length=998)
# How cloud-init tells a part's type from its first line (cloudinit/handlers/__init__.py).
_STARTS = (
    ("#cloud-config-archive", "cloud-config-archive"),
    ("#cloud-config", "cloud-config"),
    ("#cloud-boothook", "cloud-boothook"),
    ("#part-handler", "part-handler"),
    ("#include", "x-include-url"),
    ("## template: jinja", "jinja2"),
    ("#!", "x-shellscript"),
)

# -- composing user data -----------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (files, scripts) as literal blocks, readable on the node."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def cloud_config(config: dict[str, Any]) -> str:
    """A ``#cloud-config`` document."""
    body = yaml.dump(config, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True)
    return f"{CLOUD_CONFIG_HEADER}\n{body}"


def with_cloud_config(user_data: str | None, config: dict[str, Any], name: str = "failover.cfg") -> str:
    """``user_data`` with the cloud-config ``config`` added; ``config`` alone when there is none."""
    if not user_data or not user_data.strip():
        return cloud_config(config)
    added = _part(cloud_config({**config, "merge_how": MERGE_HOW}), "cloud-config", name)
    if is_multipart(user_data):
        message = email.message_from_string(user_data, policy=_MIME)
        message.attach(added)
        return message.as_string()
    original = _part(user_data, part_subtype(user_data), "part-001")
    return _multipart([original, added])


def is_multipart(user_data: str) -> bool:
    """cloud-init reads user data as MIME when "MIME-Version:" appears in its first 4 KiB."""
    return "mime-version:" in user_data[:4096].lower()


def part_subtype(text: str) -> str:
    """The ``text/*`` subtype cloud-init would give this part; ``plain`` (ignored by cloud-init) when none."""
    return next((subtype for start, subtype in _STARTS if text.startswith(start)), "plain")


def cloud_config_parts(user_data: str) -> list[dict[str, Any]]:
    """The cloud-config documents of some user data, in order (to read back what was written)."""
    texts = [part for subtype, part in user_data_parts(user_data) if subtype == "cloud-config"]
    return [yaml.safe_load(text) or {} for text in texts]


def user_data_parts(user_data: str) -> list[tuple[str, str]]:
    """(subtype, text) of each part: one part unless the user data is multi-part MIME."""
    if not is_multipart(user_data):
        return [(part_subtype(user_data), user_data)]
    message = email.message_from_string(user_data, policy=_MIME)
    return [
        (part.get_content_subtype(), part.get_payload(decode=True).decode("utf-8"))
        for part in message.walk()
        if not part.is_multipart()
    ]


def _part(text: str, subtype: str, filename: str) -> Message:
    part = EmailMessage(policy=_MIME)
    part.set_content(text, subtype=subtype, charset="utf-8")
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def _multipart(parts: Sequence[Message]) -> str:
    message = EmailMessage(policy=_MIME)
    message["MIME-Version"] = "1.0"
    message.make_mixed()
    for part in parts:
        message.attach(part)
    # A boundary derived from the content keeps the user data (and so a plan) deterministic.
    digest = hashlib.sha256("".join(part.as_string() for part in parts).encode("utf-8")).hexdigest()
    message.set_boundary(f"==failover-{digest[:24]}==")
    return message.as_string()


# -- security groups as nftables ---------------------------------------------------------

RULESET_PATH = "/etc/failover/firewall.nft"
LOADER_PATH = "/usr/local/sbin/failover-firewall"
UNIT_NAME = "failover-firewall.service"
PRIVATE_NETWORKS_MARK = "# @private-networks@"

# Traffic AWS security groups never filter, so a service may rely on it without a rule:
# DHCP, IPv6 neighbour discovery, and (outbound) DNS and NTP.
_ALWAYS_IN = (
    "udp sport 67 udp dport 68 accept",
    "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept",
)
_ALWAYS_OUT = (
    "udp sport 68 udp dport 67 accept",
    "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept",
    "meta l4proto { tcp, udp } th dport 53 accept",
    "udp dport 123 accept",
)

_LOADER = f"""#!/bin/sh
# Loads the firewall failover carried over from the node's security groups on the source.
# Rules whose source was another security group admit this node's private networks: the
# new addresses of that group's members were not known when this was written.
set -eu
networks=$(ip -o -4 route show proto kernel scope link | awk '{{print $1}}' \\
  | grep -E '^(10\\.|172\\.(1[6-9]|2[0-9]|3[01])\\.|192\\.168\\.)' | paste -sd, - || true)
if [ -n "$networks" ]; then
  sed -i "s|{PRIVATE_NETWORKS_MARK}|elements = {{ $networks }}|" {RULESET_PATH}
fi
systemctl daemon-reload
systemctl enable --now {UNIT_NAME}
"""

_UNIT = f"""[Unit]
Description=Firewall carried over by failover from the source security groups
DefaultDependencies=no
Before=network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f {RULESET_PATH}

[Install]
WantedBy=multi-user.target
"""


def firewall_cloud_config(firewalls: Sequence[Firewall]) -> dict[str, Any]:
    """The cloud-config that installs nftables and loads ``firewalls``' rules at every boot."""
    return {
        "packages": ["nftables"],
        "write_files": [
            {"path": RULESET_PATH, "permissions": "0600", "content": nftables_ruleset(firewalls)},
            {"path": f"/etc/systemd/system/{UNIT_NAME}", "permissions": "0644", "content": _UNIT},
            {"path": LOADER_PATH, "permissions": "0755", "content": _LOADER},
        ],
        "runcmd": [[LOADER_PATH]],
    }


def nftables_ruleset(firewalls: Sequence[Firewall]) -> str:
    """An nftables table admitting exactly what the security groups admit (a group's rules
    are allow rules; a packet passes when any rule of any group allows it)."""
    names = ", ".join(f"{fw.id} ({fw.name})" if fw.name != fw.id else fw.id for fw in firewalls)
    lines = [
        "#!/usr/sbin/nft -f",
        f"# Written by failover from the source security groups {names}.",
        "table inet failover",
        "delete table inet failover",  # with the line above: replace the table, whether or not it exists
        "",
        "table inet failover {",
        "    set private_networks {",
        "        type ipv4_addr",
        "        flags interval",
        f"        {PRIVATE_NETWORKS_MARK}",
        "    }",
        "",
        *_chain("input", "ingress", firewalls, _ALWAYS_IN),
        "",
        *_chain("output", "egress", firewalls, _ALWAYS_OUT),
        "}",
    ]
    return "\n".join(lines) + "\n"


def _chain(hook: str, direction: str, firewalls: Sequence[Firewall], always: Sequence[str]) -> list[str]:
    lines = [
        f"    chain {hook} {{",
        f"        type filter hook {hook} priority filter; policy drop;",
        "        ct state established,related accept",
        "        ct state invalid drop",
        f'        {"iif" if hook == "input" else "oif"} "lo" accept',
        *(f"        {statement}" for statement in always),
    ]
    for firewall in firewalls:
        rules = [rule for rule in firewall.rules if rule.direction == direction]
        if rules:
            lines.append(f"        # {firewall.id} ({firewall.name})")
            lines += [f"        {statement}" for rule in rules for statement in nft_statements(rule)]
    return [*lines, "    }"]


def nft_statements(rule: FirewallRule) -> list[str]:
    """One nftables statement per source of a security-group rule."""
    peer = "saddr" if rule.direction == "ingress" else "daddr"
    match = _protocol_match(rule)
    return [" ".join(filter(None, (_address_match(source, peer), match, "accept"))) for source in rule.sources]


def _address_match(source: str, peer: str) -> str:
    try:
        network = ipaddress.ip_network(source, strict=False)
    except ValueError:
        # Another security group: its members' new addresses are unknown at first boot.
        return f"ip {peer} @private_networks"
    family = "ip" if network.version == 4 else "ip6"
    return f"{family} {peer} {network}"


def _protocol_match(rule: FirewallRule) -> str:
    protocol = rule.protocol.lower()
    if protocol in ("-1", "all"):
        return ""
    if protocol in ("tcp", "udp", "6", "17"):
        name = {"6": "tcp", "17": "udp"}.get(protocol, protocol)
        return f"{name} dport {_ports(rule)}" if rule.port_from is not None else f"meta l4proto {name}"
    if protocol in ("icmp", "1", "icmpv6", "58"):
        return _icmp_match("icmpv6" if protocol in ("icmpv6", "58") else "icmp", rule)
    return f"meta l4proto {protocol}"


def _ports(rule: FirewallRule) -> str:
    low, high = rule.port_from, rule.port_to if rule.port_to is not None else rule.port_from
    return str(low) if low == high else f"{low}-{high}"


def _icmp_match(family: str, rule: FirewallRule) -> str:
    """EC2 writes an ICMP type in ``port_from`` and a code in ``port_to``; none (-1): all of them."""
    match = f"meta l4proto {'ipv6-icmp' if family == 'icmpv6' else 'icmp'}"
    if rule.port_from is not None and rule.port_from >= 0:
        match = f"{family} type {rule.port_from}"
        if rule.port_to is not None and rule.port_to >= 0:
            match += f" {family} code {rule.port_to}"
    return match
