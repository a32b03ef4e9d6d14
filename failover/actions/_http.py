"""What the HTTP actions (notify, wait-healthy) share."""

from __future__ import annotations

import re

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def check_header_names(headers: dict[str, str]) -> dict[str, str]:
    """A pydantic validator body: every header name must be an HTTP token."""
    bad = [name for name in headers if not HEADER_NAME.match(name)]
    if bad:
        raise ValueError(f"not a valid HTTP header name: {', '.join(map(repr, bad))}")
    return headers
