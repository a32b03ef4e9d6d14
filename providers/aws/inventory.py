"""The AWS inventory: every collector, every region, in parallel, into one manifest.

Each AWS service has a module here with a ``collect(ctx, region)`` function (``region``
is ``None`` for global services) returning what it found that carries the selector's
tags. Collectors run concurrently, one task per (service, region); inside a collector,
per-item calls (a bucket's objects, a zone's records, an instance's user data) fan out on
a second, shared pool. The first error stops the inventory: no partial snapshot.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from failover.errors import ProviderError
from failover.manifest import Manifest, SourceInfo, Unsupported, now_iso
from failover.ports import Progress, no_progress
from providers.aws.session import AwsSession

T = TypeVar("T")
R = TypeVar("R")

GLOBAL = "global"
FANOUT_PREFIX = "fanout"
HOME_REGION = "us-east-1"  # where global services (S3 listing, Route53, STS) are asked

# (label, module, regional?) — one module per AWS service.
COLLECTORS: list[tuple[str, str, bool]] = [
    ("ec2", "providers.aws.ec2", True),
    ("rds", "providers.aws.rds", True),
    ("elbv2", "providers.aws.elbv2", True),
    ("elb", "providers.aws.elb", True),
    ("autoscaling", "providers.aws.autoscaling", True),
    ("acm", "providers.aws.acm", True),
    ("unsupported", "providers.aws.unsupported", True),
    ("tagged", "providers.aws.tagged", True),
    ("s3", "providers.aws.s3", False),
    ("route53", "providers.aws.route53", False),
    ("iam", "providers.aws.iam", False),
]


@dataclass
class Found:
    """What one collector found: manifest resources, resources known to be unsupported, and
    every resource carrying the selector's tags (``tagged.Tagged``), whatever its kind."""

    resources: list[Any] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    tagged: list[Any] = field(default_factory=list)


def tag_dict(tags: Iterable[dict[str, Any]] | None) -> dict[str, str]:
    """AWS ``[{Key, Value}]`` (any key case) -> ``{key: value}``."""
    out: dict[str, str] = {}
    for tag in tags or ():
        key = tag.get("Key", tag.get("key"))
        value = tag.get("Value", tag.get("value"))
        if key is not None:
            out[str(key)] = "" if value is None else str(value)
    return out


def name_of(tags: dict[str, str], default: str) -> str:
    return tags.get("Name") or default


def batches(items: list[T], size: int) -> list[list[T]]:
    """``items`` in lists of at most ``size`` (APIs that take N ids per request)."""
    return [items[start : start + size] for start in range(0, len(items), size)]


class Aborted(Exception):
    """Fan-out work skipped because the inventory is already failing."""


