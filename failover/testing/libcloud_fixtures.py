"""Running real libcloud vendor drivers against the recorded responses the
apache-libcloud wheel ships in ``libcloud/test/`` (test support only).

libcloud's vendor test modules import ``libcloud.test.secrets``, which the wheel ships
only as ``secrets.py-dist``; :func:`ensure_libcloud_test_secrets` builds it once.
:func:`recorded_responses` points a driver's connection at a ``MockHttp`` class and
puts the connection back as it was afterwards, so no other test sees the mock.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_MISSING = object()


def libcloud_test_dir() -> Path:
    """``libcloud/test`` inside the installed wheel, found without importing it
    (importing ``libcloud.test`` needs requests-mock)."""
    spec = importlib.util.find_spec("libcloud")
    if spec is None or spec.origin is None:
        raise RuntimeError("apache-libcloud is not installed")
    return Path(spec.origin).parent / "test"


def ensure_libcloud_test_secrets(test_dir: Path | None = None) -> Path:
    """Create ``libcloud/test/secrets.py`` from ``secrets.py-dist`` if it is absent.

    Idempotent and safe when several processes do it at once: the copy is written
    beside the target and renamed into place, so no importer sees half a file.
    """
    test_dir = test_dir or libcloud_test_dir()
    secrets = test_dir / "secrets.py"
    if secrets.exists():
        return secrets
    fd, tmp = tempfile.mkstemp(dir=test_dir, prefix=".secrets-", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(test_dir / "secrets.py-dist", tmp)
        os.replace(tmp, secrets)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    importlib.invalidate_caches()
    return secrets


@contextmanager
def recorded_responses(driver_cls: type, mock_http_cls: type) -> Iterator[type]:
    """Within the block, ``driver_cls`` talks to ``mock_http_cls`` instead of the network.

    The attribute is restored exactly: set back where the connection class defined it
    itself, removed where it only inherited it (other drivers share the parent's).
    """
    connection_cls = driver_cls.connectionCls
    own_value: Any = connection_cls.__dict__.get("conn_class", _MISSING)
    previous_type = getattr(mock_http_cls, "type", None)
    connection_cls.conn_class = mock_http_cls
    mock_http_cls.type = None
    try:
        yield mock_http_cls
    finally:
        mock_http_cls.type = previous_type
        if own_value is _MISSING:
            del connection_cls.conn_class
        else:
            connection_cls.conn_class = own_value


# provider name -> (the compute driver class that answers, the MockHttp class of its recordings,
# positional and keyword constructor arguments): the vendors whose recorded size catalogues the
# mapping is tested with.
RECORDED_COMPUTE: dict[str, tuple[str, str, tuple[str, ...], dict[str, Any]]] = {
    "digitalocean": ("libcloud.compute.drivers.digitalocean:DigitalOcean_v2_NodeDriver",
                     "libcloud.test.compute.test_digitalocean_v2:DigitalOceanComputeMockHttp", ("token",), {}),
    "linode": ("libcloud.compute.drivers.linode:LinodeNodeDriverV4",
               "libcloud.test.compute.test_linode_v4:LinodeMockHttpV4", ("key",), {}),
    "vultr": ("libcloud.compute.drivers.vultr:VultrNodeDriverV2",
              "libcloud.test.compute.test_vultr_v2:VultrMockHttpV2", ("key",), {}),
    "ec2": ("libcloud.compute.drivers.ec2:EC2NodeDriver",
            "libcloud.test.compute.test_ec2:EC2MockHttp", ("key", "secret"), {"region": "us-east-1"}),
}


def recorded_sizes(provider: str) -> list[Any]:
    """The ``NodeSize`` list of a vendor's real driver, read from libcloud's recordings
    (EC2's comes from the price list libcloud ships)."""
    from libcloud.compute.providers import get_driver

    from failover.adapters import load_object

    driver_path, mock_path, args, kwargs = RECORDED_COMPUTE[provider]
    ensure_libcloud_test_secrets()
    with recorded_responses(load_object(driver_path), load_object(mock_path)):
        return list(get_driver(provider)(*args, **kwargs).list_sizes())  # as failover names it: by provider name
