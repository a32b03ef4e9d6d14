"""Meta-tests over the action registry: every action is complete and documented
(Cloud Custodian style), and the generated playbook schema covers each of them."""

from __future__ import annotations

import re

import pytest

from failover.actions.base import ACTIONS, Action, Params
from failover.playbook import playbook_schema, validate_document
from failover.templates import find_refs
from failover.yamlio import Document

# The built-in actions; test doubles that other tests register are not held to this.
NAMES = [name for name, action in ACTIONS if action.__module__.startswith("failover.actions.")]


def test_the_builtin_actions_are_registered() -> None:
    assert {"pause", "notify"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_action_is_complete(name: str) -> None:
    action = ACTIONS.get(name)
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name), "names are kebab-case"
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", action.__name__), "classes are CamelCase"
    assert issubclass(action, Action)
    assert action.__doc__ and action.__doc__.strip()
    assert action.summary.strip()
    assert isinstance(action.mutates, bool)
    for method in ("plan", "apply", "undo"):
        assert getattr(action, method) is not getattr(Action, method), f"{name} does not implement {method}"


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_a_closed_schema(name: str) -> None:
    action = ACTIONS.get(name)
    assert issubclass(action.Params, Params) and action.Params is not Params
    assert action.Params.model_config.get("extra") == "forbid"
    schema = action.Params.model_json_schema()
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    for field, spec in schema["properties"].items():
        assert spec.get("description"), f"{name}.{field} has no description"


@pytest.mark.parametrize("name", NAMES)
def test_example_is_valid_params_and_a_valid_step(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    action = ACTIONS.get(name)
    assert action.example, f"{name} has no example"
    action.Params.model_validate(action.example)
    # ...and passes playbook validation as a step's `with`, its secrets being set.
    for _, ref in find_refs(action.example):
        assert ref.kind == "env", "examples stand alone: no vars or step outputs"
        monkeypatch.setenv(ref.name, "set")
    document = Document(file="example", data={"name": "example", "steps": [{"id": "s", "action": name, "with": action.example}]})
    validate_document(document)


def test_schema_has_one_step_variant_per_action() -> None:
    schema = playbook_schema()
    names = ACTIONS.names()  # other tests may register actions of their own
    variants = [v["$ref"] for v in schema["properties"]["steps"]["items"]["oneOf"]]
    assert variants == [f"#/$defs/step.{name}" for name in names]
    for name in names:
        step = schema["$defs"][f"step.{name}"]
        assert step["properties"]["action"] == {"const": name}
        assert step["additionalProperties"] is False
        assert set(step["properties"]) == {"id", "action", "with", "needs", "timeout", "retries", "when"}


def test_schema_is_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(playbook_schema())
