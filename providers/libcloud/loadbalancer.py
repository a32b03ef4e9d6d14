"""A load-balancer target over any libcloud ``loadbalancer`` ``Driver``: one balancer per
listener (libcloud's base API has one port per balancer), members by address and port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from libcloud.loadbalancer.base import Algorithm, Member

from failover.config import DEFAULT_FILE, DriverSpec
from failover.ports import BalancerInfo
from failover.retry import retry_requests
from providers.libcloud.drivers import ADAPTERS, DriverSession, retried


def connect_loadbalancer(spec: DriverSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> LibcloudBalancers:
    """The load-balancer target of a profile (shared by every caller in this process)."""
    return ADAPTERS.get("loadbalancer", spec, file, field, lambda: LibcloudBalancers(spec, file=file, field=field))


def balancer_info(balancer: Any) -> BalancerInfo:
    return BalancerInfo(id=str(balancer.id), name=str(balancer.name or ""), address=str(balancer.ip) if balancer.ip else None,
                        port=int(balancer.port) if balancer.port else None)


class LibcloudBalancers:
    def __init__(self, spec: DriverSpec, *, file: str = DEFAULT_FILE, field: str | None = None) -> None:
        self.spec = spec
        self.session = DriverSession("loadbalancer", spec, file=file, field=field)

    @retried
    def list_balancers(self) -> list[BalancerInfo]:
        with self.session.translating("list load balancers"):
            return [balancer_info(b) for b in self.session.driver.list_balancers()]

    def find_balancer(self, name: str) -> BalancerInfo | None:
        return next((b for b in self.list_balancers() if b.name == name), None)

    def create_balancer(self, name: str, port: int, protocol: str, members: Sequence[tuple[str, int]]) -> BalancerInfo:
        """Create it, or (a create whose answer was lost) find it by its name."""
        def create() -> BalancerInfo:
            found = self.find_balancer(name)
            if found is not None:
                return found
            with self.session.translating(f"create load balancer {name}"):
                balancer = self.session.driver.create_balancer(
                    name=name, port=port, protocol=protocol, algorithm=Algorithm.ROUND_ROBIN,
                    members=[Member(None, address, member_port) for address, member_port in members],
                )
            return balancer_info(balancer)

        return retry_requests(create)

    def destroy_balancer(self, balancer_id: str) -> bool:
        def destroy() -> bool:
            if not any(b.id == balancer_id for b in self.list_balancers()):
                return False
            with self.session.translating(f"destroy load balancer {balancer_id}"):
                driver = self.session.driver
                driver.destroy_balancer(driver.get_balancer(balancer_id))
            return True

        return retry_requests(destroy)
