"""Running the checks together (concurrently, in a fixed order, a crash failing one check
only, secrets kept out), and the report as JSON and as JUnit XML validated against the
Jenkins/Ant JUnit schema (``junit.xsd`` beside this file)."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from checkkit import SECRETS, Kit

from failover.checks.base import CHECKS, Check, CheckContext, CheckResult, Outcome, ordered_checks, passed, warned
from failover.checks.junit import junit_xml, write_junit
from failover.checks.runner import Report, run_checks
from failover.errors import CredentialsRefused, FailoverError

SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("junit.xsd"))
BUILTIN = ["snapshot-age", "unsupported-acknowledged", "playbook-valid", "target-credentials", "target-location", "node-mapping",
           "tls-certificates", "replicas", "dns-mirror", "source-ttls", "database-dumps", "last-drill"]


def check_class(name: str, run, order: int = 1000) -> type[Check]:
    """A check class that is not registered (the registry is the process's)."""
    return type(name.title().replace("-", ""), (Check,), {"name": name, "order": order, "run": lambda self, ctx: run(ctx)})


def test_the_builtin_checks_are_registered_in_report_order() -> None:
    assert [cls.name for cls in ordered_checks()][: len(BUILTIN)] == BUILTIN
    assert all(CHECKS.get(name) is not None for name in BUILTIN)


def test_checks_run_concurrently_and_are_reported_in_the_order_given(kit: Kit) -> None:
    barrier = threading.Barrier(3, timeout=60)  # only passes if the three run at the same time

    def meet(ctx: CheckContext) -> Outcome:
        barrier.wait()
        return passed(threading.current_thread().name)

    classes = [check_class(name, meet) for name in ("c-one", "a-two", "b-three")]
    report = run_checks(kit.context(), classes)
    assert [check.name for check in report.checks] == ["c-one", "a-two", "b-three"]
    assert [check.status for check in report.checks] == ["pass"] * 3
    assert len({check.detail for check in report.checks}) == 3  # three threads


def test_a_crashing_check_fails_alone_with_its_error(kit: Kit) -> None:
    def crash(ctx: CheckContext) -> Outcome:
        raise RuntimeError("boom")

    def refused(ctx: CheckContext) -> Outcome:
        raise CredentialsRefused("credentials refused (HTTP 401)", where="dns target (powerdns)")

    def nothing(ctx: CheckContext) -> Outcome:
        return None  # type: ignore[return-value]

    classes = [check_class("crashes", crash), check_class("refused", refused), check_class("returns-none", nothing),
               check_class("fine", lambda ctx: warned("only a warning"))]
    report = run_checks(kit.context(), classes)
    by_name = {check.name: check for check in report.checks}
    assert by_name["crashes"].status == "fail"
    assert by_name["crashes"].detail == "the check crashed: RuntimeError: boom"
    assert by_name["refused"].detail == "dns target (powerdns): credentials refused (HTTP 401)"
    assert by_name["returns-none"].detail == "the check crashed: TypeError: check returns-none returned NoneType, not an Outcome"
    assert by_name["fine"].status == "warn"
    assert report.counts == {"pass": 0, "warn": 1, "fail": 3}
    assert not report.ready and report.summary() == "NOT READY: 3 failed, 1 warning"


def test_secret_values_never_reach_a_detail_or_data(kit: Kit) -> None:
    secret = kit.secret_values()["dns"]
    assert len(secret) >= 8

    def leaky(ctx: CheckContext) -> Outcome:
        raise ValueError(f"http://127.0.0.1/?api-key={secret}")

    classes = [check_class("leaky", leaky), check_class("data", lambda ctx: passed(f"key {secret}", nested={"k": [secret]}))]
    report = run_checks(kit.context(), classes)
    document = repr(report.to_dict()) + junit_xml(report).decode()
    assert secret not in document
    assert report.checks[0].detail == "the check crashed: ValueError: http://127.0.0.1/?api-key=***"
    assert report.checks[1].data == {"nested": {"k": ["***"]}}


def test_ready_means_no_failure_warnings_allowed(kit: Kit) -> None:
    classes = [check_class("a", lambda ctx: passed("ok")), check_class("b", lambda ctx: warned("hm"))]
    report = run_checks(kit.context(), classes)
    assert report.ready and report.summary() == "ready (1 warning)"
    document = report.to_dict()
    assert list(document) == ["service", "target", "playbook", "snapshot", "checked_at", "ready", "counts", "checks"]
    assert document["checks"][1] == {"name": "b", "status": "warn", "detail": "hm",
                                     "elapsed_s": document["checks"][1]["elapsed_s"], "data": {}}


def test_every_builtin_check_runs_without_a_snapshot_and_none_crashes(kit: Kit) -> None:
    report = run_checks(kit.context())
    statuses = {check.name: check.status for check in report.checks}
    assert [check.name for check in report.checks][: len(BUILTIN)] == BUILTIN
    assert not any("crashed" in check.detail for check in report.checks)
    assert statuses["snapshot-age"] == "fail" and statuses["playbook-valid"] == "pass"
    assert statuses["target-credentials"] == "pass" and statuses["last-drill"] == "warn"
    for name in ("node-mapping", "tls-certificates", "replicas", "dns-mirror", "source-ttls", "database-dumps"):
        assert statuses[name] == "fail"


# -- JUnit XML -------------------------------------------------------------------------------


def sample_report(*results: CheckResult) -> Report:
    return Report(service="social-app", target="fallback", playbook="standard", snapshot="snap-1",
                  checked_at="2024-01-15T10:30:00Z", elapsed_s=1.25, checks=list(results) or [
                      CheckResult("snapshot-age", "pass", "snapshot snap-1 taken 3m ago", 0.01),
                      CheckResult("last-drill", "warn", "never drilled onto fallback", 0.002),
                      CheckResult("replicas", "fail", 'bucket m: no container <replica-m> & "more"', 0.5,
                                  {"buckets": [{"bucket": "m"}]}),
                  ])


def test_the_junit_report_validates_and_says_what_each_check_found() -> None:
    document = junit_xml(sample_report())
    SCHEMA.validate(document)
    root = ET.fromstring(document)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert dict(suite.attrib) == {"name": "failover.check", "tests": "3", "failures": "1", "errors": "0", "skipped": "0",
                                 "time": "1.250", "timestamp": "2024-01-15T10:30:00"}
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties == {"service": "social-app", "target": "fallback", "playbook": "standard",
                          "snapshot": "snap-1", "ready": "false"}
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["snapshot-age", "last-drill", "replicas"]
    assert all(case.get("classname") == "failover.check" for case in cases.values())
    assert list(cases["snapshot-age"]) == []
    assert cases["last-drill"].find("system-out").text == "WARNING: never drilled onto fallback"
    assert cases["last-drill"].find("failure") is None
    failure = cases["replicas"].find("failure")
    assert failure.get("message") == 'bucket m: no container <replica-m> & "more"'
    assert failure.text.startswith('bucket m: no container <replica-m> & "more"\n{')
    assert cases["replicas"].get("time") == "0.500"


def test_control_characters_in_a_detail_still_make_valid_xml() -> None:
    report = sample_report(CheckResult("replicas", "fail", "key 'a\x01b' missing", 0.1))
    document = junit_xml(report)
    SCHEMA.validate(document)
    assert ET.fromstring(document).find("testsuite/testcase/failure").get("message") == "key 'a\ufffdb' missing"


def test_the_schema_rejects_what_ci_would_reject() -> None:
    good = junit_xml(sample_report())
    for broken in (good.replace(b'name="replicas"', b""), good.replace(b'time="0.500"', b'time="-1"'),
                   good.replace(b'tests="3" failures="1" errors="0" skipped', b'tests="x" failures="1" errors="0" skipped')):
        assert broken != good
        with pytest.raises(xmlschema.XMLSchemaValidationError):
            SCHEMA.validate(broken)


def test_the_junit_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "readiness.xml"
    path.write_text("an old report")
    write_junit(sample_report(), path)
    SCHEMA.validate(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["readiness.xml"]  # no temporary file left
    with pytest.raises(FailoverError) as caught:
        write_junit(sample_report(), tmp_path / "missing" / "readiness.xml")
    assert "cannot write the JUnit report" in str(caught.value)


def test_secrets_are_read_when_the_checks_run(kit: Kit) -> None:
    context = kit.context()  # the config was loaded before the secret changed (a rotation)
    kit.monkeypatch.setenv(SECRETS["dns"], "a-rotated-pdns-key-value")
    report = run_checks(context, [check_class("echo", lambda ctx: passed("key a-rotated-pdns-key-value"))])
    assert report.checks[0].detail == "key ***"


def test_a_check_with_no_answer_by_the_timeout_fails_and_the_others_are_reported(kit: Kit) -> None:
    release = threading.Event()  # the stuck check's target answers only after the report is made

    def stuck(ctx: CheckContext) -> Outcome:
        release.wait(60)
        return passed("too late")

    classes = [check_class("stuck", stuck), check_class("quick", lambda ctx: passed("ok"))]
    try:
        report = run_checks(kit.context(), classes, timeout_s=1)
    finally:
        release.set()
    assert [(check.name, check.status) for check in report.checks] == [("stuck", "fail"), ("quick", "pass")]
    assert report.checks[0].detail.startswith("no answer within 1s (--timeout)")
    assert not report.ready
