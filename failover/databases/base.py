"""What failover must know of a database engine, and the registry of engines.

An engine (one module each: :mod:`failover.databases.postgres`, :mod:`failover.databases.mysql`)
says which RDS engine names and DSN schemes it covers, how a dump of it is taken and
restored through a DSN (the client tools' command lines and environments: never a
password on a command line), how a dump is stored (file suffix, content type, how its
bytes are transformed on the way), how a drill validates a dump, and what a database node
runs as root to install the engine and restore a dump. Sizes come from the RDS instance
class (:func:`rds_instance_class_shape`, shared by every RDS engine).

A new engine is a module with a subclass of :class:`Engine` registered with
``@ENGINES.register("family")``: built-in modules of this package are found by the
registry; others through the entry-point group ``failover.databases`` or
``$FAILOVER_ENGINE_MODULES``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from failover.manifest import Database
from failover.registry import Registry

if TYPE_CHECKING:
    from failover.dsn import Dsn

ENGINES: Registry = Registry("engine", "failover.databases")

# Versions are written into a database node's root script: only digits and dots get there.
VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")
SHOWN_VERSION = 40  # characters of a refused version shown in its reason


class Engine:
    """One database engine. Subclass, fill the class attributes, implement the methods, register."""

    name: ClassVar[str]  # set by the registry: the engine's family ("postgres", "mysql")
    title: ClassVar[str]  # for people: "PostgreSQL"
    rds_engines: ClassVar[tuple[str, ...]]  # RDS engine names it covers, lowercase
    schemes: ClassVar[tuple[str, ...]]  # DSN URL schemes of its servers
    default_port: ClassVar[int]
    dump_suffix: ClassVar[str]  # of dump keys: "<database>/<UTC time><suffix>"
    dump_description: ClassVar[str]  # "pg_dump -Fc"
    dump_content_type: ClassVar[str]
    dump_tool: ClassVar[str]  # the tool named in a failed dump's message
    version_required: ClassVar[bool] = True  # whether a node can be installed without knowing the version

    # -- a DSN --------------------------------------------------------------------------------

    def dsn_problem(self, dsn: Dsn) -> str | None:
        """Why ``dsn`` cannot be dumped or restored through, or None."""
        return None

    # -- dumps through a DSN ------------------------------------------------------------------

    def dump_command(self, dsn: Dsn, workdir: Path) -> tuple[list[str], dict[str, str]]:
        """The dump tool's command line and environment; files it needs go in ``workdir`` (0700)."""
        raise NotImplementedError

    def dump_stream(self, chunks: Iterable[bytes]) -> Iterable[bytes]:
        """The tool's output as it is stored (MySQL's is gzipped)."""
        return chunks

    def restore_command(self, dsn: Dsn, workdir: Path) -> tuple[list[str], dict[str, str]]:
        """The restore tool's command line and environment; it reads the dump on its stdin."""
        raise NotImplementedError

    def restore_stream(self, chunks: Iterable[bytes], name: str) -> Iterable[bytes]:
        """A stored dump as the restore tool reads it (MySQL's gunzipped)."""
        return chunks

    def validate_dump(self, chunks: Iterable[bytes], name: str, cancelled: Callable[[], bool]) -> dict[str, Any]:
        """Read a stored dump through without restoring it: ``{"validated_bytes": N, ...}``;
        OperationFailed when it is not a valid dump, Interrupted when ``cancelled()``."""
        raise NotImplementedError

    # -- a database node ----------------------------------------------------------------------

    def version_problem(self, version: str | None) -> str | None:
        """Why a database node cannot be built for ``version``, or None. Only digits and dots
        are ever written into the node's script."""
        if version is None:
            return f"no engine version: cannot tell which {self.title} to install" if self.version_required else None
        if VERSION.fullmatch(version) is None:
            return f"engine version {shown(version)} is not digits and dots: refused"
        return None

    def label(self, database: Database) -> str:
        """What the node runs, for people: "PostgreSQL 15". Call after ``version_problem`` found none."""
        raise NotImplementedError

    def node_install(self, database: Database) -> list[str]:
        """Root shell lines installing the engine on Ubuntu, listening on the private networks
        (``PRIVATE_NETWORKS``). Call after ``version_problem`` found none."""
        raise NotImplementedError

    def node_restore(self) -> list[str]:
        """Root shell lines restoring the dump at ``$DUMP`` into the installed server."""
        raise NotImplementedError

    def instance_class_shape(self, instance_class: str | None) -> tuple[int, int] | None:
        """(vCPUs, memory MiB) of the database's instance class; None when unknown."""
        return rds_instance_class_shape(instance_class)


PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def engine_for(rds_engine: str | None) -> Engine | None:
    """The engine of an RDS engine name (``aurora-postgresql``, ``mariadb``...); None when
    failover cannot dump it."""
    for _, cls in ENGINES:
        if (rds_engine or "").lower() in cls.rds_engines:
            return _instance(cls)
    return None


def engine_for_scheme(scheme: str) -> Engine | None:
    """The engine whose servers a DSN URL scheme names (``postgresql``, ``mysql``...)."""
    for _, cls in ENGINES:
        if scheme.lower() in cls.schemes:
            return _instance(cls)
    return None


def engine_named(name: str) -> Engine:
    """The engine of a family name (``postgres``); KeyError when none is registered."""
    cls = ENGINES.get(name)
    if cls is None:
        raise KeyError(name)
    return _instance(cls)


def engines() -> list[Engine]:
    return [_instance(cls) for _, cls in ENGINES]


@cache
def _instance(cls: type[Engine]) -> Engine:
    return cls()


def dump_suffixes() -> tuple[str, ...]:
    return tuple(sorted({engine.dump_suffix for engine in engines()}))


def shown(text: str) -> str:
    """A value from the source in a message: quoted, escaped (no control character), cut short."""
    cut = text if len(text) <= SHOWN_VERSION else f"{text[:SHOWN_VERSION]}..."
    return ascii(cut)


# -- sizes -------------------------------------------------------------------------------------

# vCPUs and memory (MiB) of RDS instance classes: the burstable ones by name; the general
# purpose (db.m*) and memory optimized (db.r*) ones have 4 and 8 GiB per vCPU, and
# large = 2 vCPUs, xlarge = 4, Nxlarge = 4N.
BURSTABLE_CLASSES = {
    "micro": (2, 1024), "small": (2, 2048), "medium": (2, 4096),
    "large": (2, 8192), "xlarge": (4, 16384), "2xlarge": (8, 32768),
}
T2_CLASSES = {"micro": (1, 1024), "small": (1, 2048), "medium": (2, 4096), "large": (2, 8192)}
MIB_PER_VCPU = {"m": 4096, "r": 8192}
_CLASS = re.compile(r"^db\.(?P<family>[a-z]+)(?P<generation>\d+)[a-z]*\.(?P<size>[a-z0-9]+)$")


def rds_instance_class_shape(instance_class: str | None) -> tuple[int, int] | None:
    """(vCPUs, memory MiB) of an RDS instance class; None when it is not a common one."""
    match = _CLASS.match(instance_class or "")
    if match is None:
        return None
    family, generation, size = match["family"], match["generation"], match["size"]
    if family == "t":
        return (T2_CLASSES if generation == "2" else BURSTABLE_CLASSES).get(size)
    if family in MIB_PER_VCPU:
        vcpus = 2 if size == "large" else 4 if size == "xlarge" else _multiple_xlarge(size)
        return (vcpus, vcpus * MIB_PER_VCPU[family]) if vcpus else None
    return None


def _multiple_xlarge(size: str) -> int | None:
    match = re.fullmatch(r"(\d+)xlarge", size)
    return 4 * int(match[1]) if match else None


# -- running the tools ---------------------------------------------------------------------------


def counted(chunks: Iterable[bytes], total: list[int]) -> Iterator[bytes]:
    """``chunks`` as they come, their length added up in ``total[0]``."""
    for chunk in chunks:
        total[0] += len(chunk)
        yield chunk
