"""``playbook-valid``: the playbook loads and validates, with the ``--var`` overrides.

The target's secrets are not part of this check (``target-credentials`` names them);
a PLAYBOOK that does not exist at all is an argument error (exit 2), found by
:func:`require_playbook` before any check runs.
"""

from __future__ import annotations

from pathlib import Path

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed, plural
from failover.errors import InputError, NotFound, Problem
from failover.playbook import BUILTIN_NAME, builtin_playbooks, load_playbook

MAX_PROBLEMS = 5


def require_playbook(ref: str) -> None:
    """NotFound (exit 2) when ``ref`` is neither an existing path nor a built-in playbook."""
    if Path(ref).exists():
        return
    names = [name for name, _ in builtin_playbooks()]
    if BUILTIN_NAME.match(ref) and ref in names:
        return
    raise NotFound([Problem(file=ref, message="no such playbook file, nor a built-in playbook "
                                              f"(built-in: {', '.join(names) or 'none'})")])


@CHECKS.register("playbook-valid")
class PlaybookValid(Check):
    summary = "The playbook loads and validates (with the --var overrides)."
    order = 20

    def run(self, ctx: CheckContext) -> Outcome:
        try:
            book = load_playbook(ctx.playbook, vars_override=ctx.vars)
        except InputError as exc:
            problems = [str(p) for p in exc.problems]
            shown = "; ".join(problems[:MAX_PROBLEMS])
            more = f" and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
            return failed(f"{plural(len(problems), 'problem')}: {shown}{more}", problems=problems)
        actions = sorted({step.action for step in book.steps})
        return passed(f"{book.name} ({book.source}): {plural(len(book.steps), 'step')}",
                      name=book.name, source=book.source, steps=[step.id for step in book.steps], actions=actions)
