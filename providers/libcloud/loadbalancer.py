"""A load-balancer target over any libcloud ``loadbalancer`` ``Driver``: one balancer per
listener (libcloud's base API has one port per balancer), members by address and port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from libcloud.loadbalancer.base import Algorithm, Member
from libcloud.loadbalancer.drivers import alb, elb
from libcloud.utils.xml import findtext

from failover.config import DEFAULT_FILE, DriverSpec
from failover.errors import OperationFailed
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
            return [balancer_info(b) for b in every_balancer(self.session.driver)]

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


# AWS's balancer drivers (classic and application) read one page of DescribeLoadBalancers (400 on
# AWS, 50 on moto): past it, a balancer of the run was not found and would be made twice.
AWS_BALANCER_DRIVERS = ((elb.ElasticLBDriver, elb.ROOT, elb.NS), (alb.ApplicationLBDriver, alb.ROOT, alb.NS))
MAX_PAGES = 10_000  # a bound: a service handing out markers forever is an error, not a hang


def every_balancer(driver: Any) -> list[Any]:
    """Every balancer of the driver: AWS's page after page (by ``Marker``), others as they list them."""
    paged = next(((root, ns) for cls, root, ns in AWS_BALANCER_DRIVERS if isinstance(driver, cls)), None)
    if paged is None:
        return list(driver.list_balancers())
    root, namespace = paged
    balancers, marker, seen = [], None, set()
    for _ in range(MAX_PAGES):
        params = {"Action": "DescribeLoadBalancers", **({"Marker": marker} if marker else {})}
        answer = driver.connection.request(root, params=params).object
        balancers += driver._to_balancers(answer)
        marker = findtext(element=answer, xpath="DescribeLoadBalancersResult/NextMarker", namespace=namespace)
        if not marker:
            return balancers
        if marker in seen:
            raise OperationFailed("DescribeLoadBalancers handed out the same Marker twice: the listing would not end")
        seen.add(marker)
    raise OperationFailed(f"DescribeLoadBalancers still had more after {MAX_PAGES} pages")
