"""``failover init``: find which regions hold tagged resources, propose the tags that group
them into services, and write a commented ``failover.yaml`` for the chosen selector.

Discovery asks the source through the standard AWS configuration. In each region it asks
the Resource Groups Tagging API, and also the services that API misses or answers for
badly (EC2's ``DescribeTags``, ELBv2, RDS); a region where the tagging API fails is read
through those alone. S3 buckets (placed by their location) and Route53 zones are global
and listed once. Everything read is data: a tag whose key or value holds a control
character, or is too long to be a selector, is refused (counted and named), never
printed raw or written into the file.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import yaml

from failover.adapters import source_provider

# Tag keys that name what a resource belongs to, most telling first; other keys follow by count.
PREFERRED_KEYS = ("service", "app", "application", "project", "product", "system", "stack", "component")
IGNORED_KEYS = ("name",)
IGNORED_PREFIXES = ("aws:", "failover-")
MAX_TAG = 256
WORKERS = 16
GLOBAL_REGION = "us-east-1"


@dataclass(frozen=True)
class TaggedResource:
    service: str  # the AWS service: ec2, s3, rds, elasticloadbalancing, route53
    kind: str  # instance, bucket, db, loadbalancer, hostedzone, ...
    id: str
    region: str | None  # None: global (a Route53 zone)
    tags: tuple[tuple[str, str], ...]

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.service, self.region, self.id)

    @property
    def type(self) -> str:
        return f"{self.service}:{self.kind}"


@dataclass(frozen=True)
class Candidate:
    """A tag (or the tags given with ``--select``) and the resources carrying it."""

    tags: dict[str, str]
    resources: list[TaggedResource]

    @property
    def regions(self) -> list[str]:
        return sorted({r.region for r in self.resources if r.region})

    def to_dict(self) -> dict[str, Any]:
        return {"tags": self.tags, "resources": len(self.resources), "regions": self.regions,
                "kinds": dict(sorted(Counter(r.type for r in self.resources).items()))}


@dataclass
class Discovery:
    regions_scanned: list[str]
    resources: list[TaggedResource]
    refused: list[dict[str, str]] = field(default_factory=list)  # tags not carried: where and why
    notes: list[str] = field(default_factory=list)  # regions read without the tagging API

    @property
    def regions(self) -> list[str]:
        """The regions holding tagged resources."""
        return sorted({r.region for r in self.resources if r.region})

    def candidates(self, limit: int = 20) -> list[Candidate]:
        groups: dict[tuple[str, str], list[TaggedResource]] = defaultdict(list)
        for resource in self.resources:
            for key, value in resource.tags:
                if usable_key(key) and value:
                    groups[(key, value)].append(resource)

        def rank(item: tuple[tuple[str, str], list[TaggedResource]]) -> tuple:
            (key, value), members = item
            lowered = key.lower()
            preferred = PREFERRED_KEYS.index(lowered) if lowered in PREFERRED_KEYS else len(PREFERRED_KEYS)
            return (preferred, -len(members), key, value)

        return [Candidate({key: value}, members) for (key, value), members in sorted(groups.items(), key=rank)[:limit]]

    def select(self, tags: dict[str, str]) -> Candidate:
        members = [r for r in self.resources if all((k, v) in r.tags for k, v in tags.items())]
        return Candidate(dict(tags), members)

    def to_dict(self, limit: int = 20) -> dict[str, Any]:
        return {"regions_scanned": self.regions_scanned, "regions": self.regions, "resources": len(self.resources),
                "candidates": [c.to_dict() for c in self.candidates(limit)], "refused": self.refused,
                "notes": self.notes}


def usable_key(key: str) -> bool:
    lowered = key.lower()
    return lowered not in IGNORED_KEYS and not lowered.startswith(IGNORED_PREFIXES)


def unsafe(text: str) -> str | None:
    """Why a tag key or value cannot be shown or written as it is; None when it can."""
    if len(text) > MAX_TAG:
        return f"longer than {MAX_TAG} characters"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text):
        return "holds a control character"
    return None


def shown(text: str, limit: int = 80) -> str:
    """A source's text for a message: control characters as escapes, never raw; cut at ``limit``."""
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


