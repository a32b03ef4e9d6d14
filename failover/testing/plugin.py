"""failover's pytest plugin: fixtures for teams testing their own playbooks offline, on moto
and local emulators. Installed with the package (entry point ``pytest11``: ``failover``).

- ``moto_account``: an empty mock AWS account (one ``moto_server`` process per session,
  reset before each test), also behind ``AWS_ENDPOINT_URL`` for boto3 and the CLI;
- ``failover_world``: an :class:`~failover.testing.world.EmulatedWorld`: the sample
  service on a source account, a target (compute, storage, DNS), a ``failover.yaml``;
  options through the marker ``@pytest.mark.failover_world(storage=..., fail_ratio=..., postgres=True)``;
- ``failover_cli``: runs the real ``failover`` executable against that world.

Example::

    def test_my_playbook_moves_the_web_tier(failover_world, failover_cli):
        assert failover_cli("inventory").code == 0
        ran = failover_cli("run", "playbooks/web.yaml", "--target", failover_world.target,
                           "--yes", "--json", *failover_world.run_vars)
        assert ran.code == 0, ran.stderr
        assert ran.json()["status"] == "succeeded"
        assert "social-app-web-1" in failover_world.target_nodes()

    @pytest.mark.failover_world(storage="local")
    def test_on_local_disk(failover_world): ...

Each test gets a world of its own (about ten seconds to start); to share one between
the tests of a module, enter an ``EmulatedWorld`` in a module-scoped fixture of your own.
An emulator that is not installed fails the test, naming ``scripts/install-test-deps``:
a test that cannot run is not a test that passed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from failover.testing.servers import MotoServer
    from failover.testing.world import CliResult, EmulatedWorld

MARKER = "failover_world"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(storage='azurite', fail_ratio=0.0, latency_s=0.0, seed=0, postgres=False, dns='powerdns'): "
        "options of the failover_world fixture"
    )


@dataclass(frozen=True)
class MotoAccount:
    """A mock AWS account: its endpoint and boto3 clients for it."""

    server: MotoServer

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, service: str, region: str = "us-east-1") -> Any:
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def _install_hint() -> str:
    from failover.testing.emulators import INSTALL_HINT

    return INSTALL_HINT


@pytest.fixture(scope="session")
def _failover_moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    if importlib.util.find_spec("moto") is None:
        pytest.fail(f"moto is not installed; {_install_hint()}", pytrace=False)
    from failover.testing.servers import MotoServer

    with MotoServer(log=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def moto_account(_failover_moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoAccount:
    """An empty mock AWS account for this test, behind ``AWS_ENDPOINT_URL`` with test credentials."""
    _failover_moto_server.reset()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": _failover_moto_server.url}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return MotoAccount(_failover_moto_server)


@contextmanager
def started_world(**options: Any) -> Iterator[EmulatedWorld]:
    """An :class:`EmulatedWorld`, started; a missing emulator fails the test (never skips it)."""
    from failover.testing.emulators import EmulatorMissing
    from failover.testing.world import EmulatedWorld

    world = EmulatedWorld(**options)
    try:
        world.start()
    except EmulatorMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture
def failover_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedWorld]:
    """The sample service on a source account and an empty target, with a ready ``failover.yaml``."""
    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker is not None else {}
    with started_world(workdir=tmp_path_factory.mktemp("world"), **options) as world:
        yield world


@pytest.fixture
def failover_cli(failover_world: EmulatedWorld) -> Callable[..., CliResult]:
    """``failover_cli(*args, timeout=300, env=None)``: the real CLI run in the world's directory."""
    return failover_world.failover
