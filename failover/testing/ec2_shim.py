"""libcloud's EC2 node driver made to talk to a ``moto_server`` (test support only).

Three differences between moto and real EC2 stop the stock driver, so a subclass fixes
them locally; libcloud itself is never patched, which would break real EC2:

- moto answers in the namespace ``http://ec2.amazonaws.com/doc/2016-11-15`` without the
  trailing slash libcloud searches for, so every list would parse empty;
- moto's error bodies carry that namespace too (AWS's carry none), so libcloud found no
  error in them and raised an empty message;
- libcloud signs us-east-1 with SigV2, which moto_server routes to S3.

A target profile names it as ``failover.testing.ec2_shim:MotoEC2NodeDriver`` with
options ``{key, secret, host: 127.0.0.1, port: PORT, secure: false}``.
"""

from __future__ import annotations

import re

from libcloud.compute.drivers.ec2 import API_VERSION, NAMESPACE, EC2Connection, EC2NodeDriver, EC2Response

# moto's namespace, with or without the slash, and whichever API version it claims.
_MOTO_NAMESPACE = re.compile(rb'xmlns="http://ec2\.amazonaws\.com/doc/[0-9-]+/?"')
_LIBCLOUD_NAMESPACE = f'xmlns="{NAMESPACE}"'.encode()


class MotoEC2Response(EC2Response):
    """An EC2 response in the XML namespaces libcloud's parser expects."""

    def parse_body(self):
        self.body = _MOTO_NAMESPACE.sub(_LIBCLOUD_NAMESPACE, _bytes(self.body)).decode()
        return super().parse_body()

    def parse_error(self):
        self.body = _MOTO_NAMESPACE.sub(b"", _bytes(self.body)).decode()
        return super().parse_error()


def _bytes(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else body


class MotoEC2Connection(EC2Connection):
    responseCls = MotoEC2Response
    version = API_VERSION


class MotoEC2NodeDriver(EC2NodeDriver):
    """``EC2NodeDriver`` against moto: SigV4 always, and moto's namespace understood."""

    connectionCls = MotoEC2Connection

    def __init__(self, key, secret=None, secure=False, host="127.0.0.1", port=None, region="us-east-1", **kwargs):
        kwargs["signature_version"] = "4"
        super().__init__(key, secret, secure=secure, host=host, port=port, region=region, **kwargs)