def discover(*, regions: list[str] | None, endpoint_url: str | None, profile: str | None,
             provider: str = "aws") -> Discovery:
    """What the source holds, tagged, in ``regions`` (default: every enabled region)."""
    return source_provider(provider).discover(regions=regions, endpoint_url=endpoint_url, profile=profile)



# -- the file ---------------------------------------------------------------------------------------

def service_name(tags: dict[str, str]) -> str:
    """A service name (lowercase letters, digits, dashes) from the selector's first value."""
    text = next(iter(tags.values()), "")
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "service"


def env_name(text: str, suffix: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_") + suffix


def render(candidate: Candidate, *, service: str, target: str, regions: list[str], profile: str | None,
           endpoint_url: str | None) -> str:
    """The commented ``failover.yaml``: values dumped by YAML (never pasted), comments ours."""

    def block(data: dict[str, Any]) -> str:
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=False, width=100)

    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(Counter(r.type for r in candidate.resources).items()))
    source: dict[str, Any] = {"provider": "aws", "regions": regions, "select": {"tags": candidate.tags}}
    if endpoint_url:
        source["endpoint_url"] = endpoint_url
    if profile:
        source["profile"] = profile
    databases = sorted(r.id for r in candidate.resources if r.service == "rds" and r.kind == "db")
    parts = [
        "# failover.yaml, written by `failover init`. Check it with `failover validate standard`,",
        "# then `failover inventory`. Secrets are never written here: ${env:NAME} is read from the",
        "# environment when it is used.",
        "",
        "# The service's name: it names snapshots, runs and the resources failover creates.",
        block({"service": service}).rstrip(),
        "# The state (snapshots, runs, replication records): a directory next to this file.",
        "# It must not live on the source provider.",
        block({"state": ".failover"}).rstrip(),
        "",
        f"# The source: {len(candidate.resources)} tagged resources carry this selector ({kinds}).",
        "# A resource belongs to the service when it carries every tag below with exactly that value.",
        block({"source": source}).rstrip(),
        "",
        f"# Where to fail over to: the target profile `{target}`, one libcloud driver per capability",
        "# (compute, storage, dns): a provider name or package.module:DriverClass; `options` go to",
        "# its constructor. Replace these examples with your provider's, and export the variables.",
        block({"targets": {target: {
            "compute": {"driver": "digitalocean", "location": "fra1", "options": {"key": "${env:DO_TOKEN}"}},
            "storage": {"driver": "azure_blobs", "container_prefix": "replica-",
                        "options": {"key": "${env:AZURE_STORAGE_ACCOUNT}", "secret": "${env:AZURE_STORAGE_KEY}"}},
            "dns": {"driver": "powerdns", "options": {"key": "${env:PDNS_API_KEY}", "host": "${env:PDNS_HOST}",
                                                      "port": 8081},
                    "nameservers": ["ns1.fallback.example.net", "ns2.fallback.example.net"]},
        }}}).rstrip(),
        "  # sizes: {t3.medium: s-2vcpu-4gb}      # optional overrides of the size mapping",
        "  # images: {ami-0abc: ubuntu-22-04-x64}  # optional overrides of the image mapping",
    ]
    if databases:
        parts += ["", "# The databases `replicate` dumps, named as in the snapshot: the DSN from the environment.",
                  block({"databases": {db: {"dsn": "${env:" + env_name(db, "_DSN") + "}", "keep": 7}
                                       for db in databases}}).rstrip()]
    parts += [
        "",
        "# Thresholds of `failover check` (the defaults):",
        "# readiness: {max_snapshot_age: 24h, rpo: 1h, rto: 30m, max_ttl: 300, max_drill_age: 30d}",
        "",
    ]
    return "\n".join(parts)
