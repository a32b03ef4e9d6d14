"""``failover.yaml``: the model, its loading and validation, and ``${env:NAME}`` secrets.

Secrets stay references in the loaded config; :func:`resolve_secrets` replaces them with
the environment's values at call time, so no resolved secret is ever kept or written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from failover.clock import parse_duration
from failover.errors import ConfigError, InputError, Problem
from failover.yamlio import Document, load_file

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
ANY_REF = re.compile(r"\$\{([^}]*)\}")
DRIVER_NAME = re.compile(r"^(?:[a-z][a-z0-9_]*|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")

DEFAULT_FILE = "failover.yaml"
LIBCLOUD_SOURCE = "libcloud"  # source.provider of a source read through libcloud drivers
STATE_DSN = re.compile(r"^\s*(?:postgres(?:ql)?://|\$\{env:[A-Za-z_][A-Za-z0-9_]*\}\s*$)")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)




def _check_refs(value: Any) -> Any:
    """Only ``${env:NAME}`` references may appear in config values."""
    if isinstance(value, str):
        for ref in ANY_REF.finditer(value):
            if not ENV_REF.fullmatch(ref.group(0)):
                raise ValueError(f"{ref.group(0)!r} is not a secret reference; write ${{env:NAME}}")
    elif isinstance(value, dict):
        for item in value.values():
            _check_refs(item)
    elif isinstance(value, list):
        for item in value:
            _check_refs(item)
    return value


class Selector(Strict):
    # AWS needs tags (Source checks it); a libcloud source may select nodes by name_prefix instead.
    tags: dict[str, str] = Field(default_factory=dict)
    # libcloud sources only (see Source): nodes by name, containers by name or prefix, zones by name.
    name_prefix: str | None = Field(default=None, min_length=1)
    containers: list[str] = Field(default_factory=list)
    container_prefix: str | None = Field(default=None, min_length=1)
    zones: list[str] = Field(default_factory=list)

    @field_validator("zones")
    @classmethod
    def _zones(cls, value: list[str]) -> list[str]:
        return [name if name.endswith(".") else name + "." for name in (item.strip().lower() for item in value)]

    def libcloud_only(self) -> list[str]:
        """The keys set here that only a libcloud source reads."""
        return [key for key in ("name_prefix", "containers", "container_prefix", "zones") if getattr(self, key)]

    @field_validator("tags", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if isinstance(item, (dict, list)) or item is None:
                    raise ValueError(f"tag {key!r} needs a plain value")
                out[str(key)] = item if isinstance(item, str) else str(item).lower() if isinstance(item, bool) else str(item)
            return out
        return value


class DriverSpec(Strict):
    driver: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("driver")
    @classmethod
    def _driver(cls, value: str) -> str:
        if not DRIVER_NAME.match(value):
            raise ValueError(f"{value!r} is neither a libcloud provider name nor package.module:DriverClass")
        return value

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_refs(value)


class ComputeSpec(DriverSpec):
    location: str | None = None


class SourceComputeSpec(DriverSpec):
    """A libcloud source's compute driver; ``locations`` (ids or names), when given, keep only their nodes."""

    locations: list[str] = Field(default_factory=list)


