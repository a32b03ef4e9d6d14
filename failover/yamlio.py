"""Safe loading of user YAML (config, playbooks) with line numbers for error messages.

Hostile input is refused fast: a size limit, no aliases (no alias bombs), no duplicate
keys, no custom tags (safe loader), bounded nesting. Every value's line is recorded so a
validation error can name ``file:line``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from failover.errors import InputError, Problem
from failover.files import read_input

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64

Loc = tuple[str | int, ...]


@dataclass
class Document:
    """A loaded YAML document: its data and the line of every key and item."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest existing prefix of ``loc``."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get(())

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        return Problem(file=self.file, line=self.line_of(loc), field=dotted(loc) or None, message=message)


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _Refused(mark.line + 1, "YAML aliases are not allowed")
        return super().compose_node(parent, index)

    def compose_mapping_node(self, anchor):  # type: ignore[override]
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_mapping_node(anchor)
        finally:
            self._depth -= 1

    def compose_sequence_node(self, anchor):  # type: ignore[override]
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_sequence_node(anchor)
        finally:
            self._depth -= 1


class _Refused(Exception):
    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        self.message = message


def load_text(text: str, file: str, *, max_bytes: int = MAX_BYTES) -> Document:
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InputError([Problem(file=file, message=f"larger than {max_bytes // 1024} KiB; refused")])
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(file=file, data=None)
        lines: dict[Loc, int] = {}
        duplicates: list[Problem] = []
        _walk(node, (), lines, duplicates, file)
        if duplicates:
            raise InputError(duplicates)
        data = loader.construct_document(node)
    except _Refused as exc:
        raise InputError([Problem(file=file, line=exc.line, message=exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise InputError([Problem(file=file, line=line, message=f"invalid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file=file, message=f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise InputError([Problem(file=file, message="nested too deeply")]) from None
    finally:
        loader.dispose()
    return Document(file=file, data=data, lines=lines)


def load_file(path: Path, *, max_bytes: int = MAX_BYTES, what: str = "file") -> Document:
    """A YAML file of the user's: a regular file of at most ``max_bytes`` (files.read_input)."""
    text = read_input(path, max_bytes=max_bytes, what=what)
    return load_text(text, str(path), max_bytes=max_bytes)


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], dups: list[Problem], file: str) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key == "<<":
                raise _Refused(key_node.start_mark.line + 1, "YAML merge keys are not allowed")
            if key in seen:
                dups.append(
                    Problem(file=file, line=key_node.start_mark.line + 1, field=dotted(loc + (key,)), message="duplicate key")
                )
            seen.add(key)
            lines[loc + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, loc + (key,), lines, dups, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, loc + (index,), lines, dups, file)
