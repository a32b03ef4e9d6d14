"""The layers of the architecture page hold: the core imports no provider SDK and no adapter
(only ``failover.adapters`` names adapters, as strings), and every source provider it names
implements the whole ``SourceProvider`` port."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from failover import ports
from failover.adapters import SOURCE_PROVIDERS, TARGET_CAPABILITIES, load_object, source_provider
from failover.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("boto3", "botocore", "libcloud", "providers")
# The test worlds and the demo's seeding of its mock AWS account use boto3 on purpose.
EXEMPT = {"failover/demo.py"}


def core_modules() -> list[Path]:
    return [path for path in sorted((ROOT / "failover").rglob("*.py"))
            if "testing" not in path.relative_to(ROOT).parts and str(path.relative_to(ROOT)) not in EXEMPT]


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_provider_sdk_nor_adapter(path: Path) -> None:
    bad = sorted(name for name in imported(path) if name.split(".")[0] in FORBIDDEN)
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_core_reaches_no_driver_through_an_adapter() -> None:
    offenders = [str(path.relative_to(ROOT)) for path in core_modules()
                 if ".session.driver" in path.read_text(encoding="utf-8")]
    assert offenders == []


def test_the_demo_imports_boto3_only_to_seed_its_mock_account() -> None:
    text = (ROOT / "failover/demo.py").read_text(encoding="utf-8")
    assert "libcloud" not in {name.split(".")[0] for name in imported(ROOT / "failover/demo.py")}
    assert "import boto3" in text


def members(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")}


@pytest.mark.parametrize("name", sorted(SOURCE_PROVIDERS))
def test_every_source_provider_implements_the_whole_port(name: str) -> None:
    provider = source_provider(name)
    missing = sorted(member for member in members(ports.SourceProvider) if not callable(getattr(provider, member, None)))
    assert not missing


@pytest.mark.parametrize("capability", sorted(TARGET_CAPABILITIES))
def test_every_target_capability_resolves_to_a_factory(capability: str) -> None:
    assert callable(load_object(TARGET_CAPABILITIES[capability]))


def test_an_unknown_source_provider_is_bad_input_naming_the_field() -> None:
    with pytest.raises(InputError) as caught:
        source_provider("nosuch")
    assert "source.provider" in str(caught.value) and "aws" in str(caught.value)
