"""A readiness report as JUnit XML, for CI systems (Jenkins, GitLab, GitHub annotations).

The Ant/Jenkins format: a ``<testsuites>`` root holding one ``<testsuite
name="failover.check">`` with one ``<testcase classname="failover.check" name="CHECK"
time="SECONDS">`` per check, in report order:

- pass: an empty test case;
- warn: a passing test case whose ``<system-out>`` says ``WARNING: <detail>`` (JUnit
  has no warning state, and a warning must not fail a build);
- fail: a ``<failure message="<detail>" type="fail">`` holding the detail and the check's data.

The suite's ``<properties>`` name the service, target, playbook and snapshot, and
whether the service is ready. The file is written atomically (a temporary file in the
same directory, then renamed), so a CI job never reads half a report, and owner-only
(0600, narrowed by the umask: ``failover.files``).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from failover.checks.base import FAIL, WARN
from failover.checks.runner import Report
from failover.files import write_atomic

SUITE = "failover.check"
# Characters XML 1.0 cannot hold at all (an object key may carry them into a detail).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def junit_xml(report: Report) -> bytes:
    counts = report.counts
    root = ET.Element("testsuites", name=SUITE, tests=str(len(report.checks)), failures=str(counts[FAIL]),
                      errors="0", time=_seconds(report.elapsed_s))
    suite = ET.SubElement(root, "testsuite", {
        "name": SUITE, "tests": str(len(report.checks)), "failures": str(counts[FAIL]), "errors": "0",
        "skipped": "0", "time": _seconds(report.elapsed_s), "timestamp": _timestamp(report.checked_at),
    })
    properties = ET.SubElement(suite, "properties")
    for name, value in (("service", report.service), ("target", report.target), ("playbook", report.playbook),
                        ("snapshot", report.snapshot or ""), ("ready", str(report.ready).lower())):
        ET.SubElement(properties, "property", name=name, value=value)
    for check in report.checks:
        case = ET.SubElement(suite, "testcase", classname=SUITE, name=check.name, time=_seconds(check.elapsed_s))
        if check.status == FAIL:
            failure = ET.SubElement(case, "failure", message=_text(check.detail), type="fail")
            data = "\n" + json.dumps(check.data, indent=2, sort_keys=True, ensure_ascii=False) if check.data else ""
            failure.text = _text(check.detail + data)
        elif check.status == WARN:
            ET.SubElement(case, "system-out").text = _text(f"WARNING: {check.detail}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: Report, path: Path) -> None:
    """Write the report to ``path`` atomically and owner-only (``failover.files``)."""
    write_atomic(Path(path), junit_xml(report), what="JUnit report")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.3f}"


def _timestamp(iso: str) -> str:
    """``2024-01-15T10:30:00`` (UTC, no zone: the Ant schema's ISO-8601 form)."""
    return iso.replace("Z", "").split("+")[0].split(".")[0]