class StorageSpec(DriverSpec):
    container_prefix: str = ""

    @field_validator("container_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
            raise ValueError("lowercase letters, digits and dashes only (valid in every provider's container names)")
        return value


class DnsSpec(DriverSpec):
    # The target's authoritative nameservers, for the zones failover creates: the NS records
    # the registrar's delegation will point at. PowerDNS needs them at creation; providers
    # that assign their own (Cloudflare, DigitalOcean, ...) ignore them.
    nameservers: list[str] = Field(default_factory=list)

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        names = []
        for name in value:
            name = name.strip().lower()
            if not re.fullmatch(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{1,63}\.?", name):
                raise ValueError(f"{name!r} is not a host name (like ns1.example.net.)")
            names.append(name if name.endswith(".") else name + ".")
        return names


class Source(Strict):
    provider: str = "aws"  # a name of failover.adapters' source registry
    # AWS: the regions to read (at least one). libcloud: none (each capability's driver names its own).
    regions: list[str] = Field(default_factory=list, validate_default=True)
    select: Selector
    endpoint_url: str | None = None
    profile: str | None = None
    # provider: libcloud only: a libcloud driver per capability (compute is optional too).
    compute: SourceComputeSpec | None = None
    storage: DriverSpec | None = None
    dns: DriverSpec | None = None

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        from failover.adapters import source_provider_names

        if value not in (known := source_provider_names()):
            raise ValueError(f"unknown source provider {value!r}; known: {', '.join(map(repr, known))}")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("provider") == LIBCLOUD_SOURCE:
            if value:
                raise ValueError("a libcloud source has no regions: its drivers' options and compute.locations say where")
            return value
        if not value:
            raise ValueError("at least 1 region is needed")
        bad = [r for r in value if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", r)]
        if bad:
            raise ValueError(f"not an AWS region: {', '.join(bad)}")
        if len(set(value)) != len(value):
            raise ValueError("a region is listed twice")
        return value

    @field_validator("select")
    @classmethod
    def _select(cls, value: Selector, info: ValidationInfo) -> Selector:
        if info.data.get("provider") == LIBCLOUD_SOURCE:
            return value
        if not value.tags:
            raise ValueError("tags: at least 1 tag is needed")
        if value.libcloud_only():
            raise ValueError(f"{', '.join(value.libcloud_only())}: only a libcloud source reads these")
        return value

    @field_validator("compute", "storage", "dns")
    @classmethod
    def _libcloud_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("provider", LIBCLOUD_SOURCE) != LIBCLOUD_SOURCE:
            raise ValueError(f"only a libcloud source names drivers (source.provider: {LIBCLOUD_SOURCE})")
        return value

    @model_validator(mode="after")
    def _libcloud_complete(self) -> Source:
        if self.provider != LIBCLOUD_SOURCE:
            return self
        if self.compute is None and self.storage is None and self.dns is None:
            raise ValueError("a libcloud source needs at least one of compute, storage, dns")
        if self.compute is not None and not (self.select.tags or self.select.name_prefix):
            raise ValueError("select: nodes are selected by tags or name_prefix; give one")
        if self.storage is not None and not (self.select.containers or self.select.container_prefix):
            raise ValueError("select: buckets are containers selected by containers or container_prefix; give one")
        if self.dns is not None and not self.select.zones:
            raise ValueError("select: zones names the DNS zones to read; give it")
        return self


TLS_DOMAIN = re.compile(r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{1,63}$")


class TlsCertificate(Strict):
    """A certificate and its key for one domain of the target's HTTPS listeners. Each is a
    ``${env:NAME}`` holding the PEM text, or a file path (relative to the config file) read
    when the load balancer is built; never stored, logged, or passed on a command line."""

    certificate: str
    key: str

    @field_validator("certificate", "key")
    @classmethod
    def _reference(cls, value: str) -> str:
        if "-----BEGIN" in value:
            raise ValueError("write ${env:NAME} or a file path, never the PEM text itself in the file")
        if ANY_REF.search(value) and not ENV_REF.fullmatch(value.strip()):
            raise ValueError("either one ${env:NAME} reference or a file path")
        if not value.strip():
            raise ValueError("empty")
        return value.strip()


class AcmeSpec(Strict):
    """Certificates by ACME (HTTP-01) on the load-balancer node, once DNS points at it."""

    email: str | None = None
    directory: str = "https://acme-v02.api.letsencrypt.org/directory"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}", value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        if not re.fullmatch(r"https://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~/-]*)?", value):
            raise ValueError("an https:// URL of an ACME directory")
        return value


class TargetProfile(Strict):
    compute: ComputeSpec | None = None
    storage: StorageSpec | None = None
    dns: DnsSpec | None = None
    # A libcloud load-balancer driver; without it a load balancer becomes a node running HAProxy.
    loadbalancer: DriverSpec | None = None
    # Certificates of the HTTPS listeners, by domain (``shop.example.com``, ``*.example.com``).
    tls: dict[str, TlsCertificate] = Field(default_factory=dict)
    acme: AcmeSpec | None = None  # set: HTTPS listeners without a tls: entry get theirs by ACME
    sizes: dict[str, str] = Field(default_factory=dict)
    images: dict[str, str] = Field(default_factory=dict)
    # A node of a steady-core family (m7i, c6i ...) maps onto a burstable size (t3, t4g ...) only when true.
    allow_burstable: bool = False

    @field_validator("tls")
    @classmethod
    def _tls_domains(cls, value: dict[str, TlsCertificate]) -> dict[str, TlsCertificate]:
        bad = [domain for domain in value if not TLS_DOMAIN.fullmatch(domain)]
        if bad:
            raise ValueError(f"not a domain name (lowercase, like shop.example.com or *.example.com): {bad[0]!r}")
        return value


class DatabaseSpec(Strict):
    dsn: str
    keep: int = Field(default=7, ge=1)

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        return _check_refs(value)


class Readiness(Strict):
    max_snapshot_age: float = 24 * 3600
    rpo: float = 3600
    rto: float = 30 * 60
    max_ttl: int = Field(default=300, ge=0)
    max_drill_age: float = 30 * 24 * 3600  # a drill older than this no longer proves the RTO
    # Unsupported resource types (AWS::SNS::Topic, ...) a failover may leave behind: the check
    # unsupported-acknowledged fails on any other type in the snapshot.
    accept_unsupported: list[str] = Field(default_factory=list)

    @field_validator("max_snapshot_age", "rpo", "rto", "max_drill_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")  # an X25519 recipient, bech32
SSH_RECIPIENT = re.compile(r"^(ssh-ed25519|ssh-rsa) [A-Za-z0-9+/]+={0,2}( .*)?$")
CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")  # valid on Azure, S3, GCS, local disk


class Escrow(Strict):
    """``evacuation.escrow``: the service's SSM parameters and Secrets Manager secrets, read from the
    source, encrypted on this machine to ``recipients`` (age), and stored in ``container`` of the
    storage of target profile ``target``."""

    recipients: list[str] = Field(min_length=1)  # age1... or ssh-ed25519/ssh-rsa public keys
    ssm_paths: list[str] = Field(default_factory=list)  # /social-app/ (everything under it) or one name
    secrets: list[str] = Field(default_factory=list)  # names, or prefixes ending in '*'
    target: str
    container: str

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for recipient in value:
            if not (AGE_RECIPIENT.match(recipient) or SSH_RECIPIENT.match(recipient)):
                raise ValueError(f"{recipient[:80]!r} is not an age recipient (age1...) or an ssh-ed25519/ssh-rsa key")
        return value

    @field_validator("ssm_paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not re.fullmatch(r"/[A-Za-z0-9_./-]*", path):
                raise ValueError(f"{path[:80]!r} is not an SSM parameter path (/service/...)")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9/_+=.@-]+\*?", name):
                raise ValueError(f"{name[:80]!r} is not a Secrets Manager name, or a prefix ending in '*'")
        return value

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        if not CONTAINER_NAME.match(value):
            raise ValueError("3-63 lowercase letters, digits and single dashes (valid in every provider's container names)")
        return value



class Evacuation(Strict):
    """``failover evacuate``'s settings: the buckets that go first (names or shell globs, in
    order; the others follow, smallest first) and the opt-in escrow of secrets and parameters."""

    priority: list[str] = Field(default_factory=list)
    escrow: Escrow | None = None  # opt-in: see failover.escrow

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: list[str]) -> list[str]:
        if any(not pattern.strip() for pattern in value):
            raise ValueError("an empty bucket name or pattern")
        if len(set(value)) != len(value):
            raise ValueError("a bucket name or pattern is listed twice")
        return value


class Config(Strict):
    service: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    # A directory (the embedded SQLite store), or a PostgreSQL DSN for a team's shared state:
    # postgresql://user:${env:PGPASSWORD}@host/db, or "${env:NAME}" holding one.
    state: str = ".failover"
    source: Source
    targets: dict[str, TargetProfile] = Field(default_factory=dict)
    databases: dict[str, DatabaseSpec] = Field(default_factory=dict)
    readiness: Readiness = Field(default_factory=Readiness)
    evacuation: Evacuation = Field(default_factory=Evacuation)

    # Where it was loaded from; not part of the file.
    path: Path = Field(default=Path(DEFAULT_FILE), exclude=True)
    _lines: dict[tuple, int] = PrivateAttr(default_factory=dict)  # the line of each key, as read

    def problem(self, loc: tuple[str | int, ...], message: str) -> Problem:
        """A problem at ``loc`` (``("targets", "fallback", "compute", "driver")``), with its file and line."""
        line = next((self._lines[loc[:end]] for end in range(len(loc), 0, -1) if loc[:end] in self._lines), None)
        return Problem(file=str(self.path), line=line, field=".".join(map(str, loc)), message=message)

    @field_validator("state")
    @classmethod
    def _state(cls, value: str) -> str:
        if STATE_DSN.match(value):
            if ENV_REF.fullmatch(value.strip()) is None:
                password = re.match(r"^[a-z]+://[^/@:]*:([^@]*)@", value)
                if password and not ENV_REF.fullmatch(password.group(1)):
                    raise ValueError("write the DSN's password as ${env:NAME}, never in the file")
            return _check_refs(value)
        if ANY_REF.search(value):
            raise ValueError("only a postgresql:// DSN may hold ${env:NAME} references")
        return value

    @property
    def state_dsn(self) -> str | None:
        """The PostgreSQL DSN of a shared state (references unresolved), or None for a directory."""
        return self.state if STATE_DSN.match(self.state) else None

    @property
    def state_dir(self) -> Path:
        """The state directory; with a PostgreSQL state, the local directory of drill reports."""
        local = ".failover" if self.state_dsn else self.state
        return (self.path.parent / local).resolve()

    def target(self, name: str) -> TargetProfile:
        try:
            return self.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.targets)) or "none"
            raise ConfigError(
                [Problem(file=str(self.path), field=f"targets.{name}", message=f"no such target profile (known: {known})")]
            ) from None