class Context:
    """What a collector needs: the session, the selector, and the fan-out pool."""

    def __init__(self, session: AwsSession, selector: dict[str, str], regions: list[str], fanout: ThreadPoolExecutor):
        self.session = session
        self.selector = dict(selector)
        self.regions = list(regions)
        self._fanout = fanout
        self.aborted = threading.Event()  # set when another collector failed: drain, don't start work

    def selected(self, tags: dict[str, str]) -> bool:
        """A resource belongs when it carries every selector tag with exactly that value."""
        return all(tags.get(key) == value for key, value in self.selector.items())

    def tag_filters(self) -> list[dict[str, Any]]:
        """EC2-style server-side filters for the selector (checked again client-side)."""
        return [{"Name": f"tag:{key}", "Values": [value]} for key, value in self.selector.items()]

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` on the fan-out pool, results in order; the first error is raised."""
        items = list(items)
        # Inline on a fan-out thread: waiting there for the same pool could deadlock it.
        if len(items) <= 1 or threading.current_thread().name.startswith(FANOUT_PREFIX):
            return [fn(item) for item in items]
        def guarded(item: T) -> R:
            if self.aborted.is_set():
                raise Aborted()
            return fn(item)

        futures = [self._fanout.submit(guarded, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                for other in futures:
                    other.cancel()
                raise future.exception()  # type: ignore[misc]
        return [future.result() for future in futures]


class AwsInventory:
    def __init__(
        self,
        *,
        service: str,
        regions: list[str],
        selector: dict[str, str],
        session: AwsSession,
        workers: int = 32,
    ) -> None:
        self.service = service
        self.regions = list(regions)
        self.selector = dict(selector)
        self.session = session
        self.workers = workers

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> AwsInventory:
        session = AwsSession(endpoint_url=config.source.endpoint_url, profile=config.source.profile)
        return cls(
            service=config.service,
            regions=config.source.regions,
            selector=config.source.select.tags,
            session=session,
            **kwargs,
        )

    def tasks(self) -> list[tuple[str, str, str | None]]:
        out: list[tuple[str, str, str | None]] = []
        for label, module, regional in COLLECTORS:
            if regional:
                out += [(label, module, region) for region in self.regions]
            else:
                out.append((label, module, None))
        return out

    def inventory(self, progress: Progress = no_progress) -> Manifest:
        tasks = self.tasks()
        progress("total", "collectors", len(tasks))
        found: list[Found] = []
        account: dict[str, str | None] = {"id": None}
        lock = threading.Lock()

        with ThreadPoolExecutor(self.workers, thread_name_prefix=FANOUT_PREFIX) as fanout, ThreadPoolExecutor(
            len(tasks) + 1, thread_name_prefix="collect"
        ) as outer:
            ctx = Context(self.session, self.selector, self.regions, fanout)

            def run(label: str, module: str, region: str | None) -> None:
                name = f"{label} {region or GLOBAL}"
                progress("start", name, None)
                collect = importlib.import_module(module).collect
                result: Found = collect(ctx, region)
                with lock:
                    found.append(result)
                progress("done", name, len(result.resources) + len(result.unsupported))

            def whoami() -> None:
                identity = self.session.call("sts", self.regions[0] if self.regions else HOME_REGION, "get_caller_identity")
                account["id"] = identity.get("Account") if identity else None

            futures: list[Future[None]] = [outer.submit(whoami)]
            futures += [outer.submit(run, *task) for task in tasks]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                # Future.cancel (unlike shutdown(cancel_futures=True)) wakes whoever waits on it;
                # queued fan-out work drains at once through the aborted flag.
                ctx.aborted.set()
                for f in pending:
                    f.cancel()
                wait(pending)
                raise _first_error(failed)

        resources = _distinct([r for f in found for r in f.resources])
        _mark_group_members(resources)
        unsupported = [u for f in found for u in f.unsupported]
        unsupported += _left_behind([t for f in found for t in f.tagged], resources, unsupported)
        manifest = Manifest(
            service=self.service,
            taken_at=now_iso(),
            source=SourceInfo(provider="aws", account=account["id"], regions=self.regions),
            resources=resources,
            unsupported=unsupported,
        )
        return manifest.canonical()


def _distinct(resources: list[Any]) -> list[Any]:
    """One copy of a resource two collectors brought in (a security group both a node's rules and a
    balancer use, say), the service's own one where either is."""
    kept: dict[tuple[str, str, str], Any] = {}
    for resource in resources:
        key = (resource.kind, resource.region, resource.id)
        if key not in kept or (resource.owned and not kept[key].owned):
            kept[key] = resource
    return list(kept.values())


def _mark_group_members(resources: list[Any]) -> None:
    from providers.aws import autoscaling  # it imports this module (Context, Found)

    autoscaling.mark_members(resources)


def _left_behind(tagged: list[Any], resources: list[Any], unsupported: list[Unsupported]) -> list[Unsupported]:
    """Tagged resources that no collector turned into a manifest resource: reported, never dropped."""
    from providers.aws import tagged as tagged_module  # it imports this module (Context, Found)

    return [
        Unsupported(type=item.type, id=item.id, name=item.name, region=item.region, reason=tagged_module.reason(item.type))
        for item in tagged_module.left_behind(tagged, resources, unsupported)
    ]


def _first_error(failed: list[Future[Any]]) -> BaseException:
    """Prefer the error that explains the others: unreachable or refused before anything else."""
    errors = [f.exception() for f in failed]
    for error in errors:
        if isinstance(error, ProviderError):
            return error  # type: ignore[return-value]
    return errors[0]  # type: ignore[return-value]
