"""Keys and names read from a source, as messages show them.

A key is data: it may hold terminal controls (ESC), line breaks, or run to a kilobyte.
Messages show at most ``LIMIT`` characters of it, every character that does not print
escaped the way Python writes it (``\\x1b``, ``\\n``, ``\\u202e``), and the length of
what was cut. JSON documents carry the key whole (JSON escapes it).
"""

from __future__ import annotations

from collections.abc import Iterable

LIMIT = 80


def shown(text: str, limit: int = LIMIT) -> str:
    """``text`` safe for a message line: ``'logs/\\x1b[2J…' (1,024 characters)`` for a long key."""
    escaped = "".join(char if char.isprintable() else _escaped(char) for char in text[:limit])
    if len(text) > limit:
        return f"'{escaped}…' ({len(text):,} characters)"
    return f"'{escaped}'"


def shown_all(texts: Iterable[str], limit: int = 5) -> str:
    """A few of ``texts`` for a message: ``'a', 'b' and 3 more``."""
    texts = list(texts)
    listed = ", ".join(shown(text) for text in texts[:limit])
    return listed + (f" and {len(texts) - limit} more" if len(texts) > limit else "")


def _escaped(char: str) -> str:
    return repr(char)[1:-1]  # a character that does not print is never a quote
