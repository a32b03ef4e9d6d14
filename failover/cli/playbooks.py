"""``failover validate``, ``failover playbooks`` and ``failover actions``: playbooks and what
they can use, checked and listed without any cloud call."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from failover.actions.base import ACTIONS
from failover.cli.common import ConfigOption, JsonOption, console, print_json
from failover.config import Config, config_path, load_config
from failover.errors import InputError, Problem
from failover.playbook import Playbook, builtin_playbooks, load_playbook, parse_var_args, playbook_schema
from failover.targets import profile_problems

app = typer.Typer()

VarOption = Annotated[
    list[str] | None, typer.Option("--var", help="Set or override a playbook var: KEY=VALUE (repeatable).", show_default=False)
]
TargetOption = Annotated[
    str | None, typer.Option("--target", "-t", help="Also check this target profile of the config and its secrets.")
]


@app.command()
def validate(
    playbook: Annotated[str, typer.Argument(help="A playbook file, or the name of a built-in playbook.")],
    var: VarOption = None,
    target: TargetOption = None,
    config_file: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Check a playbook (and the config, if there is one) completely; no cloud calls."""
    try:
        book, config = _validate(playbook, var or [], target, config_file)
    except InputError as exc:
        if json_out:  # the verdict is the data: a script reads the problems from stdout too
            print_json({"valid": False, "problems": [_problem_dict(p) for p in exc.problems]})
        raise
    if json_out:
        print_json(
            {
                "valid": True,
                "playbook": book.name,
                "source": book.source,
                "config": str(config.path) if config else None,
                "target": target,
                "vars": book.vars,
                "steps": [{"id": s.id, "action": s.action, "needs": s.needs} for s in book.steps],
            }
        )
        return
    checked = f" with {escape(str(config.path))}" + (f", target {escape(target)}" if target else "") if config else ""
    console.print(f"[green]✓[/] {escape(book.source)}: playbook {escape(book.name)} is valid{checked} ({len(book.steps)} steps).")


def _validate(ref: str, var_args: list[str], target: str | None, config_file: Path | None) -> tuple[Playbook, Config | None]:
    """Validate the arguments, the config and the playbook, and report the problems of all three at once."""
    problems: list[Problem] = []
    overrides: dict[str, str] = {}
    try:
        overrides = parse_var_args(var_args)
    except InputError as exc:
        problems += exc.problems
    config = None
    try:
        config = _optional_config(config_file, needed=target is not None)
    except InputError as exc:
        problems += exc.problems
    if config is not None and target is None:
        problems += profile_problems(config)  # every profile's drivers (with --target: that profile's, below)
    try:
        book = load_playbook(ref, vars_override=overrides, config=config, target=target if config else None)
    except InputError as exc:
        raise InputError(problems + exc.problems) from None
    if problems:
        raise InputError(problems)
    return book, config


def _optional_config(explicit: Path | None, *, needed: bool) -> Config | None:
    """The config, when the user named one, a target needs one, or one is at the default place."""
    path = config_path(explicit)
    named = explicit is not None or bool(os.environ.get("FAILOVER_CONFIG"))
    if not named and not path.exists():
        if needed:
            raise InputError([Problem(file=str(path), message="config file not found (--target needs the config)")])
        return None
    return load_config(path)


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {**asdict(problem), "text": str(problem)}


@app.command()
def playbooks(config_file: ConfigOption = None, json_out: JsonOption = False) -> None:
    """List the built-in playbooks (use their name wherever a PLAYBOOK is asked for)."""
    found = builtin_playbooks()
    if json_out:
        print_json({"playbooks": [{"name": name, "description": description} for name, description in found]})
        return
    table = Table(title="Built-in playbooks", title_justify="left")
    table.add_column("name")
    table.add_column("description")
    for name, description in found:
        table.add_row(escape(name), escape(description))
    console.print(table)


@app.command()
def actions(config_file: ConfigOption = None, json_out: JsonOption = False) -> None:
    """List the actions a playbook step can use, with their parameters and an example."""
    if json_out:
        print_json({"actions": [_action_dict(name, action) for name, action in ACTIONS], "playbook_schema": playbook_schema()})
        return
    table = Table(title="Actions", title_justify="left", show_lines=True)
    table.add_column("action")
    table.add_column("what it does")
    table.add_column("parameters (with:)")
    for name, action in ACTIONS:
        table.add_row(escape(name), escape(action.summary) + ("" if action.mutates else "\n[dim]read-only[/]"), _parameters_text(action))
    console.print(table)


def _action_dict(name: str, action: Any) -> dict[str, Any]:
    return {
        "name": name,
        "summary": action.summary,
        "mutates": action.mutates,
        "parameters": action.Params.model_json_schema(),
        "example": action.example,
    }


def _parameters_text(action: Any) -> str:
    schema = action.Params.model_json_schema()
    lines = []
    for name, spec in schema.get("properties", {}).items():
        required = name in schema.get("required", [])
        kind = spec.get("type") or "/".join(str(option.get("type", "?")) for option in spec.get("anyOf", [])) or "any"
        default = "" if required else f" = {spec['default']!r}" if "default" in spec else " (optional)"
        lines.append(f"[bold]{escape(name)}[/]: {escape(kind)}{escape(default)}" + (" [red]required[/]" if required else ""))
    return "\n".join(lines) or "[dim]none[/]"
