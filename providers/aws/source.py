"""AWS as a source provider: inventory through boto3, S3 objects and Route53 zones for ``replicate``,
SSM parameters and Secrets Manager secrets for the escrow."""

from __future__ import annotations

from typing import Any

from failover.initconfig import Discovery
from providers.aws.discovery import discover
from providers.aws.inventory import AwsInventory
from providers.aws.objects import S3Objects
from providers.aws.route53 import Route53Zones
from providers.aws.secrets import AwsSecrets


class AwsSource:
    """The ``aws`` entry of ``failover.adapters.SOURCE_PROVIDERS`` (a ``SourceProvider``)."""

    def inventory(self, config: Any) -> AwsInventory:
        return AwsInventory.from_config(config)

    def storage(self, config: Any, bucket_regions: dict[str, str], workers: int) -> S3Objects:
        return S3Objects.from_config(config, bucket_regions=bucket_regions, workers=workers)

    def zones(self, config: Any) -> Route53Zones:
        return Route53Zones.from_config(config)

    def secrets(self, config: Any) -> AwsSecrets:
        return AwsSecrets.from_config(config)

    def discover(self, *, regions: list[str] | None, endpoint_url: str | None, profile: str | None) -> Discovery:
        return discover(regions=regions, endpoint_url=endpoint_url, profile=profile)
