"""Database server addresses (DSNs) and the client tools that dump and restore through them.

A DSN holds a password: it is parsed here and only ever shown through ``Dsn.describe``
(host, port, database). The client tools get the password through their environment or
a 0600 option file, never their command line; their messages are ``redacted``.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from failover.errors import InputError, OperationFailed, Problem


@dataclass(frozen=True)
class Dsn:
    """A database server's address and credentials. ``describe`` is all that is ever shown."""

    family: str  # "postgres" or "mysql"
    host: str | None
    port: int | None
    database: str | None
    user: str | None
    password: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        where = f"{self.host or 'localhost'}:{self.port}" if self.port else self.host or "localhost"
        return f"{where}/{self.database}" if self.database else where

    def __repr__(self) -> str:
        return f"Dsn({self.family}, {self.describe()})"


_SCHEMES = {"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_KEYWORD = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")


def parse_dsn(text: str) -> Dsn:
    """A ``scheme://user:password@host:port/database?options`` URL, or a PostgreSQL
    ``key=value`` connection string. Errors never repeat the text: it holds the password."""
    scheme = text.split("://", 1)[0].lower() if "://" in text else None
    if scheme is None:
        return _keyword_dsn(text)
    if scheme not in _SCHEMES:
        raise dsn_error("not a postgresql://, mysql:// or mariadb:// URL")
    parts = urlsplit(text)
    options = dict(parse_qsl(parts.query))
    try:
        port = parts.port or _int(options.pop("port", None))
    except ValueError:
        raise dsn_error("the port is not a number") from None
    return Dsn(
        family=_SCHEMES[scheme],
        host=unquote(parts.hostname) if parts.hostname else options.pop("host", None),
        port=port,
        database=unquote(parts.path.lstrip("/")) or options.pop("dbname", None),
        user=unquote(parts.username) if parts.username else options.pop("user", None),
        password=unquote(parts.password) if parts.password else options.pop("password", None),
        options=tuple(sorted(options.items())),
    )


def _keyword_dsn(text: str) -> Dsn:
    values = {key: _unquoted(value) for key, value in _KEYWORD.findall(text)}
    if not values:
        raise dsn_error("not a database URL or key=value connection string")
    return Dsn(
        family="postgres", host=values.pop("host", None), port=_int(values.pop("port", None)),
        database=values.pop("dbname", None), user=values.pop("user", None), password=values.pop("password", None),
        options=tuple(sorted(values.items())),
    )


def dsn_error(message: str) -> InputError:
    return InputError([Problem(file="playbook", field="with.dsn", message=message)])


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _int(value: str | None) -> int | None:
    return int(value) if value else None



def find_tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise OperationFailed(f"{name} is not installed on this machine: install {package}")
    return found


def tool_environment(settings: dict[str, str | None]) -> dict[str, str]:
    return {**os.environ, **{key: value for key, value in settings.items() if value is not None}}


def conninfo_value(value: Any) -> str:
    text = str(value)
    if text and not re.search(r"[\s'\\]", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def option_value(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def redacted(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text
