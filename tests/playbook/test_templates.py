"""Templates: parsing, run-time resolution, ``when``."""

from __future__ import annotations

import pytest

from failover.errors import OperationFailed
from failover.templates import Ref, TemplateError, evaluate_when, find_refs, parse, resolve, resolve_env

VARS = {"dns_ttl": 60, "name": "web", "flag": True, "mode": "drill", "zone": {"name": "example.com."}}
OUTPUTS = {
    "nodes": {"web-1": {"public_ip": "203.0.113.7", "ports": [80, 443]}, "count": 2},
    "data": {"copied": {"bucket-a": 12}},
}
ENV = {"HOOK_TOKEN": "s3cr3t"}


def r(value, env=ENV):
    return resolve(value, vars=VARS, outputs=OUTPUTS, env=env)


def test_parse_splits_literals_and_references() -> None:
    assert parse("http://${steps.nodes.outputs.web-1.public_ip}/healthz") == [
        "http://",
        Ref("steps", "nodes", ("web-1", "public_ip"), "${steps.nodes.outputs.web-1.public_ip}"),
        "/healthz",
    ]
    assert parse("${env:X}") == [Ref("env", "X", (), "${env:X}")]
    assert parse("no templates") == ["no templates"]


def test_dollar_dollar_is_a_literal() -> None:
    assert parse("cost: $${vars.x}") == ["cost: ${vars.x}"]
    assert r("$${vars.name} is ${vars.name}") == "${vars.name} is web"
    assert find_refs({"a": "$${env:NOPE}"}) == []


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("${var.x}", "unknown template '${var.x}'"),
        ("${steps.a.output.x}", "unknown template"),
        ("${steps.a}", "unknown template"),
        ("${env:1BAD}", "unknown template"),
        ("${vars.}", "unknown template"),
        ("${steps.a.outputs..x}", "unknown template"),
        ("${}", "unknown template"),
        ("hello ${vars.x", "unclosed '${'"),
    ],
)
def test_unknown_syntax_is_an_error(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError, match=None) as info:
        parse(text)
    assert fragment in info.value.message
    assert find_refs({"with": {"k": [text]}}) == []  # only well-formed references are found


def test_find_refs_in_nested_values() -> None:
    value = {"a": ["${vars.name}", {"b": "x ${steps.nodes.outputs.count} ${env:HOOK_TOKEN}"}], "c": 3}
    found = [(loc, ref.kind, ref.name) for loc, ref in find_refs(value)]
    assert found == [(("a", 0), "vars", "name"), (("a", 1, "b"), "steps", "nodes"), (("a", 1, "b"), "env", "HOOK_TOKEN")]


def test_exact_reference_keeps_the_type() -> None:
    assert r("${vars.dns_ttl}") == 60
    assert r({"ttl": "${vars.dns_ttl}"}) == {"ttl": 60}
    assert r("${vars.flag}") is True
    assert r("${steps.nodes.outputs.web-1.ports}") == [80, 443]
    assert r("${steps.nodes.outputs}") == OUTPUTS["nodes"]
    assert r(" ${vars.dns_ttl}") == " 60"  # surrounding text makes it a string


def test_interpolation_writes_non_strings_as_json() -> None:
    assert r("ttl=${vars.dns_ttl}") == "ttl=60"
    assert r("flag=${vars.flag}") == "flag=true"
    assert r("ports=${steps.nodes.outputs.web-1.ports}") == "ports=[80, 443]"
    assert r("http://${steps.nodes.outputs.web-1.public_ip}/healthz") == "http://203.0.113.7/healthz"


def test_walks_dicts_with_dashed_keys_and_list_indexes() -> None:
    assert r("${steps.data.outputs.copied.bucket-a}") == 12
    assert r("${steps.nodes.outputs.web-1.ports.1}") == 443
    assert r("${vars.zone.name}") == "example.com."


def test_resolves_inside_lists_and_dicts_and_leaves_other_values() -> None:
    assert r([{"a": "${vars.name}", "b": 1.5, "c": None}, "${vars.mode}"]) == [{"a": "web", "b": 1.5, "c": None}, "drill"]


@pytest.mark.parametrize(
    "template, fragment",
    [
        ("${vars.nope}", "no var 'nope'"),
        ("${steps.dns.outputs.x}", "step 'dns' has no outputs"),
        ("${steps.nodes.outputs.web-2.public_ip}", "has no 'web-2' (it has: web-1, count)"),
        ("${steps.nodes.outputs.web-1.ports.5}", "web-1.ports has no '5'"),
        ("${env:NOT_SET_ANYWHERE}", "environment variable NOT_SET_ANYWHERE is not set"),
    ],
)
def test_missing_values_fail_the_step_naming_the_reference(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        r(template)
    assert fragment in str(info.value)
    assert isinstance(info.value, OperationFailed)  # at run time: the step fails (exit 1)


def test_env_resolved_only_from_the_env_given() -> None:
    assert r("Bearer ${env:HOOK_TOKEN}") == "Bearer s3cr3t"
    with pytest.raises(TemplateError) as info:
        r("${env:HOOK_TOKEN}", env={})
    assert "s3cr3t" not in str(info.value)


def test_resolve_env_touches_only_secrets() -> None:
    value = {"url": "https://h/${env:HOOK_TOKEN}", "keep": "${vars.name}", "lit": "$${env:HOOK_TOKEN}", "n": 3}
    assert resolve_env(value, ENV) == {"url": "https://h/s3cr3t", "keep": "${vars.name}", "lit": "${env:HOOK_TOKEN}", "n": 3}
    with pytest.raises(TemplateError, match="environment variable MISSING is not set"):
        resolve_env("${env:MISSING}", {})


def when(expression: str) -> bool:
    return evaluate_when(expression, vars=VARS, outputs=OUTPUTS, env=ENV)


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("true", True),
        ("false", False),
        ("yes", True),
        ("No", False),
        ("1", True),
        ("0", False),
        ("${vars.flag}", True),
        ("${steps.nodes.outputs.count}", True),
        ("${vars.mode} == drill", True),
        ("${vars.mode} != drill", False),
        ("${vars.mode} == 'drill'", True),
        ('${vars.mode} == "real"', False),
        ("${steps.nodes.outputs.count} == 2", True),
        ("${vars.flag} == true", True),
        ("${steps.nodes.outputs.web-1.public_ip} == 203.0.113.7", True),
    ],
)
def test_when(expression: str, expected: bool) -> None:
    assert when(expression) is expected


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("maybe", "'maybe' is neither true nor false"),
        ("${vars.name}", "'web' is neither true nor false"),
        ("${vars.mode} == drill == x", "only one comparison"),
        ("== drill", "needs a value on each side"),
    ],
)
def test_bad_when(expression: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        when(expression)
    assert fragment in str(info.value)


def test_when_never_repeats_a_secret() -> None:
    with pytest.raises(TemplateError) as info:
        when("${env:HOOK_TOKEN}")
    assert "s3cr3t" not in str(info.value)
