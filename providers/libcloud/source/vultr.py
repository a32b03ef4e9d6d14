"""Vultr (API v2): a node carries one ``tag`` string (``key:value``, or a bare key), its image is
an OS id whose name is in the small OS catalogue (``list_images``; there is no ``get_image``),
and libcloud reads neither user data nor firewall groups."""

from __future__ import annotations

from typing import Any

from providers.libcloud.source.readers import ImageFacts, NodeReader
from providers.libcloud.values import labels_of


class VultrNodes(NodeReader):
    user_data_unknown = "libcloud's Vultr driver does not read an instance's user data"
    firewalls_unknown = "libcloud's Vultr driver does not read firewall groups"

    def tags(self, node: Any) -> dict[str, str]:
        extra = node.extra or {}
        tags = extra.get("tags")
        if not tags:
            tags = [extra["tag"]] if extra.get("tag") else []
        return labels_of({"tags": list(tags)})

    def image(self, node: Any) -> ImageFacts:
        image_id = str(node.image) if node.image not in (None, "") else None
        catalogue = {str(image.id): image for image in self._os_images()}
        native = catalogue.get(image_id or "")
        name = native.name if native is not None else (node.extra or {}).get("os")
        return ImageFacts(image_id, str(name) if name else None, None, None)

    def _os_images(self) -> list[Any]:
        if "__catalogue__" not in self._images:
            self._images["__catalogue__"] = list(self.driver.list_images())
        return self._images["__catalogue__"]
