"""EC2 listings read to their last page.

libcloud's EC2 driver reads one answer of each ``Describe`` call, but EC2 pages them with
``NextToken``: ``DescribeInstances`` at 100 reservations on moto, and on EC2 itself when an
answer is large or ``MaxResults`` is asked. Whatever was past the first page went unseen: a
101st node "disappeared while starting", a drill's leftover node was not found, a large
account's inventory lost nodes. These follow ``nextToken`` to the end, and build the driver's
own objects from each page (``_to_nodes``, ``_to_security_groups``), so the nodes and groups
are those ``list_nodes`` and ``ex_get_security_groups`` would give. Other drivers (DigitalOcean,
Vultr, GCE) page their listings themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from libcloud.compute.drivers.ec2 import NAMESPACE, BaseEC2NodeDriver
from libcloud.utils.xml import findall, findtext

from failover.errors import OperationFailed

# A bound on one listing: a service handing out tokens forever is an error, not a hang.
MAX_PAGES = 10_000


def is_ec2(driver: Any) -> bool:
    return isinstance(driver, BaseEC2NodeDriver)


def pages(driver: Any, params: dict[str, str]) -> Iterator[Any]:
    """Each answer (parsed XML) of one ``Describe`` call, following ``nextToken`` to the last."""
    token, seen = None, set()
    for _ in range(MAX_PAGES):
        asked = params if token is None else {**params, "NextToken": token}
        answer = driver.connection.request(driver.path, params=asked).object
        yield answer
        token = findtext(element=answer, xpath="nextToken", namespace=NAMESPACE)
        if not token:
            return
        if token in seen:
            raise OperationFailed(f"{params['Action']} handed out the same NextToken twice: the listing would not end")
        seen.add(token)
    raise OperationFailed(f"{params['Action']} still had more after {MAX_PAGES} pages")


def list_nodes(driver: Any, *, ids: Collection[str] = (), filters: dict[str, Any] | None = None) -> list[Any]:
    """Every node (of ``ids``, matching ``filters``) on every page, with its Elastic IPs in
    ``public_ips`` as the driver's ``list_nodes`` adds them. Not EC2: the driver's ``list_nodes``."""
    if not is_ec2(driver):
        return driver.list_nodes()
    nodes = []
    for answer in pages(driver, _query(driver, "DescribeInstances", "InstanceId", ids, filters)):
        for reservation in findall(element=answer, xpath="reservationSet/item", namespace=NAMESPACE):
            nodes += driver._to_nodes(reservation, "instancesSet/item")
    elastic_ips = driver.ex_describe_addresses(nodes)
    for node in nodes:
        node.public_ips.extend(elastic_ips.get(node.id, []))
    return nodes


def security_groups(driver: Any, *, ids: Collection[str] = (), filters: dict[str, Any] | None = None) -> list[Any]:
    """Every security group (of ``ids``, matching ``filters``) on every page, as the driver's
    ``ex_get_security_groups`` makes them."""
    groups = []
    for answer in pages(driver, _query(driver, "DescribeSecurityGroups", "GroupId", ids, filters)):
        groups += driver._to_security_groups(answer)
    return groups


def _query(driver: Any, action: str, id_name: str, ids: Collection[str], filters: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters of a Describe call for ``ids`` (as ``id_name``.N) matching ``filters``."""
    params = {"Action": action}
    if ids:
        params.update(driver._pathlist(id_name, sorted(ids)))
    if filters:
        params.update(driver._build_filters(filters))
    return params
