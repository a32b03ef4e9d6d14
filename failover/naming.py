"""The names failover gives what it creates on a target, derived from the snapshot alone so
that every step (and every retry, resume and rollback) derives the same ones.

- Nodes and database nodes share one namespace: ``<service>-<source name>``, lowercase
  letters, digits and dashes, at most 63 characters (a DNS label: valid as a hostname and
  as a node name on every provider). Names that would clash carry a hash of the source id.
- Firewalls get the same treatment in a namespace of their own.
- Database dumps, written by replication and read by restore-databases, live in the
  storage bucket ``failover-dumps`` (container ``container_prefix + "failover-dumps"``)
  under ``<database name>/<UTC time><suffix>``, the suffix the engine's
  (:mod:`failover.databases`: ``.dump`` for ``pg_dump -Fc``, ``.sql.gz`` for ``mysqldump``,
  gzipped), the time written ``20240115T103000Z``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from failover.databases.base import dump_suffixes, engine_for
from failover.manifest import Manifest, ResourceBase

MAX_NAME = 63
HASH_LENGTH = 6

# -- target resource names ------------------------------------------------------------------


def slug(text: str) -> str:
    """``"Web_1 (café)"`` -> ``"web-1-cafe"``: lowercase ASCII letters, digits and single dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def target_name(service: str, source_name: str, source_id: str = "") -> str:
    """The target name of one resource, before clashes are resolved (see :func:`target_names`)."""
    base = slug(source_name) or slug(source_id) or "unnamed"
    return _fit(f"{slug(service)}-{base}")


def target_names(service: str, resources: Iterable[ResourceBase]) -> dict[str, str]:
    """Source id -> target name, unique among ``resources``.

    Resources whose names would clash (AWS lets two instances share a Name tag) all carry
    a hash of their source id, so that a name never depends on which of them came first.
    """
    by_name: dict[str, list[ResourceBase]] = defaultdict(list)
    for resource in resources:
        by_name[target_name(service, resource.name, resource.id)].append(resource)
    names = {}
    for name, clashing in by_name.items():
        for resource in clashing:
            names[resource.id] = name if len(clashing) == 1 else _with_suffix(name, _short_hash(resource.id))
    return names


def node_names(manifest: Manifest, service: str) -> dict[str, str]:
    """Source id -> target node name, for the snapshot's nodes, databases and node groups' nodes
    (database nodes and group nodes are nodes too: one namespace, so none of them can clash).
    A group's nodes are ``<service>-<group>-<n>``, keyed ``<group id>#<n>``."""
    from failover.nodegroups import group_node_names  # it builds on the action API, which builds on this

    return target_names(service, [*manifest.of_kind("node"), *manifest.of_kind("database"), *group_node_names(manifest)])


def firewall_names(manifest: Manifest, service: str) -> dict[str, str]:
    """Source security group id -> target firewall name."""
    return target_names(service, manifest.of_kind("firewall"))


def _fit(name: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    return _with_suffix(name, _short_hash(name))


def _with_suffix(name: str, suffix: str) -> str:
    head = name[: MAX_NAME - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


# -- database dumps -------------------------------------------------------------------------

DUMPS_BUCKET = "failover-dumps"
DUMP_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_DUMP_KEY = re.compile(r"(?P<database>.+)/(?P<time>\d{8}T\d{6}Z)(?P<suffix>\.[a-z0-9.]+)")


@dataclass(frozen=True)
class DumpKey:
    database: str
    taken_at: datetime
    suffix: str

    @property
    def key(self) -> str:
        return f"{self.database}/{self.taken_at.strftime(DUMP_TIME_FORMAT)}{self.suffix}"


def dump_suffix(engine: str) -> str | None:
    """The suffix of the dumps of an RDS engine (its engine's, :mod:`failover.databases`);
    None for engines failover cannot dump."""
    found = engine_for(engine)
    return found.dump_suffix if found else None


def dump_prefix(database: str) -> str:
    """The key prefix of every dump of ``database`` (its name in the manifest)."""
    return f"{database}/"


def dump_key(database: str, engine: str, taken_at: datetime) -> str:
    """Where a dump of ``database`` taken at ``taken_at`` is stored in the dumps bucket."""
    suffix = dump_suffix(engine)
    if suffix is None:
        raise ValueError(f"no dump format for engine {engine!r}")
    return DumpKey(database, taken_at.astimezone(UTC).replace(microsecond=0), suffix).key


def parse_dump_key(key: str) -> DumpKey | None:
    """A key of the dumps bucket read back; None when it is not a dump's."""
    match = _DUMP_KEY.fullmatch(key)
    if match is None or match["suffix"] not in dump_suffixes():
        return None
    taken_at = datetime.strptime(match["time"], DUMP_TIME_FORMAT).replace(tzinfo=UTC)
    return DumpKey(match["database"], taken_at, match["suffix"])


def newest_dump(keys: Iterable[str], database: str, engine: str) -> DumpKey | None:
    """The newest dump of ``database`` in the format of its engine, among ``keys``."""
    suffix = dump_suffix(engine)
    dumps = [
        dump for dump in map(parse_dump_key, keys)
        if dump is not None and dump.database == database and suffix is not None and dump.suffix == suffix
    ]
    return max(dumps, key=lambda dump: dump.taken_at, default=None)
