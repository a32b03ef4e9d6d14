"""libcloud's ``local`` storage driver listed in key order, a folder at a time.

The driver's own listing walks the whole container and sorts every object before handing out
the first; this one walks folders in the order their keys sort, so that keys come in byte
order (S3's, and the state store's) and the listing can be merged page by page
(``failover.replicate.buckets.diff_pages``) while holding one folder's names per level, never
the bucket. Within a folder, a file sorts by its name and a folder by its name followed by
``/``: key ``a-c`` comes before ``a/b`` because ``-`` (0x2D) sorts before ``/`` (0x2F), and
``a/b`` before ``a0``. What it lists is the driver's: files (symlinks to files too), not the
folders it hides (``.lock``, ``.hash``), nor what is under a symlinked folder (``os.walk``
does not follow them either).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from libcloud.storage.drivers.local import IGNORE_FOLDERS
from libcloud.storage.types import ObjectDoesNotExistError


def local_objects(driver: Any, container: Any, prefix: str = "") -> Iterator[Any]:
    """The libcloud objects of ``container`` (a local-disk one) in key order, a folder at a time."""
    root = driver.get_container_cdn_url(container, check=True)
    for key in local_keys(root):
        if key.startswith(prefix):
            try:
                yield driver._make_object(container, key)
            except ObjectDoesNotExistError:
                continue  # removed since its folder was read


def local_keys(root: str) -> Iterator[str]:
    """The keys of the files under ``root`` (``/``-separated), in key order."""
    stack = [("", iter(_entries(root)))]
    while stack:
        prefix, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
        elif entry.endswith("/"):
            folder = prefix + entry
            stack.append((folder, iter(_entries(os.path.join(root, *folder[:-1].split("/"))))))
        else:
            yield prefix + entry


def _entries(folder: str) -> list[str]:
    """A folder's files by name and its folders by name + ``/``, sorted."""
    names = []
    with os.scandir(folder) as found:
        for entry in found:
            if not entry.is_dir():
                names.append(entry.name)
            elif entry.name not in IGNORE_FOLDERS and not entry.is_symlink():
                names.append(entry.name + "/")
    names.sort()
    return names
