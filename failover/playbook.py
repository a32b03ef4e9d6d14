"""Playbooks: loading (a file or a built-in name) and the model the engine runs.

Validation is complete before any cloud call: the playbook's shape, every action's
closed parameters, ids, needs, cycles, references, the target profile and its secrets.
Every problem found is reported at once, each with file and line.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from failover.actions.base import ACTIONS
from failover.config import Config, missing_secrets
from failover.errors import ConfigError, InputError, NotFound, PlaybookError, Problem
from failover.targets import profile_problems
from failover.templates import (
    Ref,
    TemplateError,
    evaluate_when,
    find_refs,
    lookup,
    parse,
    render,
    split_comparison,
    walk_strings,
)
from failover.yamlio import Document, Loc, load_file, load_text

BUILTIN_PACKAGE = "playbooks"
# Real playbooks are a few KiB; parsing YAML in pure Python takes about 1 s per 200 KiB,
# so a smaller limit than the generic one keeps a hostile file from stalling `validate`.
MAX_BYTES = 256 * 1024
BUILTIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
STEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
FILE_KEYS = ("name", "description", "vars", "steps")
STEP_KEYS = ("id", "action", "with", "needs", "timeout", "retries", "when")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str
    action: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    needs: list[str] = Field(default_factory=list)
    timeout: float | None = Field(default=None, gt=0)  # seconds
    retries: int = Field(default=3, ge=0, le=100)  # transient errors retried this many times
    when: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        # Ids appear in ${steps.ID.outputs...}: no dots, no spaces.
        if not STEP_ID.match(value):
            raise ValueError("letters, digits, '-' and '_' only, starting with a letter or digit")
        return value

    @field_validator("with_", mode="before")
    @classmethod
    def _empty_with(cls, value: Any) -> Any:
        return {} if value is None else value  # "with:" with everything commented out

    @field_validator("when", mode="before")
    @classmethod
    def _constant_when(cls, value: Any) -> Any:
        return str(value).lower() if isinstance(value, bool) else value  # "when: false"


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step]

    # where it came from (a path, or "builtin:NAME"); not part of the file
    source: str = Field(default="", exclude=True)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


class _Header(BaseModel):
    """The playbook's keys other than ``steps``, validated on their own so that a bad step
    does not hide a bad header (and the other way round)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)

    @field_validator("vars")
    @classmethod
    def _var_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [name for name in value if not VAR_NAME.match(name)]
        if bad:
            raise ValueError(f"not a var name (letters, digits, '-', '_'): {', '.join(map(repr, bad))}")
        return value


# --- finding and reading -------------------------------------------------------------------


