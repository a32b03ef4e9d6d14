"""A target profile's adapters, connected lazily and once per run (connections are reused
by every step). The core asks for ``targets.compute`` and never sees libcloud."""

from __future__ import annotations

import threading
from typing import Any

from failover.config import Config
from failover.errors import ConfigError, Problem
from failover.adapters import compute_target, dns_target, storage_target
from failover.ports import ComputeTarget, DnsTarget, StorageTarget

_FACTORIES = {"compute": compute_target, "storage": storage_target, "dns": dns_target}


class Targets:
    def __init__(self, config: Config, name: str) -> None:
        self.config = config
        self.name = name
        self.profile = config.target(name)
        self._adapters: dict[str, Any] = {}
        self._lock = threading.Lock()

    def has(self, capability: str) -> bool:
        return getattr(self.profile, capability) is not None

    def _adapter(self, capability: str) -> Any:
        with self._lock:
            if capability not in self._adapters:
                spec = getattr(self.profile, capability)
                if spec is None:
                    raise ConfigError([Problem(
                        file=str(self.config.path), field=f"targets.{self.name}.{capability}",
                        message=f"the playbook needs a {capability} target, and this profile has none",
                    )])
                self._adapters[capability] = _FACTORIES[capability](
                    spec, file=str(self.config.path), field=f"targets.{self.name}.{capability}"
                )
            return self._adapters[capability]

    @property
    def compute(self) -> ComputeTarget:
        return self._adapter("compute")

    @property
    def storage(self) -> StorageTarget:
        return self._adapter("storage")

    @property
    def dns(self) -> DnsTarget:
        return self._adapter("dns")
