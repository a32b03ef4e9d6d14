"""A target profile's adapters, connected lazily and once per run (connections are reused
by every step). The core asks for ``targets.compute`` and never sees libcloud."""

from __future__ import annotations

import threading
from typing import Any

from failover.adapters import compute_target, dns_target, loadbalancer_target, resolve_driver, storage_target
from failover.config import Config
from failover.errors import ConfigError, Problem
from failover.ports import ComputeTarget, DnsTarget, LoadBalancerTarget, StorageTarget

_FACTORIES = {"compute": compute_target, "storage": storage_target, "dns": dns_target,
              "loadbalancer": loadbalancer_target}
CAPABILITIES = tuple(_FACTORIES)


def profile_problems(config: Config, name: str | None = None) -> list[Problem]:
    """What is wrong with target profile ``name`` (every profile when None), found without
    the network: the profile must exist (a config without targets has none), and each
    driver it names must resolve (its class imported, never built)."""
    if name is None and not config.targets:
        return [config.problem(("targets",), "no target profile: add the provider to fail over to")]
    try:
        profiles = {name: config.target(name)} if name is not None else dict(config.targets)
    except ConfigError as exc:
        return exc.problems
    problems = source_driver_problems(config) if name is None else []
    for profile_name, profile in profiles.items():
        for capability in CAPABILITIES:
            spec = getattr(profile, capability)
            if spec is None:
                continue
            loc = ("targets", profile_name, capability, "driver")
            try:
                resolve_driver(capability, spec.driver, file=str(config.path), field=".".join(loc[:-1]))
            except ConfigError as exc:
                problems += [config.problem(loc, problem.message) for problem in exc.problems]
    return problems


def source_driver_problems(config: Config) -> list[Problem]:
    """The drivers a libcloud source names (``source.compute/storage/dns``) that do not resolve."""
    problems = []
    for capability in CAPABILITIES:
        spec = getattr(config.source, capability, None)
        if spec is None:
            continue
        loc = ("source", capability, "driver")
        try:
            resolve_driver(capability, spec.driver, file=str(config.path), field=".".join(loc[:-1]))
        except ConfigError as exc:
            problems += [config.problem(loc, problem.message) for problem in exc.problems]
    return problems


def require_profile(config: Config, name: str) -> None:
    """ConfigError (exit 2) carrying :func:`profile_problems`, if any."""
    problems = profile_problems(config, name)
    if problems:
        raise ConfigError(problems)


class Targets:
    def __init__(self, config: Config, name: str) -> None:
        self.config = config
        self.name = name
        require_profile(config, name)  # it exists and its drivers resolve, before any call
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

    @property
    def loadbalancer(self) -> LoadBalancerTarget:
        return self._adapter("loadbalancer")
