"""libcloud's Route53 DNS driver made to talk to a ``moto_server`` (test support only).

Three differences between moto and real Route53 stop the stock driver, so a subclass fixes
them locally; libcloud itself is never patched, which would break real Route53:

- libcloud signs with the old ``AWS3-HTTPS`` header, which carries no service name, and
  moto_server, serving every AWS service on one port, routes an unsigned-looking request
  to S3 (404): the subclass signs with SigV4 for the service ``route53``;
- libcloud speaks API version ``2012-02-29``, which moto does not route: the requests
  go to ``/2013-04-01/`` (the same XML for the calls libcloud makes);
- moto answers in the ``2013-04-01`` namespace, so every listing would parse empty:
  the answers' namespace is rewritten to the one libcloud searches for.

A target profile names it as ``failover.testing.route53_shim:MotoRoute53DNSDriver`` with
options ``{key, secret, host: 127.0.0.1, port: PORT, secure: false}``. Its ``type`` stays
``route53``, so the DNS adapter treats it as the real Route53 (whole record sets).
"""

from __future__ import annotations

import re

from libcloud.common.aws import SignedAWSConnection
from libcloud.dns.drivers.route53 import API_ROOT, NAMESPACE, Route53DNSDriver, Route53DNSResponse

MOTO_API_VERSION = "2013-04-01"
_MOTO_API_ROOT = f"/{MOTO_API_VERSION}/"
_ANY_NAMESPACE = re.compile(rb'xmlns="https://route53\.amazonaws\.com/doc/[0-9-]+/"')
_LIBCLOUD_NAMESPACE = f'xmlns="{NAMESPACE}"'.encode()


class MotoRoute53Response(Route53DNSResponse):
    """A Route53 answer in the namespace libcloud's parser expects."""

    def parse_body(self):
        self.body = _ANY_NAMESPACE.sub(_LIBCLOUD_NAMESPACE, _bytes(self.body)).decode()
        return super().parse_body()


def _bytes(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else body


class MotoRoute53Connection(SignedAWSConnection):
    """SigV4 for ``route53``, and libcloud's API root moved to the version moto serves."""

    service_name = "route53"
    version = MOTO_API_VERSION
    responseCls = MotoRoute53Response

    def __init__(self, *args, **kwargs):
        kwargs["signature_version"] = "4"
        super().__init__(*args, **kwargs)

    def request(self, action, *args, **kwargs):
        if action.startswith(API_ROOT):
            action = _MOTO_API_ROOT + action[len(API_ROOT):]
        return super().request(action, *args, **kwargs)


class MotoRoute53DNSDriver(Route53DNSDriver):
    """``Route53DNSDriver`` against moto_server."""

    connectionCls = MotoRoute53Connection

    def __init__(self, key, secret=None, secure=False, host="127.0.0.1", port=None, region="us-east-1", **kwargs):
        self.region_name = region  # the SigV4 signer reads the driver's region
        super().__init__(key, secret, secure=secure, host=host, port=port, **kwargs)
