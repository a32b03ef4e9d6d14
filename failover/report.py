"""A drill's report: one self-contained HTML page (a timeline of the steps as an inline SVG
chart, the recovery time against the objective, the teardown, the target's differences)
and the same facts as Markdown tables, written to ``<state>/reports/<drill id>.html|md``.

Reports hold what the journal holds of a run (step ids, actions, statuses, timings,
errors as the engine wrote them) and resource names; never parameters or outputs, so no
resolved secret can reach them.
"""

from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path

from failover.clock import duration
from failover.drill import DrillResult, StepTiming, describe_difference
from failover.files import private_directory, write_atomic
from failover.state import REPORTS_DIR

STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "interrupted": "#ef6c00",
    "skipped": "#9e9e9e",
    "running": "#1565c0",
    "pending": "#cfd8dc",
}
TEARDOWN_COLOUR = "#6a1b9a"
RTO_COLOUR = "#0d47a1"
OBJECTIVE_COLOUR = "#b71c1c"
# The chart's geometry, in SVG units.
WIDTH, LABELS, MARGIN, TOP, ROW, BAR = 960, 220, 30, 34, 26, 16


def write_reports(state_dir: Path, result: DrillResult) -> tuple[Path, Path]:
    """Writes both reports (owner-only, like the rest of the state) and sets their paths on ``result``."""
    directory = private_directory(Path(state_dir) / REPORTS_DIR, what="reports directory")
    html_path = directory / f"{result.record.id}.html"
    markdown_path = directory / f"{result.record.id}.md"
    result.report_html, result.report_markdown = html_path, markdown_path
    write_atomic(html_path, render_html(result), what="drill report")
    write_atomic(markdown_path, render_markdown(result), what="drill report")
    return html_path, markdown_path


# -- facts both reports show ---------------------------------------------------------------




def _rto_text(result: DrillResult) -> str:
    objective = duration(result.rto_objective_s)
    if result.record.rto_s is None:
        return f"not measured (the run did not succeed); objective {objective}"
    verdict = "within" if result.rto_met else "over"
    return f"{duration(result.record.rto_s)}, {verdict} the objective of {objective}"


def _clean_text(result: DrillResult) -> str:
    clean = result.record.clean
    if clean is None:
        return "unknown (the target could not be listed after the teardown)"
    return "yes: the target is as it was before the drill" if clean else f"no: {len(result.differences)} differences"


def _summary(result: DrillResult) -> list[tuple[str, str]]:
    record = result.record
    rows = [
        ("drill", record.id), ("status", record.status), ("service", record.service),
        ("playbook", record.playbook), ("target", record.target), ("prefix", record.prefix),
        ("run", record.run_id or "—"), ("started", record.started_at), ("ended", record.ended_at or "—"),
        ("recovery time (RTO)", _rto_text(result)), ("teardown", duration(record.teardown_s)),
        ("target left as found", _clean_text(result)),
    ]
    if record.error:
        rows.append(("error", record.error))
    return rows


def _teardown_span(result: DrillResult) -> tuple[float, float] | None:
    """The teardown's offset from the run's start and its length, when known."""
    offset = result.teardown_offset_s
    return None if offset is None or result.record.teardown_s is None else (offset, result.record.teardown_s)


# -- HTML ------------------------------------------------------------------------------------


def render_html(result: DrillResult) -> str:
    record = result.record
    summary = "\n".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in _summary(result))
    steps = "\n".join(
        f"<tr><td>{escape(s.id)}</td><td>{escape(s.action)}</td>"
        f"<td><span class=\"status\" style=\"background:{STATUS_COLOURS.get(s.status, '#cfd8dc')}\">"
        f"{escape(s.status)}</span></td><td>{_seconds_text(s.offset_s)}</td><td>{_seconds_text(s.duration_s)}</td></tr>"
        for s in result.steps
    )
    if result.differences:
        rows = "\n".join(
            f"<tr><td>{escape(d['kind'])}</td><td>{escape(d['name'])}</td><td>{escape(d['change'])}</td>"
            f"<td>{escape(d.get('detail') or '')}</td></tr>" for d in result.differences
        )
        differences = f"<table><tr><th>kind</th><th>name</th><th>change</th><th>detail</th></tr>\n{rows}</table>"
    elif record.clean:
        differences = "<p>None: nodes, firewalls, containers (objects, sizes, hashes) and DNS zones (every record set) are as before the drill.</p>"
    else:
        differences = "<p>Unknown: the target could not be listed after the teardown.</p>"
    title = f"Drill {record.id} of {record.playbook} on {record.target}: {record.status}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #212121; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }}
