"""Text from the source on a terminal: shown, never obeyed."""

from __future__ import annotations

import re

# Characters that steer a terminal rather than print: C0 and C1 controls (ESC, CSI, CR,
# backspace, ...; newline and tab stay) and the bidirectional overrides that reorder a line.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with every terminal control shown as its escape (ESC as the four characters ``\\x1b``)."""
    return _CONTROLS.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)
