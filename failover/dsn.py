"""Database server addresses (DSNs) and the client tools that dump and restore through them.

A DSN holds a password: it is parsed here and only ever shown through ``Dsn.describe``
(host, port, database). The client tools get the password through their environment or
a 0600 option file, never their command line; their messages are ``redacted``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from failover.databases.base import engine_for_scheme
from failover.errors import InputError, OperationFailed, Problem

# Options of a DSN that are secrets: like the password, they never reach a command line or a message.
SECRET_OPTIONS = frozenset({"password", "sslpassword"})


@dataclass(frozen=True)
class Dsn:
    """A database server's address and credentials. ``describe`` is all that is ever shown."""

    family: str  # the engine's ("postgres" or "mysql")
    host: str | None
    port: int | None
    database: str | None
    user: str | None
    password: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    secret_options: tuple[tuple[str, str], ...] = ()  # e.g. sslpassword: for the tool, never its command line

    def describe(self) -> str:
        where = f"{self.host or 'localhost'}:{self.port}" if self.port else self.host or "localhost"
        return f"{where}/{self.database}" if self.database else where

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret the DSN holds, to be removed from what a tool prints."""
        return tuple(filter(None, (self.password, *(value for _, value in self.secret_options))))

    def __repr__(self) -> str:
        return f"Dsn({self.family}, {self.describe()})"


_KEYWORD = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")


def parse_dsn(text: str) -> Dsn:
    """A ``scheme://user:password@host:port/database?options`` URL, or a PostgreSQL
    ``key=value`` connection string. Errors never repeat the text: it holds the password.

    The userinfo ends at the URL's last ``@``, so a password may hold ``/ ? # @`` unencoded
    (the standard reading would make its end the database name, on the tool's command line);
    a ``@`` in a database name or option is written ``%40``. A password given both in the
    userinfo and as ``?password=`` is refused unless the two are equal."""
    scheme, separator, rest = text.partition("://")
    if not separator:
        return _keyword_dsn(text)
    engine = engine_for_scheme(scheme)
    if engine is None:
        raise dsn_error("not a postgresql://, mysql:// or mariadb:// URL")
    userinfo, at, location = rest.rpartition("@")
    user = password = None
    if at:
        name, colon, secret = userinfo.partition(":")
        user, password = unquote(name) or None, unquote(secret) if colon else None
    parts = urlsplit(f"{scheme}://{location}")
    options = dict(parse_qsl(parts.query))
    try:
        port = parts.port or _int(options.pop("port", None))
    except ValueError:
        raise dsn_error("the port is not a number") from None
    host, database, named = options.pop("host", None), options.pop("dbname", None), options.pop("user", None)
    return Dsn(
        family=engine.name,
        host=unquote(parts.hostname) if parts.hostname else host,
        port=port,
        database=unquote(parts.path.lstrip("/")) or database,
        user=user or named,
        password=_one_password(password, options),
        options=tuple(sorted((key, value) for key, value in options.items() if key not in SECRET_OPTIONS)),
        secret_options=tuple(sorted((key, value) for key, value in options.items() if key in SECRET_OPTIONS)),
    )


def _one_password(userinfo: str | None, options: dict[str, str]) -> str | None:
    """The password of the userinfo or of ``?password=`` (taken out of ``options``)."""
    given = options.pop("password", None)
    if userinfo is not None and given is not None and given != userinfo:
        raise dsn_error("gives two passwords, in the userinfo and as ?password=: give one")
    return userinfo if userinfo is not None else given


def _keyword_dsn(text: str) -> Dsn:
    values = {key: _unquoted(value) for key, value in _KEYWORD.findall(text)}
    if not values:
        raise dsn_error("not a database URL or key=value connection string")
    try:
        port = _int(values.pop("port", None))
    except ValueError:
        raise dsn_error("the port is not a number") from None
    return Dsn(
        family="postgres", host=values.pop("host", None), port=port,
        database=values.pop("dbname", None), user=values.pop("user", None), password=values.pop("password", None),
        options=tuple(sorted((key, value) for key, value in values.items() if key not in SECRET_OPTIONS)),
        secret_options=tuple(sorted((key, value) for key, value in values.items() if key in SECRET_OPTIONS)),
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


def redacted(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (and its URL-encoded form) replaced by ``***``, longest first."""
    forms = {form for secret in secrets if secret for form in (secret, quote(secret, safe=""))}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text
