"""The action API: a closed parameter schema, a read-only ``plan``, an idempotent ``apply``,
and an ``undo``. The engine calls these; an action never talks to the journal directly
except through ``ActionContext.record`` (created resources, written at once)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from failover.registry import Registry

ACTIONS: Registry = Registry("action", "failover.actions")


class Params(BaseModel):
    """Base of every action's parameters: closed (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Change:
    """One line of a plan: what would be created, changed, or only checked."""

    operation: str  # "create", "update", "delete", "check", "none"
    kind: str  # "node", "record", "object", "webhook", ...
    name: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "kind": self.kind, "name": self.name, "detail": self.detail}


@dataclass
class ActionContext:
    """What a step's action sees: the run, the snapshot and target, a way to record
    created resources, and the signal to stop."""

    run_id: str
    step_id: str
    service: str
    dry_run: bool = False
    config: Any = None  # failover.config.Config
    target_name: str | None = None
    manifest: Any = None  # failover.manifest.Manifest (the snapshot)
    targets: Any = None  # failover.targets.Targets: the profile's compute, storage and dns adapters
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # outputs of the steps this one needs
    needs: dict[str, str] = field(default_factory=dict)  # the steps this one needs: id -> action (known in a plan too)
    created: list[dict[str, Any]] = field(default_factory=list)  # journaled resources of this step, so far
    recorder: Any = None  # callable(dict) -> None: persist one created resource now
    cancel: threading.Event = field(default_factory=threading.Event)
    log: Any = None  # callable(str) -> None
    drill_prefix: str | None = None  # a drill: everything created is named under this prefix, nothing real touched

    @property
    def naming_service(self) -> str:
        """The service name that target names are made from: ``drill-social-app`` in a drill
        (prefix ``drill``), so that a drill's nodes and firewalls never collide with real ones."""
        return f"{self.drill_prefix}-{self.service}" if self.drill_prefix else self.service

    @property
    def labels(self) -> dict[str, str]:
        """Tags/labels every created resource carries, to find it again after a crash."""
        return {"failover-run": self.run_id, "failover-service": self.service, "failover-step": self.step_id}

    def record(self, kind: str, resource_id: str, **details: Any) -> None:
        """Journal a created resource as soon as the provider returned it (before anything else)."""
        item = {"kind": kind, "id": resource_id, **details}
        if self.recorder is not None:
            self.recorder(item)
        self.created.append(item)

    def info(self, message: str) -> None:
        if self.log is not None:
            self.log(message)


class Action:
    """Subclass, set ``Params`` and ``example``, implement ``plan``, ``apply``, ``undo``, and register:

    >>> @ACTIONS.register("pause")
    ... class Pause(Action): ...
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    example: ClassVar[dict[str, Any]] = {}
    mutates: ClassVar[bool] = True  # False for actions that only read (wait-healthy, pause)

    def plan(self, ctx: ActionContext, params: Params) -> list[Change]:
        """Read-only: what ``apply`` would create or change. Also the dry run's check."""
        raise NotImplementedError

    def apply(self, ctx: ActionContext, params: Params) -> dict[str, Any]:
        """Do it, idempotently: find what an earlier attempt created before creating. Returns outputs."""
        raise NotImplementedError

    def undo(self, ctx: ActionContext, params: Params) -> None:
        """Remove what ``apply`` created (``ctx.created``); idempotent: gone already is fine."""
        raise NotImplementedError
