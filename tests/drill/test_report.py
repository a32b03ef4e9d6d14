"""A drill's reports: the HTML page with its SVG timeline (a bar per step that ran, the
teardown, the recovery time against the objective) and the Markdown tables, as files
only their owner reads."""

from __future__ import annotations

import re
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from failover.drill import DrillResult, StepTiming
from failover.errors import InputError
from failover.report import duration, render_html, render_markdown, render_timeline, write_reports
from failover.state import DrillRecord

SVG = "{http://www.w3.org/2000/svg}"
RUN_START = "2026-01-01T10:00:00.000Z"


def step(step_id: str, action: str, status: str, offset: float | None, length: float | None) -> StepTiming:
    def at(seconds: float) -> str:
        whole, fraction = divmod(seconds, 1)
        return f"2026-01-01T10:00:{int(whole):02d}.{round(fraction * 1000):03d}Z"

    started = None if offset is None else at(offset)
    ended = None if offset is None or length is None else at(offset + length)
    return StepTiming(step_id, action, status, started, ended, offset, length)


def result(**record_fields) -> DrillResult:
    record = DrillRecord(
        id="drill-20260101T100000Z-abcdef", service="social-app", target="fallback", playbook="standard",
        prefix="drill", run_id="run-20260101T100000Z-123456", status="succeeded", started_at=RUN_START,
        ended_at="2026-01-01T10:00:20.000Z", rto_s=6.5, teardown_s=3.0, clean=True,
    )
    record = DrillRecord(**{**record.to_dict(), **record_fields})
    return DrillResult(
        record=record, rto_objective_s=10.0,
        steps=[step("data", "sync-buckets", "succeeded", 0.0, 0.5),
               step("nodes", "provision-nodes", "succeeded", 0.1, 5.0),
               step("healthy", "wait-healthy", "succeeded", 5.2, 1.3),
               step("cutover", "cutover-dns", "failed", 6.6, 0.4),
               step("announce", "notify", "pending", None, None)],
        run_started_at=RUN_START, teardown_started_at="2026-01-01T10:00:07.500Z",
        teardown_ended_at="2026-01-01T10:00:10.500Z",
    )


def svg_of(html: str) -> ET.Element:
    found = re.search(r"<svg.*?</svg>", html, re.DOTALL)
    assert found, "no inline SVG"
    return ET.fromstring(found.group(0))  # well-formed XML, or this raises


def test_the_timeline_has_one_bar_per_step_that_ran_placed_by_its_offset_and_length() -> None:
    drill = result()
    chart = svg_of(render_html(drill))

    bars = [rect for rect in chart.iter(f"{SVG}rect") if "step" in rect.get("class", "").split()]
    assert [bar.get("data-step") for bar in bars] == ["data", "nodes", "healthy", "cutover"]
    assert [bar.get("data-status") for bar in bars] == ["succeeded", "succeeded", "succeeded", "failed"]
    assert bars[3].get("fill") != bars[0].get("fill")  # a failed step is coloured apart
    x = {bar.get("data-step"): float(bar.get("x")) for bar in bars}
    width = {bar.get("data-step"): float(bar.get("width")) for bar in bars}
    assert x["data"] < x["nodes"] < x["healthy"] < x["cutover"]
    assert width["nodes"] == max(width.values())  # the longest step draws the longest bar
    assert abs(width["nodes"] / width["healthy"] - 5.0 / 1.3) < 0.05
    [teardown] = [rect for rect in chart.iter(f"{SVG}rect") if "teardown" in rect.get("class", "").split()]
    assert float(teardown.get("x")) > x["cutover"]
    assert abs(float(teardown.get("width")) / width["nodes"] - 3.0 / 5.0) < 0.05
    lines = {line.get("class"): float(line.get("x1")) for line in chart.iter(f"{SVG}line") if line.get("class")}
    assert lines["rto"] < lines["objective"]  # 6.5 s, within the objective of 10 s
    texts = " ".join(text.text or "" for text in chart.iter(f"{SVG}text"))
    assert "RTO 6.5s" in texts and "objective 10.0s" in texts
    assert "announce" in texts and "not run (pending)" in texts


