"""Shell completion of what only failover knows: target profiles, run ids, built-in playbooks.

Typer completes commands and options itself (``--install-completion``, ``--show-completion``);
:func:`attach` adds the values of the parameters named ``target``, ``playbook`` and ``run``
wherever a command declares them, so the command modules stay unaware of completion.
A completion never prints an error and never creates anything (no state directory): what
cannot be read completes to nothing.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failover.config import config_path, load_config
from failover.errors import FailoverError

Completer = Callable[[Any, Any, str], list[str]]


def _config(ctx: Any):
    explicit = ctx.params.get("config_file") if ctx is not None else None
    return load_config(Path(explicit) if explicit else config_path(None))


def complete_targets(ctx: Any, param: Any, incomplete: str) -> list[str]:
    try:
        names = sorted(_config(ctx).targets)
    except (FailoverError, OSError):
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_playbooks(ctx: Any, param: Any, incomplete: str) -> list[str]:
    from failover.playbook import builtin_playbooks

    try:
        names = [name for name, _ in builtin_playbooks()]
    except (FailoverError, OSError):
        names = []
    files = sorted(name + "/" if Path(name).is_dir() else name for name in glob.glob(f"{glob.escape(incomplete)}*")
                   if Path(name).is_dir() or name.endswith((".yaml", ".yml")))
    return [name for name in names if name.startswith(incomplete)] + files


def complete_runs(ctx: Any, param: Any, incomplete: str) -> list[str]:
    from failover.state import DB_NAME, open_store

    try:
        config = _config(ctx)
        if config.state_dsn is None and not (config.state_dir / DB_NAME).is_file():
            return []  # never create a state directory to complete a word
        with open_store(config) as store:
            rows = store.query("SELECT id FROM runs WHERE service = ? ORDER BY started_at DESC, id DESC",
                               (config.service,))
    except (FailoverError, OSError):
        return []
    return [value for value in ["latest", *(row["id"] for row in rows)] if value.startswith(incomplete)]


COMPLETERS: dict[str, Completer] = {"target": complete_targets, "playbook": complete_playbooks, "run": complete_runs}


def attach(command: Any) -> Any:
    """Give every parameter named in COMPLETERS, in ``command`` and its subcommands, its completion."""
    for param in getattr(command, "params", []):
        completer = COMPLETERS.get(param.name or "")
        if completer is not None and param._custom_shell_complete is None:
            param._custom_shell_complete = completer
    for sub in getattr(command, "commands", {}).values():
        attach(sub)
    return command
