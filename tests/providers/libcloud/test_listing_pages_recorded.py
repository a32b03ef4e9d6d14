"""Listings read to their last page, on libcloud's recorded vendor responses where no emulator
pages: GCE's firewalls (``firewalls.list`` pages at 500; libcloud's ``ex_list_firewalls`` reads
one page), its recording served as two pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from failover.config import Selector, SourceComputeSpec
from failover.testing.libcloud_fixtures import ensure_libcloud_test_secrets, recorded_responses
from providers.libcloud.source.inventory import LibcloudInventory

ensure_libcloud_test_secrets()

from libcloud.common.google import GoogleBaseAuthConnection  # noqa: E402
from libcloud.compute.drivers.gce import GCENodeDriver  # noqa: E402
from libcloud.test.common.test_google import GoogleAuthMockHttp, GoogleTestCase  # noqa: E402

from .test_source_recorded import OK, LabelledGceMockHttp, _NoAssertions  # noqa: E402

OPTIONS = {"user_id": "email@developer.gserviceaccount.com", "key": "key", "project": "project_name",
           "auth_type": "IA", "datacenter": "us-central1-a"}


class PagedFirewallsMockHttp(LabelledGceMockHttp):
    """The recorded firewalls as two pages: the first holds only ``default-allow-internal``."""

    asked: list[str | None] = []

    def _global_firewalls(self, method, url, body, headers):
        items = json.loads(self.fixtures.load("global_firewalls.json"))["items"]
        token = (parse_qs(urlparse(url).query).get("pageToken") or [None])[0]
        type(self).asked.append(token)
        page = {"items": items[:1], "nextPageToken": "page-2"} if token is None else {"items": items[1:]}
        return OK[0], json.dumps(page), self.json_hdr, OK[2]


@pytest.fixture
def paged_gce(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[PagedFirewallsMockHttp]]:
    monkeypatch.setattr(GoogleBaseAuthConnection, "conn_class", GoogleAuthMockHttp)
    monkeypatch.setattr(PagedFirewallsMockHttp, "test", _NoAssertions(), raising=False)
    monkeypatch.setattr(PagedFirewallsMockHttp, "asked", [])
    patchers = [getattr(GoogleTestCase, name) for name in dir(GoogleTestCase) if name.endswith("_patcher")]
    for patcher in patchers:
        patcher.start()
    try:
        with recorded_responses(GCENodeDriver, PagedFirewallsMockHttp):
            yield PagedFirewallsMockHttp
    finally:
        for patcher in patchers:
            patcher.stop()


def test_gce_firewalls_are_read_from_every_page(paged_gce: type[PagedFirewallsMockHttp]) -> None:
    compute = SourceComputeSpec(driver="gce", options=OPTIONS)
    stock = GCENodeDriver(**OPTIONS).ex_list_firewalls()  # libcloud's own: the first page
    paged_gce.asked.clear()

    manifest = LibcloudInventory("social-app", Selector(tags={"service": "social-app"}), compute=compute).inventory()

    assert [firewall.name for firewall in stock] == ["default-allow-internal"]
    assert paged_gce.asked == [None, "page-2"]
    # the default network's firewalls without target tags apply to the node: the second is on page 2
    assert {firewall.name for firewall in manifest.of_kind("firewall")} == {"default-allow-internal", "default-ssh"}
