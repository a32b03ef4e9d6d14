"""A smaller AMI catalogue for ``moto`` in tests (``MOTO_AMIS_PATH``).

By default moto builds every region's EC2 backend with about 1,180 AMIs (its 44 base images, the
region's latest Amazon Linux ones and some 1,100 ECS-optimized ones), and answers an unfiltered
``DescribeImages`` (libcloud's ``list_images``, the target's image catalogue) by serializing all of
them: seconds of moto's CPU per call. This catalogue keeps the base images, us-east-1's latest
Amazon Linux images and the ECS-optimized Amazon Linux 2022 ones (tests pick ``al2022-ami-*``):
every AMI id and name the suite uses, in every region. Set it before moto is imported (in-process)
or before a ``moto_server`` starts (it inherits the environment).
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

VARIABLE = "MOTO_AMIS_PATH"
LATEST_REGION = "us-east-1"
ECS_NAME_PREFIXES = ("al2022-ami-",)


def _resource(*parts: str) -> list[dict]:
    import importlib.util

    spec = importlib.util.find_spec("moto")  # its resources only: importing moto would read the default catalogue
    if spec is None or not spec.submodule_search_locations:
        return []
    path = Path(next(iter(spec.submodule_search_locations)), "ec2", "resources", *parts)
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return json.load(file)


def small_catalogue() -> list[dict]:
    images = {image["ami_id"]: image for image in _resource("amis.json.gz")}
    for image in _resource("latest_amis", f"{LATEST_REGION}.json.gz"):
        images.setdefault(image["ami_id"], image)
    for image in _resource("ecs", "optimized_amis", f"{LATEST_REGION}.json.gz"):
        if image.get("name", "").startswith(ECS_NAME_PREFIXES):
            images.setdefault(image["ami_id"], image)
    return list(images.values())


def use_small_catalogue() -> Path | None:
    """Point ``MOTO_AMIS_PATH`` at the small catalogue (written once per moto version), unless it is set."""
    if os.environ.get(VARIABLE):
        return Path(os.environ[VARIABLE])
    path = Path(tempfile.gettempdir()) / f"failover-moto-amis-{version('moto')}.json"
    if not path.exists():
        catalogue = small_catalogue()
        if not catalogue:
            return None
        # Written under another name, then renamed: parallel test workers may write it at the same time.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(catalogue, file)
        os.replace(temporary, path)
    os.environ[VARIABLE] = str(path)
    return path
