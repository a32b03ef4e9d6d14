"""libcloud's classic ELB driver made to talk to a ``moto_server`` (test support only).

Two differences between moto and real ELB stop the stock driver, so a subclass fixes them
locally; libcloud itself is never patched, which would break real ELB:

- the driver always builds its host from the region (``elasticloadbalancing.REGION.amazonaws.com``):
  the subclass takes ``host``, ``port`` and ``secure`` like the other drivers;
- libcloud sends its requests to ``/2012-06-01/``, which moto_server does not route (it serves the
  query API at ``/``), and moto may answer in another version's namespace: the path is moved to
  ``/`` and the answers' namespace rewritten to the one libcloud searches for.

A target profile names it as ``failover.testing.elb_shim:MotoELBDriver`` with options
``{key, secret, port: PORT}`` (``host`` 127.0.0.1 and ``secure: false`` by default).
"""

from __future__ import annotations

import re

from libcloud.loadbalancer.base import Driver
from libcloud.loadbalancer.drivers.elb import NS, ElasticLBDriver, ELBConnection, ELBResponse

_ANY_NAMESPACE = re.compile(rb'xmlns="https?://elasticloadbalancing\.amazonaws\.com/doc/[0-9-]+/?"')
_LIBCLOUD_NAMESPACE = f'xmlns="{NS}"'.encode()


class MotoELBResponse(ELBResponse):
    def parse_body(self):
        body = self.body if isinstance(self.body, bytes) else self.body.encode()
        self.body = _ANY_NAMESPACE.sub(_LIBCLOUD_NAMESPACE, body).decode()
        return super().parse_body()


class MotoELBConnection(ELBConnection):
    responseCls = MotoELBResponse

    def request(self, action, *args, **kwargs):
        return super().request("/", *args, **kwargs)


class MotoELBDriver(ElasticLBDriver):
    """``ElasticLBDriver`` against moto_server."""

    connectionCls = MotoELBConnection

    def __init__(self, key, secret=None, host="127.0.0.1", port=None, secure=False, region="us-east-1"):
        self.token = None
        self.region = self.region_name = region
        Driver.__init__(self, key, secret, secure=secure, host=host, port=port, region=region)
