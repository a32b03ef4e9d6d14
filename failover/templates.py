"""Templates in playbooks: ``${vars.NAME}``, ``${steps.ID.outputs.KEY...}``, ``${env:NAME}``.

A string that is exactly one reference takes the referenced value's type (so
``ttl: "${vars.dns_ttl}"`` gives an int); anything else is string interpolation, where
non-string values are written as JSON (``true``, ``3``, ``{"a": 1}``). ``$${`` writes a
literal ``${``.

``${env:NAME}`` is a secret: it is resolved only when an action is called, and the
resolved value is never stored (the engine journals parameters unresolved).

``when`` is a template that must resolve to a truth value (a bool, a number, or one of
true/false/yes/no/on/off/1/0), or a single comparison ``A == B`` / ``A != B`` of two
templates or literals, compared as text.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from failover.errors import OperationFailed

Loc = tuple[str | int, ...]

# "$${" is an escaped literal; "${...}" a reference; a lone "${" is unclosed.
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")
_VARS = re.compile(r"vars\.([A-Za-z_][A-Za-z0-9_-]*)((?:\.[^.\s]+)*)")
_STEPS = re.compile(r"steps\.([A-Za-z0-9][A-Za-z0-9_-]*)\.outputs((?:\.[^.\s]+)*)")
# A comparison operator outside any reference.
_COMPARISON = re.compile(r"\$\{[^}]*\}|(==|!=)")
_SECRET = re.compile(r"\$(\$?)\{env:([A-Za-z_][A-Za-z0-9_]*)\}")

SYNTAX_HINT = "write ${vars.NAME}, ${steps.ID.outputs.KEY} or ${env:NAME}"
TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0", ""})


class TemplateError(OperationFailed):
    """A template that cannot be parsed or resolved. At validate time it becomes a Problem
    with file and line; at run time it fails the step."""


@dataclass(frozen=True)
class Ref:
    """One ``${...}`` reference: ``kind`` is vars, steps or env; ``path`` walks into the value."""

    kind: str
    name: str
    path: tuple[str, ...] = ()
    text: str = ""


def parse(text: str) -> list[str | Ref]:
    """Literal chunks and references of ``text``, in order; raises TemplateError."""
    parts: list[str | Ref] = []
    literal = ""
    pos = 0
    for match in _TOKEN.finditer(text):
        literal += text[pos : match.start()]
        pos = match.end()
        token = match.group(0)
        if token == "$${":
            literal += "${"
        elif match.group(1) is None:
            raise TemplateError(f"unclosed '${{' in {_short(text)!r}")
        else:
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(parse_ref(token))
    literal += text[pos:]
    if literal:
        parts.append(literal)
    return parts


def parse_ref(token: str) -> Ref:
    """``${vars.x}`` -> Ref("vars", "x"); anything not in the three forms is an error."""
    inner = token[2:-1].strip()
    if match := _ENV.fullmatch(inner):
        return Ref("env", match.group(1), (), token)
    if match := _VARS.fullmatch(inner):
        return Ref("vars", match.group(1), _path(match.group(2)), token)
    if match := _STEPS.fullmatch(inner):
        return Ref("steps", match.group(1), _path(match.group(2)), token)
    raise TemplateError(f"unknown template {token!r}: {SYNTAX_HINT}")


def _path(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split(".")[1:]) if dotted else ()


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def walk_strings(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every string in a nested value, with its location (dict keys stay literal)."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk_strings(item, loc + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, loc + (index,))


def find_refs(value: Any) -> list[tuple[Loc, Ref]]:
    """Every well-formed reference in a nested value (malformed ones are skipped: see :func:`parse`)."""
    found = []
    for loc, text in walk_strings(value):
        if "${" in text:
            with contextlib.suppress(TemplateError):
                found += [(loc, part) for part in parse(text) if isinstance(part, Ref)]
    return found


# --- resolution --------------------------------------------------------------------------


def resolve(
    value: Any,
    *,
    vars: Mapping[str, Any],
    outputs: Mapping[str, Any],
    env: Mapping[str, str] = os.environ,
) -> Any:
    """Replace every reference in a nested value. ``outputs`` maps step id -> that step's outputs.

    Call it right before the action is called and keep the result only for that call:
    it holds the secrets.
    """
    if isinstance(value, str):
        return _resolve_string(value, vars, outputs, env) if "${" in value else value
    if isinstance(value, Mapping):
        return {key: resolve(item, vars=vars, outputs=outputs, env=env) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, vars=vars, outputs=outputs, env=env) for item in value]
    return value


def resolve_env(value: Any, env: Mapping[str, str] = os.environ) -> Any:
    """Only the ``${env:NAME}`` secrets of a nested value, for the call about to be made.

    For an action handed parameters whose secrets are still references; everything else
    in the value is left as it is.
    """
    if isinstance(value, str):
        return _SECRET.sub(lambda match: _secret(match, env), value) if "{env:" in value else value
    if isinstance(value, Mapping):
        return {key: resolve_env(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_env(item, env) for item in value]
    return value


def _secret(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group(1):  # "$${env:X}" is the literal text "${env:X}"
        return match.group(0)[1:]
    name = match.group(2)
    if name not in env:
        raise TemplateError(f"${{env:{name}}}: environment variable {name} is not set")
    return env[name]


def _resolve_string(text: str, vars: Mapping[str, Any], outputs: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    parts = parse(text)
    if len(parts) == 1 and isinstance(parts[0], Ref):
        return lookup(parts[0], vars, outputs, env)
    return "".join(render(lookup(p, vars, outputs, env)) if isinstance(p, Ref) else p for p in parts)


def lookup(ref: Ref, vars: Mapping[str, Any], outputs: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """The value one reference names; raises TemplateError saying what is missing."""
    if ref.kind == "env":
        if ref.name not in env:
            raise TemplateError(f"{ref.text}: environment variable {ref.name} is not set")
        return env[ref.name]
    if ref.kind == "vars":
        if ref.name not in vars:
            raise TemplateError(f"{ref.text}: no var {ref.name!r}")
        return _walk(vars[ref.name], ref.path, ref)
    if ref.name not in outputs:
        raise TemplateError(f"{ref.text}: step {ref.name!r} has no outputs (has it run?)")
    return _walk(outputs[ref.name], ref.path, ref)


def _walk(value: Any, path: tuple[str, ...], ref: Ref) -> Any:
    for depth, key in enumerate(path):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            where = ".".join(path[:depth]) or "the value"
            known = f" (it has: {', '.join(map(str, list(value)[:10]))})" if isinstance(value, Mapping) else ""
            raise TemplateError(f"{ref.text}: {where} has no {key!r}{known}")
    return value


def render(value: Any) -> str:
    """How a value is written inside a longer string: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- when ----------------------------------------------------------------------------------


