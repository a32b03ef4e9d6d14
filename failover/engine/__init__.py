"""The playbook engine: a DAG scheduler over a journal in the state store, with a
per-service lock, retries of transient errors, resume and rollback.

``runner.Engine`` is the entry point; ``scheduler`` knows only tasks and threads,
``journal`` only the state store, ``steps`` what each pass does with one step.
"""

from failover.engine.journal import RunStatus, StepStatus
from failover.engine.observer import Observer
from failover.engine.runner import DEFAULT_PARALLELISM, Engine
from failover.engine.steps import Plan, StepPlan
from failover.retry import Backoff

__all__ = ["DEFAULT_PARALLELISM", "Backoff", "Engine", "Observer", "Plan", "RunStatus", "StepPlan", "StepStatus"]
