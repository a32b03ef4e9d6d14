"""A target driver with a firewall API that takes no firewall at node creation, for the tests
of the other way: firewalls attached after the nodes exist, in parallel.

Named in a target profile as ``firewallkit:NoFirewallsAtCreationDriver`` (``tests/support`` is
on the pytest ``pythonpath``).
"""

from __future__ import annotations

from typing import Any

from failover.testing.ec2_shim import MotoEC2NodeDriver


class NoFirewallsAtCreationDriver(MotoEC2NodeDriver):
    """The EC2 shim whose ``create_node`` names no security-group keyword (as a driver whose
    vendor attaches firewalls to existing nodes only): its security groups still work."""

    def create_node(self, name: str, size: Any, image: Any, location: Any = None, ex_userdata: str | None = None,
                    ex_metadata: dict[str, str] | None = None) -> Any:
        return super().create_node(name=name, size=size, image=image, location=location, ex_userdata=ex_userdata,
                                   ex_metadata=ex_metadata)
