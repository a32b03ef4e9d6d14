"""Meta-tests over the check registry, as tests/actions/test_registry_meta.py is over the
actions: every built-in check is complete, read-only as far as its own module shows (no
call that creates, changes or deletes on a target or in the state store, no import of the
source's SDK or adapter), and documented in README's table of checks, in report order."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from failover.checks.base import CHECKS, Check, ordered_checks

README = Path(__file__).resolve().parents[2] / "README.md"
# The built-in checks; test doubles that other tests register are not held to this.
NAMES = [name for name, check in CHECKS if check.__module__.startswith("failover.checks.")]
MODULES = sorted({CHECKS.get(name).__module__ for name in NAMES})

# Verbs of the methods that change a target (the compute, storage and DNS ports: create_node,
# attach_firewall, ensure_container, upload_stream, set_record, delete_zone...) or the state
# store (save_snapshot, forget_replica_objects, mark_dumps_pruned, transaction...).
MUTATING = re.compile(r"(create|destroy|delete|attach|detach|ensure|upload|put|set|save|forget|mark|update)_\w+|transaction")
SOURCE_MODULES = ("boto3", "botocore", "providers.aws")  # the source's SDK and adapter: checks never touch the source


def mutating_calls(source: str) -> list[str]:
    """``obj.method(...)`` calls in ``source`` whose method names a change."""
    return sorted(
        f"{node.lineno}: .{node.func.attr}()"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and MUTATING.fullmatch(node.func.attr)
    )


def source_imports(source: str) -> list[str]:
    """The modules of ``SOURCE_MODULES`` (or below them) that ``source`` imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        found += [name for name in names if any(name == m or name.startswith(f"{m}.") for m in SOURCE_MODULES)]
    return found


def readme_checks() -> list[str]:
    """The names in the first column of README's table under ``failover check``."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### `failover check PLAYBOOK"):]
    table = section[section.index("| check |"):]
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return [re.match(r"\| `([^`]+)` \|", row).group(1) for row in rows]


def test_the_builtin_checks_are_registered() -> None:
    assert {"snapshot-age", "playbook-valid", "target-credentials", "last-drill"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_check_is_complete(name: str) -> None:
    check = CHECKS.get(name)
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name), "names are kebab-case"
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", check.__name__), "classes are CamelCase"
    assert issubclass(check, Check) and check.name == name
    assert check.run is not Check.run, f"{name} does not implement run"
    assert list(inspect.signature(check.run).parameters) == ["self", "ctx"]
    assert isinstance(check.needs_snapshot, bool)
    summary = check.summary.strip()
    assert summary and "\n" not in summary and summary.endswith("."), f"{name}: a one-line summary, a sentence"
    assert 10 <= check.order <= 100, "built-ins report in 10..100; plugins come after (order 1000)"


def test_builtin_checks_have_distinct_report_orders() -> None:
    orders = [CHECKS.get(name).order for name in NAMES]
    assert len(set(orders)) == len(orders)


@pytest.mark.parametrize("module", MODULES)
def test_check_module_changes_nothing_and_never_touches_the_source(module: str) -> None:
    source = inspect.getsource(importlib.import_module(module))
    assert mutating_calls(source) == [], f"{module} calls what changes a target or the state store"
    assert source_imports(source) == [], f"{module} imports the source's SDK or adapter"


def test_the_read_only_scan_finds_changes_and_source_imports() -> None:
    """The scan above can fail: it sees a change and a source import where there is one."""
    offending = (
        "import boto3\nfrom providers.aws.session import AwsSession\n"
        "def run(self, ctx):\n"
        "    ctx.targets.storage.delete_object('media', 'a')\n"
        "    ctx.store.save_drill(None)\n"
        "    return ctx.targets.storage.iter_objects('media')\n"
    )
    assert mutating_calls(offending) == ["4: .delete_object()", "5: .save_drill()"]
    assert source_imports(offending) == ["boto3", "providers.aws.session"]


def test_readme_lists_every_builtin_check_in_report_order() -> None:
    builtin = [check.name for check in ordered_checks() if check.name in NAMES]
    assert readme_checks() == builtin

