"""The file-backed DNS driver (test and demo support) refuses what a zone file cannot hold on
one line, as a provider refuses an invalid name, through failover's DNS adapter too."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.config import DnsSpec
from failover.errors import OperationFailed
from failover.testing.memdns import FileDNSDriver, read_records
from providers.libcloud import forget_adapters
from providers.libcloud.dns import connect_dns


@pytest.fixture
def dns(tmp_path: Path):
    forget_adapters()
    yield connect_dns(DnsSpec(driver="failover.testing.memdns:FileDNSDriver", options={"path": str(tmp_path / "dns.json")}))
    forget_adapters()


@pytest.mark.parametrize("name", ["a\nb.example.org.", "esc\x1b[2J.example.org.", "sp ace.example.org."])
def test_a_name_with_a_control_character_or_space_is_refused_and_the_zone_export_stays_whole(
    dns, tmp_path: Path, name: str
) -> None:
    zone = dns.create_zone("example.org.")
    dns.set_record(zone, "www.example.org.", "A", 300, ["192.0.2.1"])

    with pytest.raises(OperationFailed, match="invalid record name"):
        dns.set_record(zone, name, "A", 300, ["192.0.2.2"])

    records = read_records(tmp_path / "dns.json")["example.org"]
    assert sorted(item["name"] for item in records) == ["", "", "", "www"]  # SOA, two NS, www
    driver = FileDNSDriver(tmp_path / "dns.json")
    exported = driver.export_zone_to_bind_format(driver.get_zone("example.org"))
    lines = [line for line in exported.splitlines() if line.strip() and not line.startswith(";")]
    assert [line.split()[0] for line in lines] == ["$ORIGIN", "$TTL", *["example.org."] * 3, "www.example.org."]


def test_data_with_a_control_character_is_refused(dns) -> None:
    zone = dns.create_zone("example.org.")

    with pytest.raises(OperationFailed, match="invalid record data"):
        dns.set_record(zone, "t.example.org.", "TXT", 300, ['"a\nb"'])
