"""The one place that names adapters: source and target providers, resolved lazily.

The core imports no provider SDK; it asks this registry for an adapter by name and gets an
object that implements the ports of ``failover.ports``. Built-ins are listed below as
``"module:attribute"`` strings (imported on first use); third-party providers register
through the entry-point groups ``failover.sources`` and ``failover.targets`` of an
installed distribution, with the same ``module:attribute`` value.

- A **source provider** (``source.provider`` in the config) is a class implementing
  ``SourceProvider``: ``inventory``, ``storage`` and ``zones``, each built from a ``Config``.
- A **target provider** is a module-level factory per capability (``compute``, ``storage``,
  ``dns``), called with the profile's spec and ``file``/``field`` for error messages.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from failover.errors import InputError, Problem
from failover.ports import (
    ComputeTarget,
    DnsTarget,
    LoadBalancerTarget,
    SourceInventory,
    SourceProvider,
    SourceSecrets,
    SourceStorage,
    SourceZones,
    StorageTarget,
)

SOURCE_PROVIDERS: dict[str, str] = {
    "aws": "providers.aws.source:AwsSource",
    "libcloud": "providers.libcloud.source:LibcloudSource",
}

# capability -> factory; every target capability goes through libcloud drivers today.
TARGET_CAPABILITIES: dict[str, str] = {
    "compute": "providers.libcloud:connect_compute",
    "storage": "providers.libcloud:connect_storage",
    "dns": "providers.libcloud:connect_dns",
    "loadbalancer": "providers.libcloud:connect_loadbalancer",
}


def load_object(path: str) -> Any:
    """The attribute named by ``package.module:attribute``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@cache
def _registered(group: str) -> dict[str, str]:
    return {entry.name: entry.value for entry in entry_points(group=group)}


def source_provider_names() -> list[str]:
    """Every source provider that can be named in ``source.provider``."""
    return sorted(SOURCE_PROVIDERS.keys() | _registered("failover.sources").keys())


def source_provider(name: str, file: str = "failover.yaml") -> SourceProvider:
    path = SOURCE_PROVIDERS.get(name) or _registered("failover.sources").get(name)
    if path is None:
        raise InputError([Problem(file=file, field="source.provider", message=(
            f"unknown source provider {name!r}; known: {', '.join(source_provider_names())}"))])
    return load_object(path)()


def source_inventory(config: Any) -> SourceInventory:
    """The source adapter that snapshots the service of a loaded ``Config``."""
    return source_provider(config.source.provider, str(config.path)).inventory(config)


def source_storage(config: Any, bucket_regions: dict[str, str], workers: int) -> SourceStorage:
    """The source's object storage for a loaded ``Config`` (see ``SourceProvider.storage``)."""
    return source_provider(config.source.provider, str(config.path)).storage(config, bucket_regions, workers)


def source_zones(config: Any) -> SourceZones:
    """The source's DNS reader for a loaded ``Config``."""
    return source_provider(config.source.provider, str(config.path)).zones(config)


def source_secrets(config: Any) -> SourceSecrets:
    """The source's parameters and secrets reader (for ``evacuation.escrow``); InputError when the
    configured source provider cannot read them."""
    provider = source_provider(config.source.provider, str(config.path))
    if not hasattr(provider, "secrets"):
        raise InputError([Problem(file=str(config.path), field="evacuation.escrow", message=(
            f"source provider {config.source.provider!r} cannot read parameters and secrets for an escrow"))])
    return provider.secrets(config)


# The driver class a profile names, without building it (what validation resolves).
DRIVER_RESOLVER = "providers.libcloud.drivers:driver_class"


def resolve_driver(capability: str, name: str, **where: Any) -> type:
    """The driver class a profile's ``capability`` names, imported but never built (no
    network); ConfigError naming ``where`` (``file``, ``field``) when nothing answers to it."""
    return load_object(DRIVER_RESOLVER)(capability, name, **where)


def _target_factory(capability: str) -> Any:
    path = _registered("failover.targets").get(capability) or TARGET_CAPABILITIES[capability]
    return load_object(path)


def compute_target(spec: Any, **where: Any) -> ComputeTarget:
    """The compute adapter of a profile's ``ComputeSpec``; ``where`` (``file``, ``field``)
    names the spec's place in the config for error messages."""
    return _target_factory("compute")(spec, **where)


def storage_target(spec: Any, **where: Any) -> StorageTarget:
    """The storage adapter of a profile's ``StorageSpec`` (``where`` as for compute)."""
    return _target_factory("storage")(spec, **where)


def dns_target(spec: Any, **where: Any) -> DnsTarget:
    """The DNS adapter of a profile's ``DnsSpec`` (``where`` as for compute)."""
    return _target_factory("dns")(spec, **where)


def loadbalancer_target(spec: Any, **where: Any) -> LoadBalancerTarget:
    """The load-balancer adapter of a profile's ``loadbalancer`` spec (``where`` as for compute)."""
    return _target_factory("loadbalancer")(spec, **where)
