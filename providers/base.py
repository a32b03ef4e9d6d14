"""The small protocols every adapter implements, and the registry that finds them lazily.

The core (``failover/``) talks to providers only through these; it never imports boto3
or libcloud itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from failover.manifest import Manifest

# A progress callback: (event, label, detail). Events: "total" (detail: how many),
# "start", "done" (detail: how many items).
Progress = Callable[[str, str, Any], None]


def no_progress(event: str, label: str, detail: Any = None) -> None:
    return None


class SourceInventory(Protocol):
    """Reads a service's resources from the source provider into a manifest."""

    def inventory(self, progress: Progress = no_progress) -> Manifest: ...


# name -> "module:Class"; imported only when used.
SOURCES: dict[str, str] = {
    "aws": "providers.aws.inventory:AwsInventory",
}


def load_class(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def source_inventory(config: Any) -> SourceInventory:
    """The source adapter for a loaded ``Config``."""
    return load_class(SOURCES[config.source.provider]).from_config(config)


# -- targets -----------------------------------------------------------------------------
# Provider-neutral value objects the libcloud adapters return (the core never sees libcloud).

@dataclass(frozen=True)
class SizeInfo:
    """A target machine size; ``price_hourly`` is None where the driver gives no prices."""

    id: str
    name: str
    vcpus: int | None
    ram_mib: int | None
    disk_gib: int | None
    price_hourly: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ImageInfo:
    """A target image; ``description`` and ``extra`` help match an OS family and version."""

    id: str
    name: str
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
