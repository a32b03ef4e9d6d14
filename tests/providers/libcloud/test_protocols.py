"""The libcloud adapters implement every member of the protocols in failover/ports.py, and
the core finds them through ``failover.adapters`` without importing libcloud itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from failover import ports as base
from providers.libcloud.compute import LibcloudCompute
from providers.libcloud.dns import LibcloudDns
from providers.libcloud.storage import LibcloudStorage


def members(protocol: type) -> set[str]:
    names = {name for name in vars(protocol) if not name.startswith("_")}
    return names | set(getattr(protocol, "__annotations__", {}))


@pytest.mark.parametrize(
    ("protocol", "adapter"),
    [(base.ComputeTarget, LibcloudCompute), (base.StorageTarget, LibcloudStorage), (base.DnsTarget, LibcloudDns)],
)
def test_adapter_has_every_protocol_member(protocol: type, adapter: type) -> None:
    missing = sorted(name for name in members(protocol) if not hasattr(adapter, name))
    assert not missing, f"{adapter.__name__} lacks {missing}"


def test_targets_resolve_lazily_to_the_libcloud_factories() -> None:
    code = (
        "import sys; import failover.adapters as b; "
        "assert 'libcloud' not in sys.modules; "
        "from failover.config import DnsSpec; "
        "t = b.dns_target(DnsSpec(driver='powerdns', options={'key': 'k'})); "
        "print(type(t).__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "LibcloudDns"
