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
import re
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
        if not message.is_multipart():
            message.make_mixed()  # "MIME-Version:" on a single part: it becomes the first of two
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


# -- what the source wrote, as data ----------------------------------------------------------
# Everything below renders the source's security groups; their names, ids, protocols and
# sources are the source's text. A name or id reaches the ruleset only inside a comment and
# only in a safe charset; an address only as ipaddress normalised it; a protocol only from a
# closed list or as a number; a port only as a checked integer. A rule that does not pass is
# left out (the firewall admits less, never more) and named in refused_rules().

COMMENT_UNSAFE = re.compile(r"[^A-Za-z0-9 ._:@/+=,()-]")
COMMENT_MAX = 80
_PROTOCOL_NAMES = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
                   "icmpv6": "icmpv6", "58": "icmpv6"}
_ALL_PROTOCOLS = ("-1", "all")


def comment_text(value: str) -> str:
    """``value`` fit for a comment line of a file or script written to a node: one line of a
    safe charset (any other character becomes ``?``), at most COMMENT_MAX characters."""
    text = COMMENT_UNSAFE.sub("?", value)
    return text if len(text) <= COMMENT_MAX else text[: COMMENT_MAX - 3] + "..."


def _label(firewall: Firewall) -> str:
    name = f"{firewall.id} ({firewall.name})" if firewall.name != firewall.id else firewall.id
    return comment_text(name)


def nftables_ruleset(firewalls: Sequence[Firewall]) -> str:
    """An nftables table admitting exactly what the security groups admit (a group's rules
    are allow rules; a packet passes when any rule of any group allows it)."""
    names = ", ".join(_label(fw) for fw in firewalls)
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


def refused_rules(firewalls: Sequence[Firewall]) -> list[str]:
    """The rules of ``firewalls`` left out of the ruleset, each as "<group>: rule N (<direction>): <why>"."""
    refused = []
    for firewall in firewalls:
        for number, rule in enumerate(firewall.rules, start=1):
            why = rule_problem(rule)
            if why:
                refused.append(f"{_label(firewall)}: rule {number} ({rule.direction}): {why}")
    return refused


def rule_problem(rule: FirewallRule) -> str | None:
    """Why ``rule`` cannot be carried into nftables as data; None when it can."""
    protocol = rule.protocol.lower()
    if protocol not in _ALL_PROTOCOLS and protocol not in _PROTOCOL_NAMES and not _protocol_number(protocol):
        return "protocol is neither a known name nor a number 0-255"
    family = _PROTOCOL_NAMES.get(protocol)
    if family in ("tcp", "udp") and rule.port_from is not None:
        high = rule.port_to if rule.port_to is not None else rule.port_from
        if not (0 <= rule.port_from <= high <= 65535):
            return "ports out of range 0-65535"
    icmp_fields = (rule.port_from, rule.port_to)
    if family in ("icmp", "icmpv6") and not all(port is None or -1 <= port <= 255 for port in icmp_fields):
        return "ICMP type or code out of range 0-255"
    if not rule.sources:
        return "no source"
    return None


def _protocol_number(protocol: str) -> bool:
    return protocol.isascii() and protocol.isdigit() and int(protocol) <= 255


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
            lines.append(f"        # {_label(firewall)}")
            for rule in rules:
                if rule_problem(rule) is None:
                    lines += [f"        {statement}" for statement in nft_statements(rule)]
                else:
                    lines.append("        # a rule was refused here: see refused_rules in the step's outputs")
    return [*lines, "    }"]


def nft_statements(rule: FirewallRule) -> list[str]:
    """One nftables statement per source of a security-group rule (a rule rule_problem() passed)."""
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
    if protocol in _ALL_PROTOCOLS:
        return ""
    name = _PROTOCOL_NAMES.get(protocol)
    if name in ("tcp", "udp"):
        return f"{name} dport {_ports(rule)}" if rule.port_from is not None else f"meta l4proto {name}"
    if name in ("icmp", "icmpv6"):
        return _icmp_match(name, rule)
    return f"meta l4proto {int(protocol)}"


def _ports(rule: FirewallRule) -> str:
    low, high = int(rule.port_from), int(rule.port_to if rule.port_to is not None else rule.port_from)
    return str(low) if low == high else f"{low}-{high}"


def _icmp_match(family: str, rule: FirewallRule) -> str:
    """EC2 writes an ICMP type in ``port_from`` and a code in ``port_to``; none (-1): all of them."""
    match = f"meta l4proto {'ipv6-icmp' if family == 'icmpv6' else 'icmp'}"
    if rule.port_from is not None and rule.port_from >= 0:
        match = f"{family} type {int(rule.port_from)}"
        if rule.port_to is not None and rule.port_to >= 0:
            match += f" {family} code {int(rule.port_to)}"
    return match
