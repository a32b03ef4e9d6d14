"""load_playbook: the good path, built-ins, overrides, and the problems only an API test reaches."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from failover.config import load_config
from failover.errors import InputError, NotFound, PlaybookError
from failover.playbook import MAX_BYTES, Playbook, builtin_playbooks, find_cycles, load_playbook, parse_var_args

GOOD = Path(__file__).parent / "good"


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_TEST_HOOK_TOKEN", "hook-secret")
    monkeypatch.setenv("FAILOVER_TEST_HOOK_URL", "https://hooks.example.com/abc")
    monkeypatch.setenv("FAILOVER_TEST_DO_TOKEN", "do-secret")


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def problems(ref: str, **kwargs) -> list[str]:
    with pytest.raises(InputError) as info:
        load_playbook(ref, **kwargs)
    return info.value.lines()


def test_good_playbook_keeps_templates_unresolved() -> None:
    book = load_playbook(str(GOOD / "web.yaml"))
    assert isinstance(book, Playbook)
    assert book.name == "web-notify"
    assert book.source == str(GOOD / "web.yaml")
    assert [s.id for s in book.steps] == ["announce", "settle", "report", "skipped"]
    assert book.step("settle").with_ == {"seconds": "${vars.delay}"}
    assert book.step("announce").with_["headers"] == {"Authorization": "Bearer ${env:FAILOVER_TEST_HOOK_TOKEN}"}
    report = book.step("report")
    assert (report.needs, report.timeout, report.retries) == (["settle"], 30, 5)
    assert book.step("skipped").when == "false"  # a YAML bool is kept as text
    assert "hook-secret" not in book.model_dump_json()


def test_var_overrides_set_and_override() -> None:
    book = load_playbook(str(GOOD / "web.yaml"), vars_override={"delay": "2", "extra": "x"})
    assert book.vars == {"delay": "2", "channel": "ops", "enabled": True, "extra": "x"}


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    ref = write(
        tmp_path,
        """
        name: many
        bogus: 1
        steps:
          - {id: a, action: pause, with: {seconds: x}, needs: [b]}
          - {id: b, action: pause, with: {seconds: 1}, needs: [a]}
          - {id: c, action: nope, when: "${vars.missing}"}
          - {id: d, action: notify, with: {url: "https://h/${env:FAILOVER_TEST_NOT_SET}", extra: 1}}
        """,
    )
    lines = problems(ref)
    assert lines == [
        f"{ref}:2: bogus: unknown key",
        f"{ref}:4: steps[0].needs: cycle in needs: a -> b -> a",
        f"{ref}:4: steps[0].with.seconds: Input should be a valid number, unable to parse string as a number",
        f"{ref}:6: steps[2].action: unknown action 'nope' (see `failover actions`)",
        f"{ref}:6: steps[2].when: ${{vars.missing}}: no var 'missing' in vars or --var",
        f"{ref}:7: steps[3].with.extra: unknown parameter",
        f"{ref}:7: steps[3].with.url: ${{env:FAILOVER_TEST_NOT_SET}}: environment variable FAILOVER_TEST_NOT_SET is not set",
    ]


def test_output_references_skip_type_checks_but_vars_do_not(tmp_path: Path) -> None:
    ref = write(
        tmp_path,
        """
        name: types
        vars: {wait: "5", word: soon}
        steps:
          - {id: a, action: pause, with: {seconds: "${vars.wait}"}}
          - {id: b, action: pause, needs: [a], with: {seconds: "${steps.a.outputs.waited_s}"}}
          - {id: c, action: pause, needs: [b], with: {seconds: "${vars.word}"}}
        """,
    )
    expected = "Input should be a valid number, unable to parse string as a number (${vars.word} gives 'soon')"
    assert problems(ref) == [f"{ref}:6: steps[2].with.seconds: {expected}"]


def test_outputs_of_transitive_needs_are_allowed(tmp_path: Path) -> None:
    ref = write(
        tmp_path,
        """
        name: transitive
        steps:
          - {id: a, action: pause, with: {seconds: 0}}
          - {id: b, action: pause, needs: [a], with: {seconds: 0}}
          - {id: c, action: notify, needs: [b], with: {url: "http://x/${steps.a.outputs.waited_s}"}}
          - {id: d, action: notify, needs: [b], with: {url: "http://x/${steps.c.outputs.status}"}}
        """,
    )
    assert problems(ref) == [
        f"{ref}:6: steps[3].with.url: ${{steps.c.outputs.status}}: step 'c' is not among the needs of step 'd' (add it to needs)"
    ]


def test_with_left_empty_means_no_parameters(tmp_path: Path) -> None:
    ref = write(
        tmp_path,
        """
        name: empty with
        steps:
          - id: a
            action: pause
            with:
        """,
    )
    assert problems(ref) == [f"{ref}:5: steps[0].with.seconds: required parameter is missing"]


def test_when_known_from_vars_is_checked_now(tmp_path: Path) -> None:
    ref = write(
        tmp_path,
        """
        name: when
        vars: {go: "yes", mode: drill}
        steps:
          - {id: a, action: pause, with: {seconds: 0}, when: "${vars.go}"}
          - {id: b, action: pause, with: {seconds: 0}, when: "${vars.mode} == real"}
        """,
    )
    assert len(load_playbook(ref).steps) == 2
    assert problems(ref, vars_override={"go": "perhaps"}) == [
        f"{ref}:4: steps[0].when: 'perhaps' is neither true nor false (from '${{vars.go}}')"
    ]


def test_bad_var_override_name(tmp_path: Path) -> None:
    assert problems(str(GOOD / "web.yaml"), vars_override={"no good": "1"}) == [
        "arguments: --var: 'no good' is not a var name"
    ]


def test_parse_var_args() -> None:
    assert parse_var_args(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(InputError) as info:
        parse_var_args(["a", "=1", "1a=2"])
    assert len(info.value.problems) == 3


def test_target_profile_and_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(GOOD / "failover.yaml")
    book = load_playbook(str(GOOD / "web.yaml"), config=config, target="fallback")
    assert book.name == "web-notify"
    assert problems(str(GOOD / "web.yaml"), config=config, target="elsewhere") == [
        f"{GOOD / 'failover.yaml'}: targets.elsewhere: no such target profile (known: fallback)"
    ]
    monkeypatch.delenv("FAILOVER_TEST_DO_TOKEN")
    assert problems(str(GOOD / "web.yaml"), config=config, target="fallback") == [
        f"{GOOD / 'failover.yaml'}: targets.fallback.compute.options.key: environment variable FAILOVER_TEST_DO_TOKEN is not set"
    ]


def test_secret_values_never_appear_in_problems(tmp_path: Path) -> None:
    ref = write(
        tmp_path,
        """
        name: secrets
        steps:
          - {id: a, action: notify, with: {url: "${env:FAILOVER_TEST_HOOK_TOKEN}"}}
          - {id: b, action: notify, with: {url: "https://h/x", headers: {"X-Key": "${env:FAILOVER_TEST_HOOK_TOKEN}"}, timeout: -1}}
        """,
    )
    # a whole ${env:} value is known only at call time: not type-checked now
    lines = problems(ref)
    assert lines == [f"{ref}:4: steps[1].with.timeout: Input should be greater than 0"]
    assert "hook-secret" not in "\n".join(lines)


def test_builtins_are_listed_and_valid() -> None:
    listed = dict(builtin_playbooks())
    assert listed.get("smoke")
    for name in listed:
        book = load_playbook(name)
        assert book.source == f"builtin:{name}"


def test_unknown_builtin_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as info:
        load_playbook("no-such-builtin")
    assert "no such playbook file, nor a built-in playbook (built-in: " in str(info.value)
    assert problems(str(tmp_path / "missing.yaml")) == [f"{tmp_path / 'missing.yaml'}: playbook not found"]


def test_a_file_wins_over_a_builtin_of_the_same_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "name: mine\nsteps: [{id: a, action: pause, with: {seconds: 0}}]\n", name="smoke")
    monkeypatch.chdir(tmp_path)
    assert load_playbook("smoke").name == "mine"


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as out:
        out.write("name: huge\nsteps:\n")
        line = "  - {id: a, action: pause, with: {seconds: 1}}\n"
        out.write(line * (MAX_BYTES // len(line) + 1))
    # Refused on its size alone (measured by hand: ~0.1 ms for 18 MB), never parsed.
    assert problems(str(path)) == [f"{path}: larger than {MAX_BYTES // 1024} KiB; refused"]


def test_alias_bomb_is_refused_at_the_first_alias(tmp_path: Path) -> None:
    bomb = "name: lol\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    ref = write(tmp_path, bomb + "steps: *j\n")
    # Refused while composing, before any alias is expanded (measured by hand: < 1 ms).
    assert problems(ref) == [f"{ref}:3: YAML aliases are not allowed"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert problems(str(path)) == [f"{path}: not UTF-8 text"]


def test_empty_file(tmp_path: Path) -> None:
    ref = write(tmp_path, "# nothing\n")
    assert problems(ref) == [f"{ref}: expected a mapping with name, description, vars and steps"]


def test_playbook_error_type(tmp_path: Path) -> None:
    ref = write(tmp_path, "name: x\nsteps: [{id: a, action: pause}]\n")
    with pytest.raises(PlaybookError):
        load_playbook(ref)


def test_find_cycles_names_each_cycle_once() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["d"], "e": ["a"], "f": []}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]
    assert find_cycles({f"s{i}": [f"s{i - 1}"] if i else [] for i in range(5000)}) == []  # no recursion limit


def test_one_mistake_one_problem(tmp_path: Path) -> None:
    ref = write(
        tmp_path,
        """
        name: no noise
        vars: [not, a, mapping]
        steps:
          - {id: a, action: pause, with: 5}
          - {id: b, action: pause, needs: [a], with: {seconds: 1, later: "${steps.a.outputs.waited_s}"}}
        """,
    )
    assert problems(ref) == [
        f"{ref}:2: vars: Input should be a valid dictionary",
        f"{ref}:4: steps[0].with: Input should be a valid dictionary",
        # a value known only at run time is not type-checked, but an unknown parameter is unknown
        f"{ref}:5: steps[1].with.later: unknown parameter",
    ]