def split_comparison(expression: str) -> tuple[str, str | None, str]:
    """``"A == B"`` -> ("A", "==", "B"); no operator -> (expression, None, "")."""
    operators = [m for m in _COMPARISON.finditer(expression) if m.group(1)]
    if not operators:
        return expression, None, ""
    if len(operators) > 1:
        raise TemplateError(f"when: only one comparison (== or !=) is allowed in {_short(expression)!r}")
    op = operators[0]
    left, right = expression[: op.start()].strip(), expression[op.end() :].strip()
    if not left or not right:
        raise TemplateError(f"when: {op.group(1)} needs a value on each side in {_short(expression)!r}")
    return left, op.group(1), right


def evaluate_when(
    expression: str,
    *,
    vars: Mapping[str, Any],
    outputs: Mapping[str, Any],
    env: Mapping[str, str] = os.environ,
) -> bool:
    """Whether a step with this ``when`` runs."""
    left, op, right = split_comparison(expression)

    def value(side: str) -> Any:
        return resolve(_unquote(side), vars=vars, outputs=outputs, env=env)

    if op is None:
        return truth(value(left), expression)
    equal = render(value(left)) == render(value(right))
    return equal if op == "==" else not equal


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def truth(value: Any, expression: str = "") -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    if "${env:" in expression:  # the value is a secret: do not repeat it
        raise TemplateError(f"when: {_short(expression)!r} is neither true nor false")
    shown = f" (from {_short(expression)!r})" if expression and expression != value else ""
    raise TemplateError(f"when: {_short(render(value))!r} is neither true nor false{shown}")