def builtin_playbooks() -> list[tuple[str, str]]:
    """(name, description) of every playbook shipped in the ``playbooks`` package."""
    found = []
    for entry in sorted(resources.files(BUILTIN_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and entry.is_file():
            data = load_text(entry.read_text(encoding="utf-8"), f"builtin:{entry.name}").data
            description = data.get("description", "") if isinstance(data, dict) else ""
            found.append((entry.name.removesuffix(".yaml"), str(description).strip()))
    return found


def _read(ref: str) -> tuple[Document, str]:
    """The document and its source label: a file when ``ref`` is one (or looks like a path), else a built-in."""
    path = Path(ref)
    if path.is_file() or not BUILTIN_NAME.match(ref):
        try:
            return load_file(path, max_bytes=MAX_BYTES, what="playbook"), str(path)
        except InputError as exc:
            raise PlaybookError(exc.problems) from None
    resource = resources.files(BUILTIN_PACKAGE) / f"{ref}.yaml"
    if not resource.is_file():
        names = ", ".join(name for name, _ in builtin_playbooks()) or "none"
        raise NotFound([Problem(file=ref, message=f"no such playbook file, nor a built-in playbook (built-in: {names})")])
    label = f"builtin:{ref}"
    try:
        return load_text(resource.read_text(encoding="utf-8"), label, max_bytes=MAX_BYTES), label
    except InputError as exc:
        raise PlaybookError(exc.problems) from None


def parse_var_args(pairs: Iterable[str]) -> dict[str, str]:
    """``--var KEY=VALUE`` options -> {KEY: VALUE}; the values stay strings."""
    values: dict[str, str] = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not VAR_NAME.match(key):
            problems.append(Problem(file="arguments", field="--var", message=f"{pair!r} is not KEY=VALUE (KEY: letters, digits, '-', '_')"))
        else:
            values[key] = value
    if problems:
        raise InputError(problems)
    return values


# --- validation ------------------------------------------------------------------------------


def load_playbook(
    ref: str,
    *,
    vars_override: Mapping[str, str] | None = None,
    config: Config | None = None,
    target: str | None = None,
) -> Playbook:
    """Read and fully validate a playbook (a path or a built-in name); raises PlaybookError
    carrying every problem found. With ``config`` and ``target``, the target profile must
    exist and its ``${env:}`` secrets must be set."""
    doc, source = _read(ref)
    return validate_document(doc, source=source, vars_override=vars_override, config=config, target=target)


def validate_document(
    doc: Document,
    *,
    source: str = "",
    vars_override: Mapping[str, str] | None = None,
    config: Config | None = None,
    target: str | None = None,
) -> Playbook:
    checker = _Checker(doc, dict(vars_override or {}))
    playbook = checker.check()
    problems = sorted(checker.problems, key=lambda p: (p.line or 0, p.field or ""))
    if config is not None and target is not None:
        problems += target_problems(config, target)
    if problems or playbook is None:
        raise PlaybookError(problems)
    return playbook.model_copy(update={"source": source})


def target_problems(config: Config, target: str) -> list[Problem]:
    """The target profile must exist, its drivers resolve, and every secret it refers to be set."""
    try:
        profile = config.target(target)
    except ConfigError as exc:
        return exc.problems
    return [*profile_problems(config, target), *[
        Problem(file=str(config.path), field=f"targets.{target}.{where}", message=f"environment variable {name} is not set")
        for where, name in missing_secrets(profile.model_dump(mode="json", exclude_none=True))
    ]]


@dataclass
class _StepView:
    """What a step says, read leniently (each part only if it has the right type), so that
    one malformed field does not hide the problems of the others."""

    index: int
    id: str | None
    action: str | None
    with_: dict[str, Any] | None  # None: not a mapping (reported as such)
    needs: list[str]
    when: str | None

    @classmethod
    def of(cls, index: int, raw: dict[str, Any]) -> _StepView:
        def typed(key: str, kind: type) -> Any:
            value = raw.get(key)
            return value if isinstance(value, kind) else None

        when = raw.get("when")
        if isinstance(when, bool):
            when = str(when).lower()
        return cls(
            index=index,
            id=typed("id", str),
            action=typed("action", str),
            with_={} if raw.get("with") is None else typed("with", dict),
            needs=[need for need in typed("needs", list) or [] if isinstance(need, str)],
            when=when if isinstance(when, str) else None,
        )

    @property
    def loc(self) -> Loc:
        return ("steps", self.index)


@dataclass
class _Checker:
    doc: Document
    overrides: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    steps: list[_StepView] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)

    def report(self, loc: Loc, message: str) -> None:
        self.problems.append(self.doc.problem(loc, message))

    def check(self) -> Playbook | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.report((), "expected a mapping with name, description, vars and steps")
            return None
        header = self.check_header(data)
        steps = self.check_steps(data)
        self.check_ids()
        self.check_needs()
        self.check_cycles()
        for view in self.steps:
            self.check_action(view)
            self.check_when(view)
        if header is None or steps is None or self.problems:
            return None
        return Playbook(name=header.name, description=header.description, vars=self.vars, steps=steps)

    # shape

    def check_header(self, data: dict[str, Any]) -> _Header | None:
        for key in data:
            if key not in FILE_KEYS:
                self.report((key,), _unknown("key", key, FILE_KEYS))
        header = None
        try:
            header = _Header.model_validate({k: data[k] for k in FILE_KEYS if k in data and k != "steps"})
        except ValidationError as exc:
            self.problems += _validation_problems(exc, self.doc, (), data)
        # With a bad header, still resolve what can be, so that every reference is not an error too.
        raw_vars = data["vars"] if isinstance(data.get("vars"), dict) else {}
        declared = header.vars if header is not None else raw_vars
        for loc, text in walk_strings(declared, ("vars",)):
            if "${" in text:
                self.report(loc, "vars hold plain values, not templates; write the reference where the var is used")
        for name, value in self.overrides.items():
            if not VAR_NAME.match(name):
                self.problems.append(Problem(file="arguments", field="--var", message=f"{name!r} is not a var name"))
            elif "${" in value:
                self.problems.append(Problem(file="arguments", field=f"--var {name}", message="vars hold plain values, not references"))
        self.vars = {**declared, **self.overrides}
        return header

    def check_steps(self, data: dict[str, Any]) -> list[Step] | None:
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            missing = "steps" not in data
            self.report(("steps",), ("required key is missing: " if missing else "") + "a list of at least one step")
            return None
        steps: list[Step] | None = []
        for index, raw in enumerate(raw_steps):
            if not isinstance(raw, dict):
                self.report(("steps", index), "a step is a mapping with id, action and, as needed, with, needs, when")
                steps = None
                continue
            self.steps.append(_StepView.of(index, raw))
            try:
                step = Step.model_validate(raw)
            except ValidationError as exc:
                self.problems += _validation_problems(exc, self.doc, ("steps", index), raw, known=STEP_KEYS)
                steps = None
                continue
            if steps is not None:
                steps.append(step)
        return steps

    # ids and the graph

    @cached_property
    def first_index(self) -> dict[str, int]:
        """Step id -> the position of the step that first declared it."""
        index: dict[str, int] = {}
        for view in self.steps:
            if view.id is not None:
                index.setdefault(view.id, view.index)
        return index

    @cached_property
    def graph(self) -> dict[str, list[str]]:
        """Step id -> the ids it needs that exist (of its first declaration)."""
        graph: dict[str, list[str]] = {}
        for view in self.steps:
            if view.id is not None and view.id not in graph:
                graph[view.id] = [n for n in view.needs if n in self.first_index]
        return graph

    def check_ids(self) -> None:
        for view in self.steps:
            if view.id is not None and self.first_index[view.id] != view.index:
                first_line = self.doc.line_of(("steps", self.first_index[view.id], "id"))
                self.report(view.loc + ("id",), f"duplicate step id {view.id!r} (first declared at line {first_line})")

    def check_needs(self) -> None:
        for view in self.steps:
            for position, need in enumerate(view.needs):
                if need not in self.first_index:
                    self.report(view.loc + ("needs", position), f"no step {need!r}{_did_you_mean(need, self.first_index)}")

    def check_cycles(self) -> None:
        for cycle in find_cycles(self.graph):
            self.report(("steps", self.first_index[cycle[0]], "needs"), "cycle in needs: " + " -> ".join(cycle))

    @cached_property
    def bit(self) -> dict[str, int]:
        return {step_id: 1 << position for position, step_id in enumerate(self.graph)}

    @cached_property
    def ancestors(self) -> dict[str, int]:
        """Step id -> the steps that finish before it starts (its needs, transitively), as a
        bitset: a playbook near the size limit has thousands of steps. Steps in or after
        a cycle are left out (the cycle is reported)."""
        waiting_on = {step_id: len(needs) for step_id, needs in self.graph.items()}
        dependents: dict[str, list[str]] = {step_id: [] for step_id in self.graph}
        for step_id, needs in self.graph.items():
            for need in needs:
                dependents[need].append(step_id)
        ready = [step_id for step_id, count in waiting_on.items() if count == 0]
        ancestors: dict[str, int] = {}
        while ready:
            step_id = ready.pop()
            bits = 0
            for need in self.graph[step_id]:
                bits |= self.bit[need] | ancestors[need]
            ancestors[step_id] = bits
            for dependent in dependents[step_id]:
                waiting_on[dependent] -= 1
                if waiting_on[dependent] == 0:
                    ready.append(dependent)
        return ancestors

    def runs_before(self, earlier: str, step_id: str) -> bool:
        if step_id not in self.ancestors:
            return True  # in or after a cycle: unknown, and the cycle is reported already
        return bool(self.ancestors[step_id] & self.bit[earlier])

    # actions, parameters and templates

    def check_action(self, view: _StepView) -> None:
        if view.action is None or view.with_ is None:
            return
        action = ACTIONS.get(view.action)
        if action is None:
            hint = _did_you_mean(view.action, ACTIONS.names()) or " (see `failover actions`)"
            self.report(view.loc + ("action",), f"unknown action {view.action!r}{hint}")
            return
        candidate, deferred = self.check_templates(view, view.with_, view.loc + ("with",))
        try:
            action.Params.model_validate(candidate)
        except ValidationError as exc:
            known = [f.alias or name for name, f in action.Params.model_fields.items()]
            for problem_loc, message in _validation_errors(exc, candidate, known=known, what="parameter", unchecked=deferred):
                self.report(view.loc + ("with",) + problem_loc, message + _from_vars(view.with_, candidate, problem_loc))

    def check_when(self, view: _StepView) -> None:
        if view.when is None:
            return
        loc = view.loc + ("when",)
        _, deferred = self.check_templates(view, view.when, loc)
        known_now = not deferred and all(ref.kind == "vars" for _, ref in find_refs(view.when))
        try:
            split_comparison(view.when)
            if known_now:  # only vars and literals: its value can be checked now
                evaluate_when(view.when, vars=self.vars, outputs={}, env={})
        except TemplateError as exc:
            self.report(loc, exc.message.removeprefix("when: "))  # the field path already says "when"

    def check_templates(self, view: _StepView, value: Any, loc: Loc) -> tuple[Any, list[Loc]]:
        """Report every bad template in ``value`` (found at ``loc``). Returns the value with its
        vars substituted, for type checking, and the places (relative to ``value``) known
        only at run time: a step's output, a whole ``${env:}`` secret, anything broken."""
        deferred: list[Loc] = []

        def substitute(item: Any, where: Loc) -> Any:
            if isinstance(item, str):
                return self.substitute_string(view, item, loc + where, lambda: deferred.append(where))
            if isinstance(item, dict):
                return {key: substitute(sub, where + (key,)) for key, sub in item.items()}
            if isinstance(item, list):
                return [substitute(sub, where + (index,)) for index, sub in enumerate(item)]
            return item

        return substitute(value, ()), deferred

    def substitute_string(self, view: _StepView, text: str, loc: Loc, defer: Callable[[], None]) -> Any:
        if "${" not in text:
            return text
        try:
            parts = parse(text)
        except TemplateError as exc:
            self.report(loc, exc.message)
            defer()
            return text
        refs = [part for part in parts if isinstance(part, Ref)]
        broken = [self.check_ref(view, ref, loc) for ref in refs]
        whole_secret = len(parts) == 1 and refs and refs[0].kind == "env"
        if any(broken) or whole_secret or any(ref.kind == "steps" for ref in refs):
            defer()
            return text
        if len(parts) == 1 and refs:
            return lookup(refs[0], self.vars, {}, {})
        return "".join(self.substitute_var(part) for part in parts)

    def substitute_var(self, part: str | Ref) -> str:
        if isinstance(part, str):
            return part
        if part.kind == "env":
            return part.text  # a secret in a longer string: the result is a string either way
        return render(lookup(part, self.vars, {}, {}))

    def check_ref(self, view: _StepView, ref: Ref, loc: Loc) -> bool:
        """Report what is wrong with one reference; True when it is broken."""
        if ref.kind == "env":
            if ref.name not in os.environ:
                self.report(loc, f"{ref.text}: environment variable {ref.name} is not set")
                return True
            return False
        if ref.kind == "vars":
            try:
                lookup(ref, self.vars, {}, {})
            except TemplateError:
                if ref.name not in self.vars:
                    self.report(loc, f"{ref.text}: no var {ref.name!r} in vars or --var{_did_you_mean(ref.name, self.vars)}")
                else:
                    self.report(loc, f"{ref.text}: var {ref.name!r} has no {'.'.join(ref.path)!r}")
                return True
            return False
        if ref.name not in self.first_index:
            self.report(loc, f"{ref.text}: no step {ref.name!r}{_did_you_mean(ref.name, self.first_index)}")
            return True
        if view.id is not None and not self.runs_before(ref.name, view.id):
            self.report(loc, f"{ref.text}: step {ref.name!r} is not among the needs of step {view.id!r} (add it to needs)")
            return True
        return False


def find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Cycles of a needs graph, each as a path ``[a, b, c, a]`` (a needs b needs c needs a);
    one per set of steps. Iterative, so a long chain cannot exhaust the stack."""
    unvisited, in_path, done = 0, 1, 2
    state = dict.fromkeys(graph, unvisited)
    cycles: list[list[str]] = []
    reported: set[frozenset[str]] = set()
    for root in graph:
        if state[root] != unvisited:
            continue
        path, pending = [root], [iter(graph[root])]
        state[root] = in_path
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                state[path.pop()] = done
                pending.pop()
            elif state[nxt] == in_path:
                cycle = path[path.index(nxt) :] + [nxt]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    cycles.append(cycle)
            elif state[nxt] == unvisited:
                state[nxt] = in_path
                path.append(nxt)
                pending.append(iter(graph[nxt]))
    return cycles


# --- turning pydantic errors into located problems -------------------------------------------


def _validation_errors(
    exc: ValidationError, data: Any, *, known: Iterable[str] = (), what: str = "key", unchecked: Iterable[Loc] = ()
) -> list[tuple[Loc, str]]:
    """(location in ``data``, message) of each error, once each, in words a user reads.
    Errors about the values under an ``unchecked`` location are left out (known only at
    run time); an unknown key never is."""
    seen: set[tuple[Loc, str]] = set()
    out = []
    for err in exc.errors(include_url=False):
        loc = _data_loc(err["loc"], data, keep_last=err["type"] == "missing")
        if err["type"] != "extra_forbidden" and any(loc[: len(skip)] == skip for skip in unchecked):
            continue
        if err["type"] == "extra_forbidden":
            message = _unknown(what, loc[-1], known if len(loc) == 1 else ())
        elif err["type"] == "missing":
            message = f"required {what} is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "string_type" and isinstance(err.get("input"), bool):
                message += " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote it)"
        if (loc, message) not in seen:
            seen.add((loc, message))
            out.append((loc, message))
    return out


def _validation_problems(exc: ValidationError, doc: Document, prefix: Loc, data: Any, *, known: Iterable[str] = ()) -> list[Problem]:
    return [doc.problem(prefix + loc, message) for loc, message in _validation_errors(exc, data, known=known)]


def _data_loc(loc: tuple[Any, ...], data: Any, *, keep_last: bool) -> Loc:
    """The part of a pydantic error location that exists in the data (pydantic adds the
    names of union members and validators); a missing key keeps its own name."""
    out: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current or isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            if keep_last and part == loc[-1]:
                out.append(part)
            break
        out.append(part)
    return tuple(out)


def _from_vars(raw: Any, substituted: Any, loc: Loc) -> str:
    """Where a wrong value came from, when it came from vars (they may be --var overrides)."""
    template = _get(raw, loc)
    if not isinstance(template, str) or "${vars." not in template:
        return ""
    return f" ({template} gives {_get(substituted, loc)!r})"


def _get(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _unknown(what: str, name: Any, known: Iterable[str]) -> str:
    return f"unknown {what}{_did_you_mean(name, known)}"


def _did_you_mean(word: Any, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


# --- the JSON Schema, for `failover actions --json` and editors -------------------------------

# A value that is (or holds) a template is checked at load time, not by the schema.
_TEMPLATE = {"type": "string", "pattern": r"\$\{", "description": "a template: ${vars.NAME}, ${steps.ID.outputs.KEY}, ${env:NAME}"}


def playbook_schema() -> dict[str, Any]:
    """One JSON Schema (2020-12) of a playbook, generated from the action registry: each
    step is one of the actions, with that action's closed parameter schema under ``with``."""
    defs: dict[str, Any] = {}
    variants = []
    step_properties = Step.model_json_schema(by_alias=True)["properties"]
    step_properties["id"]["pattern"] = STEP_ID.pattern
    step_properties["when"] = {"type": ["string", "boolean"], "description": "run the step only when this is true"}
    for name, action in ACTIONS:
        params = action.Params.model_json_schema(ref_template=f"#/$defs/{name}.{{model}}")
        for def_name, definition in params.pop("$defs", {}).items():
            defs[f"{name}.{def_name}"] = _templates_allowed(definition)
        step_def = f"step.{name}"
        defs[step_def] = {
            "type": "object",
            "title": f"step: {name}",
            "description": action.summary,
            "properties": {**step_properties, "action": {"const": name}, "with": _templates_allowed(params)},
            "required": ["id", "action", *(["with"] if params.get("required") else [])],
            "additionalProperties": False,
        }
        variants.append({"$ref": f"#/$defs/{step_def}"})
    header = _Header.model_json_schema()["properties"]
    header["vars"]["propertyNames"] = {"pattern": VAR_NAME.pattern}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "failover playbook",
        "type": "object",
        "properties": {**header, "steps": {"type": "array", "minItems": 1, "items": {"oneOf": variants}}},
        "required": ["name", "steps"],
        "additionalProperties": False,
        "$defs": defs,
    }


def _templates_allowed(schema: dict[str, Any]) -> dict[str, Any]:
    """Each property of an object schema may also be a template string."""
    if "properties" not in schema:
        return schema
    properties = {key: {"anyOf": [value, _TEMPLATE]} for key, value in schema["properties"].items()}
    return {**schema, "properties": properties}
