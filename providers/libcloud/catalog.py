"""libcloud's sizes and images as the neutral ``SizeInfo`` and ``ImageInfo`` of
``failover/ports.py``, the vendors' differences smoothed out.

What the vendors' recorded catalogues (and driver code) show:
- RAM is in MB everywhere (``NodeSize.ram``), taken as MiB.
- Disk is in GB, except Linode (API v4 states MB); 0 means no disk stated (EC2's EBS-only).
- Price is hourly, except Vultr (API v2 gives only ``monthly_cost``); 0 means unknown
  (Azure ARM gives 0 for every size).
- vCPUs are in ``extra`` under a vendor's own key (OpenStack has a ``vcpus`` attribute).
- Sizes and images offered only in some locations list them (DigitalOcean ``regions``,
  Vultr ``locations``), carried as ``extra["locations"]``.
- An image's OS family may be outside its name (DigitalOcean "14.04 x64" with
  distribution "Ubuntu"): it goes into ``description`` for the mapping to read.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from failover.ports import ImageInfo, SizeInfo

if TYPE_CHECKING:
    from libcloud.compute.base import NodeImage, NodeSize

# DigitalOcean and Vultr bill by the hour up to 672 hours (28 days) a month, so a
# monthly price is 672 hours' worth (DigitalOcean's own figures: $5.00/mo = $0.00744/h).
HOURS_BILLED_PER_MONTH = 672

DISK_IN_MB = frozenset({"linode"})
PRICE_MONTHLY = frozenset({"vultr"})

# Where each vendor puts a size's vCPU count. Vultr's bare-metal plans count cores and
# threads: threads are what an AWS vCPU is.
VCPU_KEYS = (
    "vcpus",  # DigitalOcean, Linode, OVH
    "vcpu_count",  # Vultr
    "cpu_threads",  # Vultr bare metal
    "vcpu",  # EC2, Outscale
    "guestCpus",  # GCE
    "numberOfCores",  # Azure ARM
    "cores",  # Scaleway
    "core_number",  # UpCloud
    "cpu",  # Eucalyptus
)

DISTRIBUTION_KEYS = ("distribution", "vendor", "family")  # DigitalOcean, Linode, Vultr

LOCATION_KEYS = ("locations", "regions")


def to_size_info(size: NodeSize, provider: str | None = None) -> SizeInfo:
    """``provider`` is the libcloud provider name; by default the size's driver's."""
    provider = provider or _provider_of(size)
    locations = _first(size.extra or {}, LOCATION_KEYS)
    extra: dict[str, Any] = {"locations": list(locations)} if locations is not None else {}
    architecture = _size_architecture(size)
    if architecture:
        extra["architecture"] = architecture
    if str((size.extra or {}).get("currentGeneration", "")).lower() == "no":  # EC2's price list says so
        extra["previous_generation"] = True
    return SizeInfo(
        id=str(size.id),
        name=str(size.name or size.id),
        vcpus=_vcpus(size),
        ram_mib=_positive_int(size.ram),
        disk_gib=_disk_gib(size.disk, provider),
        price_hourly=_price_hourly(size.price, provider),
        extra=extra,
    )


# Sizes whose name says they run on arm64 where the vendor states no architecture: EC2
# families with a "g" among the attributes after the generation run on Graviton (t4g, m6gd,
# c7gn, x2gd, im4gn, is4gen, g5g), a1 too; GCE's Ampere and Axion machine types (t2a, c4a);
# Azure's sizes with a "p" among their attributes (Standard_D2ps_v5, Standard_E4pds_v5).
# Every other size is taken as x86_64 by the mapping.
_ARM_SIZE_NAMES = re.compile(
    r"^(?:a1|[a-z]+\d+[a-z]*g[a-z]*)\."
    r"|^(?:t2a|c4a)-"
    r"|^Standard_[A-Z]+\d+[a-oq-z]*p[a-z]*_v\d+$"
)


def _size_architecture(size: NodeSize) -> str | None:
    stated = _first(size.extra or {}, ("arch", "architecture", "cpu_architecture"))
    if stated:
        return str(stated)
    return "arm64" if _ARM_SIZE_NAMES.match(str(size.id)) else None


def to_image_info(image: NodeImage) -> ImageInfo:
    extra = image.extra or {}
    name = str(image.name or image.id)
    architecture = extra.get("arch") or extra.get("architecture")
    locations = _first(extra, LOCATION_KEYS)
    slug = extra.get("slug")
    normalized: dict[str, Any] = {}
    if architecture:
        normalized["architecture"] = str(architecture)
    if locations is not None:
        normalized["locations"] = list(locations)
    if slug:
        normalized["aliases"] = [str(slug)]
    return ImageInfo(id=str(image.id), name=name, description=_description(name, extra), extra=normalized)


def _provider_of(size: NodeSize) -> str | None:
    return getattr(getattr(size, "driver", None), "type", None)


def _vcpus(size: NodeSize) -> int | None:
    stated = getattr(size, "vcpus", None)
    if stated is None:
        stated = _first(size.extra or {}, VCPU_KEYS)
    return _positive_int(stated)


def _disk_gib(disk: Any, provider: str | None) -> int | None:
    gib = _positive_int(disk)
    if gib is not None and provider in DISK_IN_MB:
        gib //= 1024
    return gib


def _price_hourly(price: Any, provider: str | None) -> float | None:
    try:
        value = float(price)
    except (TypeError, ValueError):
        return None
    if value <= 0:
        return None
    return value / HOURS_BILLED_PER_MONTH if provider in PRICE_MONTHLY else value


def _description(name: str, extra: dict[str, Any]) -> str | None:
    """The vendor's description, else its distribution prefixed to the name when the name
    lacks it."""
    if extra.get("description"):
        return str(extra["description"])
    distribution = _first(extra, DISTRIBUTION_KEYS)
    if distribution and str(distribution).lower() not in name.lower():
        return f"{distribution} {name}"
    return None


def _first(extra: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((extra[key] for key in keys if extra.get(key) is not None), None)


def _positive_int(value: Any) -> int | None:
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
