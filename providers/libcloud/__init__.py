"""Targets over any Apache Libcloud driver: one adapter per capability.

``failover.adapters.TARGET_CAPABILITIES`` names the factories below; a profile's ``driver`` is a
libcloud provider name or ``package.module:DriverClass`` (see ``drivers.py``).

| capability | factory | adapter |
| --- | --- | --- |
| compute | ``connect_compute(ComputeSpec)`` | ``compute.LibcloudCompute`` (a ``ComputeTarget``) |
| storage | ``connect_storage(StorageSpec)`` | ``storage.LibcloudStorage`` (a ``StorageTarget``) |
| dns | ``connect_dns(DnsSpec)`` | ``dns.LibcloudDns`` (a ``DnsTarget``) |
| loadbalancer | ``connect_loadbalancer(DriverSpec)`` | ``loadbalancer.LibcloudBalancers`` (a ``LoadBalancerTarget``) |
"""

from providers.libcloud.compute import connect_compute
from providers.libcloud.dns import connect_dns
from providers.libcloud.drivers import LIBCLOUD_PROVIDERS, forget_adapters
from providers.libcloud.loadbalancer import connect_loadbalancer
from providers.libcloud.storage import connect_storage

__all__ = [
    "LIBCLOUD_PROVIDERS", "connect_compute", "connect_dns", "connect_loadbalancer", "connect_storage", "forget_adapters",
]
