"""Any Apache Libcloud driver as the SOURCE: ``source.provider: libcloud`` (the ``libcloud`` entry
of ``failover.adapters.SOURCE_PROVIDERS``).

| capability | config | reads | module |
| --- | --- | --- | --- |
| inventory | ``source.compute/storage/dns`` | nodes, containers as buckets, zones | ``inventory.py`` |
| nodes, per driver | (the compute driver's type) | tags, size, image, user data, firewalls | ``readers.py`` + one module per driver |
| objects for ``replicate`` | ``source.storage`` | a container's objects, streamed | ``storage.py`` |
| zones for ``replicate`` | ``source.dns`` | a zone's record sets now | ``zones.py`` |
"""

from __future__ import annotations

from typing import Any

from failover.errors import InputError, Problem
from providers.libcloud.source.inventory import LibcloudInventory
from providers.libcloud.source.storage import LibcloudObjects
from providers.libcloud.source.zones import LibcloudZones


class LibcloudSource:
    """The ``libcloud`` source provider (a ``SourceProvider``)."""

    def inventory(self, config: Any) -> LibcloudInventory:
        return LibcloudInventory.from_config(config)

    def storage(self, config: Any, bucket_regions: dict[str, str], workers: int) -> LibcloudObjects:
        return LibcloudObjects.from_config(config)

    def zones(self, config: Any) -> LibcloudZones:
        return LibcloudZones.from_config(config)

    def discover(self, *, regions: list[str] | None, endpoint_url: str | None, profile: str | None) -> Any:
        raise InputError([Problem(file="arguments", field="source", message=(
            "failover init discovers AWS accounts only; write a libcloud source by hand (see the README)"))])