th {{ background: #f5f5f5; }}
.status {{ color: #fff; padding: 1px 6px; border-radius: 3px; }}
svg text {{ font-family: system-ui, sans-serif; font-size: 12px; fill: #212121; }}
</style>
</head>
<body>
<h1>{escape(title)}</h1>
<table>
{summary}
</table>
<h2>Timeline</h2>
{render_timeline(result)}
<p class="legend">{_legend()}</p>
<h2>Steps</h2>
<table>
<tr><th>step</th><th>action</th><th>status</th><th>start (s)</th><th>duration (s)</th></tr>
{steps}
</table>
<h2>The target before and after</h2>
{differences}
</body>
</html>
"""


def _legend() -> str:
    swatch = '<span class="status" style="background:{}">{}</span>'
    items = [swatch.format(colour, escape(status)) for status, colour in STATUS_COLOURS.items() if status != "pending"]
    items.append(swatch.format(TEARDOWN_COLOUR, "teardown"))
    items.append(f'<span style="color:{RTO_COLOUR}">- - recovery time (run start to the first healthy check)</span>')
    items.append(f'<span style="color:{OBJECTIVE_COLOUR}">| objective (readiness.rto)</span>')
    return " ".join(items)


def render_timeline(result: DrillResult) -> str:
    """An SVG Gantt chart: a bar per step that ran (start offset, duration, status colour), the
    teardown's bar, the recovery time and (when it fits) the objective as vertical lines."""
    started = [s for s in result.steps if s.offset_s is not None]
    teardown = _teardown_span(result)
    rto, objective = result.record.rto_s, result.rto_objective_s
    ends = [(s.offset_s or 0) + (s.duration_s or 0) for s in started]
    if teardown is not None:
        ends.append(teardown[0] + teardown[1])
    if rto is not None:
        ends.append(rto)
    span = max(ends, default=0.0) or 1.0
    objective_shown = objective <= span * 3
    if objective_shown:
        span = max(span, objective)
    rows = len(result.steps) + 1
    height = TOP + rows * ROW + 24
    plot = WIDTH - LABELS - MARGIN

    def x(seconds: float) -> float:
        return LABELS + plot * max(0.0, seconds) / span

    opening = (f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH}" height="{height}" '
               f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="timeline of the drill">')
    parts = [opening]
    for tick in _ticks(span):
        parts.append(f'<line x1="{x(tick):.1f}" y1="{TOP - 6}" x2="{x(tick):.1f}" y2="{TOP + rows * ROW}" '
                     f'stroke="#eceff1"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{TOP - 10}" text-anchor="middle">{_tick_label(tick)}</text>')
    for index, step in enumerate(result.steps):
        y = TOP + index * ROW
        parts.append(f'<text x="{LABELS - 8}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end">{escape(step.id)}</text>')
        if step.offset_s is None:
            parts.append(f'<text x="{LABELS + 4}" y="{y + ROW / 2 + 4:.1f}" fill="#757575">not run ({escape(step.status)})</text>')
            continue
        width = max(2.0, x(step.offset_s + (step.duration_s or 0)) - x(step.offset_s))
        colour = STATUS_COLOURS.get(step.status, "#cfd8dc")
        tip = f"{step.id} ({step.action}): {step.status}, from {_seconds_text(step.offset_s)}s for {duration(step.duration_s)}"
        parts.append(
            f'<rect class="bar step" data-step="{escape(step.id)}" data-status="{escape(step.status)}" '
            f'x="{x(step.offset_s):.1f}" y="{y + (ROW - BAR) / 2:.1f}" width="{width:.1f}" height="{BAR}" '
            f'rx="2" fill="{colour}"><title>{escape(tip)}</title></rect>'
        )
    y = TOP + len(result.steps) * ROW
    parts.append(f'<text x="{LABELS - 8}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end" font-weight="bold">teardown</text>')
    if teardown is not None:
        start, length = teardown
        width = max(2.0, x(start + length) - x(start))
        tip = f"teardown (rollback of {result.record.run_id}): {duration(length)}"
        parts.append(f'<rect class="bar teardown" x="{x(start):.1f}" y="{y + (ROW - BAR) / 2:.1f}" width="{width:.1f}" '
                     f'height="{BAR}" rx="2" fill="{TEARDOWN_COLOUR}"><title>{escape(tip)}</title></rect>')
    bottom = TOP + rows * ROW
    if rto is not None:
        parts.append(f'<line class="rto" x1="{x(rto):.1f}" y1="{TOP - 4}" x2="{x(rto):.1f}" y2="{bottom}" '
                     f'stroke="{RTO_COLOUR}" stroke-width="2" stroke-dasharray="6 3"/>')
        parts.append(f'<text x="{x(rto):.1f}" y="{bottom + 16}" text-anchor="middle" fill="{RTO_COLOUR}">'
                     f'RTO {escape(duration(rto))}</text>')
    if objective_shown:
        parts.append(f'<line class="objective" x1="{x(objective):.1f}" y1="{TOP - 4}" x2="{x(objective):.1f}" '
                     f'y2="{bottom}" stroke="{OBJECTIVE_COLOUR}" stroke-width="2"/>')
        parts.append(f'<text x="{x(objective) - 4:.1f}" y="{bottom + 16}" text-anchor="end" fill="{OBJECTIVE_COLOUR}">'
                     f'objective {escape(duration(objective))}</text>')
    parts.append("</svg>")
    if not objective_shown:
        parts.append(f"<p>The objective ({escape(duration(objective))}) lies far to the right of this chart.</p>")
    return "\n".join(parts)


def _ticks(span: float, wanted: int = 8) -> list[float]:
    raw = span / wanted
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    count = int(span / step + 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]


def _tick_label(seconds: float) -> str:
    return f"{seconds:g}s" if seconds < 120 else duration(seconds)


def _seconds_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


# -- Markdown --------------------------------------------------------------------------------


def render_markdown(result: DrillResult) -> str:
    record = result.record
    lines = [f"# Drill {record.id} of {_cell(record.playbook)} on {_cell(record.target)}: {record.status}", ""]
    lines += ["| | |", "| --- | --- |"]
    lines += [f"| {_cell(k)} | {_cell(str(v))} |" for k, v in _summary(result)]
    lines += ["", "## Steps", "", "| step | action | status | start (s) | duration (s) |", "| --- | --- | --- | ---: | ---: |"]
    lines += [_step_row(step) for step in result.steps]
    teardown = _teardown_span(result)
    lines += ["", "## Teardown", ""]
    if teardown is None:
        lines.append("Not timed: the teardown did not run.")
    else:
        lines.append(f"Rollback of run {record.run_id}: started {teardown[0]:.3f}s after the run's start, "
                     f"took {teardown[1]:.3f}s.")
    lines += ["", "## The target before and after", ""]
    if result.differences:
        lines += ["| kind | name | change | detail |", "| --- | --- | --- | --- |"]
        lines += [f"| {_cell(d['kind'])} | {_cell(d['name'])} | {_cell(d['change'])} | {_cell(d.get('detail') or '')} |"
                  for d in result.differences]
    elif record.clean:
        lines.append("No differences: nodes, firewalls, containers (objects, sizes, hashes) and DNS zones "
                     "(every record set) are as before the drill.")
    else:
        lines.append("Unknown: the target could not be listed after the teardown.")
    return "\n".join(lines) + "\n"


def _step_row(step: StepTiming) -> str:
    return (f"| {_cell(step.id)} | {_cell(step.action)} | {_cell(step.status)} | {_seconds_text(step.offset_s)} | "
            f"{_seconds_text(step.duration_s)} |")


def _cell(text: str) -> str:
    """Text as a Markdown table cell that renders as written: controls and line breaks as
    spaces, Markdown's punctuation backslash-escaped (no link, image, emphasis or code span
    from a name), and HTML's ``& < >`` as entities (no tag from a name, ``<script>`` included)."""
    text = _MARKDOWN_CONTROLS.sub(" ", text)
    text = _MARKDOWN_PUNCTUATION.sub(lambda match: "\\" + match.group(), text)
    return escape(text, quote=False)


_MARKDOWN_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MARKDOWN_PUNCTUATION = re.compile(r"[\\`*_\[\]!|~]")  # what is active inside a table cell


def differences_text(result: DrillResult) -> list[str]:
    """The differences as lines, for the terminal."""
    return [describe_difference(d) for d in result.differences]
