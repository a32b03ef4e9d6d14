"""libcloud's locations and nodes -> the neutral value objects of failover.ports.
(Sizes and images: ``catalog.py``.)

Vendors keep a node's tags in different places and shapes (EC2 a dict under ``tags``,
GCE ``labels``, OpenStack ``metadata``, DigitalOcean and Linode lists of strings under
``tags``); this module reads each once.
"""

from __future__ import annotations

from typing import Any

from failover.ports import LocationInfo, NodeInfo

# Where drivers keep a node's tags or labels in ``Node.extra``, most specific first.
_LABEL_KEYS = ("labels", "tags", "metadata")


def location_info(location: Any) -> LocationInfo:
    return LocationInfo(id=str(location.id), name=str(location.name or location.id), country=location.country or None)


def node_info(node: Any) -> NodeInfo:
    extra = node.extra or {}
    return NodeInfo(
        id=str(node.id),
        name=str(node.name or ""),
        state=str(getattr(node.state, "value", node.state) or "unknown").lower(),
        public_ips=tuple(str(ip) for ip in node.public_ips or ()),
        private_ips=tuple(str(ip) for ip in node.private_ips or ()),
        size_id=_nested_id(node.size) or _text(extra.get("instance_type") or extra.get("size_slug") or extra.get("size")),
        image_id=_nested_id(node.image) or _text(extra.get("image_id") or extra.get("image")),
        labels=labels_of(extra),
        extra={key: value for key, value in extra.items() if _plain(value)},
    )


def labels_of(extra: dict[str, Any]) -> dict[str, str]:
    """A node's tags or labels; list-style tags (``key:value`` strings) are split."""
    for key in _LABEL_KEYS:
        value = extra.get(key)
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return dict(_split_tag(item) for item in value)
    return {}


def tag_strings(labels: dict[str, str]) -> list[str]:
    """Labels as the ``key:value`` strings of providers whose tags are plain strings."""
    return [f"{key}:{value}" for key, value in labels.items()]


def _split_tag(tag: str) -> tuple[str, str]:
    key, _, value = tag.partition(":")
    return key, value


def _nested_id(item: Any) -> str | None:
    if item is None:
        return None
    if isinstance(item, dict):
        return _text(item.get("id") or item.get("slug"))
    return _text(getattr(item, "id", None))


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        return _nested_id(value)
    return None if value in (None, "") else str(value)


def _plain(value: Any) -> bool:
    """JSON-like values only: ``extra`` must not hold driver objects (they hold the credentials)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