def config_path(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    env = os.environ.get("FAILOVER_CONFIG")
    return Path(env) if env else Path(DEFAULT_FILE)


def load_config(explicit: Path | None = None) -> Config:
    path = config_path(explicit)
    try:
        doc = load_file(path, what="config file")
    except InputError as exc:
        raise ConfigError(exc.problems) from None
    return parse_config(doc, path)


def parse_config(doc: Document, path: Path) -> Config:
    if not isinstance(doc.data, dict):
        raise ConfigError([Problem(file=doc.file, line=doc.line_of(()), message="expected a mapping with service, source, targets")])
    try:
        config = Config.model_validate({**doc.data, "path": path})
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, doc)) from None
    config._lines = dict(doc.lines)
    return config


def problems_from_validation(exc: ValidationError, doc: Document, prefix: tuple = ()) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p and p.endswith("]")))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(doc.problem(loc, message))
    problems.sort(key=lambda p: (p.line or 0, p.field or ""))
    return problems


def resolve_secrets(value: Any, *, file: str = DEFAULT_FILE, field: str = "") -> Any:
    """Replace ``${env:NAME}`` with the environment's value, now. Never stored."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError([Problem(file=file, field=field or None, message=f"environment variable {name} is not set")])
            return os.environ[name]

        return ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: resolve_secrets(v, file=file, field=f"{field}.{k}" if field else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, file=file, field=f"{field}[{i}]") for i, v in enumerate(value)]
    return value


def missing_secrets(value: Any, field: str = "") -> list[tuple[str, str]]:
    """(field path, variable) of every ``${env:NAME}`` not set in the environment."""
    out: list[tuple[str, str]] = []
    if isinstance(value, str):
        out += [(field, m.group(1)) for m in ENV_REF.finditer(value) if m.group(1) not in os.environ]
    elif isinstance(value, dict):
        for k, v in value.items():
            out += missing_secrets(v, f"{field}.{k}" if field else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += missing_secrets(v, f"{field}[{i}]")
    return out