def test_the_page_is_self_contained_and_names_every_step_and_the_outcome() -> None:
    html = render_html(result(status="failed", error="step cutover failed: <refused> & more", rto_s=None))

    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<(script|link)\b|\bsrc=", html)  # nothing loaded from elsewhere
    for step_id in ("data", "nodes", "healthy", "cutover", "announce"):
        assert f"<td>{step_id}</td>" in html
    assert "step cutover failed: &lt;refused&gt; &amp; more" in html and "<refused>" not in html
    assert "not measured" in html
    svg_of(html)


def test_an_objective_far_beyond_the_run_is_said_rather_than_drawn() -> None:
    drill = result()
    drill.rto_objective_s = 1800
    chart = render_timeline(drill)
    assert 'class="objective"' not in chart
    assert "The objective (30m) lies far to the right of this chart." in chart


def test_the_markdown_report_has_the_same_facts_as_tables() -> None:
    drill = result(status="teardown_failed", clean=False)
    drill.differences = [{"kind": "node", "name": "drill-social-app-web-1 (i-1)", "change": "added", "detail": "running"},
                         {"kind": "zone", "name": "drill.social.example.", "change": "changed",
                          "detail": "record sets added: a | b"}]
    markdown = render_markdown(drill)
    lines = markdown.splitlines()

    assert lines[0] == "# Drill drill-20260101T100000Z-abcdef of standard on fallback: teardown_failed"
    rows = [line for line in lines if line.startswith("| ")]
    step_rows = {row.split(" | ")[0][2:]: row for row in rows if row.count("|") == 6}
    assert step_rows["nodes"] == "| nodes | provision-nodes | succeeded | 0.100 | 5.000 |"
    assert step_rows["announce"] == "| announce | notify | pending | — | — |"
    assert "| recovery time (RTO) | 6.5s, within the objective of 10.0s |" in lines
    assert "| target left as found | no: 2 differences |" in lines
    assert "| node | drill-social-app-web-1 (i-1) | added | running |" in lines
    assert "| zone | drill.social.example. | changed | record sets added: a \\| b |" in lines  # a pipe escaped
    assert "took 3.000s" in markdown


def test_reports_are_written_to_the_state_directory_for_the_owner_only(tmp_path: Path) -> None:
    drill = result()
    html_path, markdown_path = write_reports(tmp_path, drill)

    assert html_path == tmp_path / "reports" / "drill-20260101T100000Z-abcdef.html"
    assert markdown_path == html_path.with_suffix(".md")
    assert (drill.report_html, drill.report_markdown) == (html_path, markdown_path)
    assert "<svg" in html_path.read_text() and markdown_path.read_text().startswith("# Drill")
    for path in (html_path, markdown_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "reports").stat().st_mode) == 0o700
    assert drill.to_dict()["report"] == {"html": str(html_path), "markdown": str(markdown_path)}


def test_durations_read_as_people_say_them() -> None:
    assert [duration(s) for s in (None, 0.25, 59.94, 61, 3600, 3725)] == ["—", "0.2s", "59.9s", "1m 1s", "1h", "1h 2m"]


def test_html_in_names_is_text_in_the_markdown_report() -> None:
    from markdown_it import MarkdownIt  # what rich renders Markdown with; GitHub's renderer is CommonMark too

    drill = result(status="teardown_failed", clean=False)
    drill.differences = [
        {"kind": "node", "name": "web <script>alert(1)</script> (i-1)", "change": "added", "detail": "running"},
        {"kind": "node", "name": "<img src=x onerror=alert(2)>", "change": "added",
         "detail": "[click](javascript:alert(3)) ![x](http://attacker.example/x.png) `code` *em*\nline two"},
    ]
    markdown = render_markdown(drill)

    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script" not in html and "<img" not in html and "<a " not in html and "<em>" not in html
    assert "<code>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as written
    assert "| node | &lt;img src=x onerror=alert(2)&gt; | added |" in markdown
    assert len([line for line in markdown.splitlines() if "onerror" in line]) == 1  # the line break split no row


def test_a_reports_link_in_the_state_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "reports").symlink_to(elsewhere)
    with pytest.raises(InputError, match="reports directory is a symbolic link"):
        write_reports(tmp_path, result())
    assert list(elsewhere.iterdir()) == []
