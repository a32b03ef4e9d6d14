"""Shared fixtures, each defined once for the whole suite:

- the project's own pytest plugin (``moto_account``, ``failover_world``, ``failover_cli``), as its users get it;
- moto's AMI catalogue cut to the images the suite uses (``failover.testing.moto_amis``, ``MOTO_AMIS_PATH``);
- retries that sleep a hundredth of their wait (``FAILOVER_TEST_RETRY_SLEEP_SCALE``), in-process and in children;
- fake AWS credentials (``aws_env``) and a mock AWS account in-process (``aws``, ``take_inventory``,
  ``sample_manifest``);
- one fixture per emulator, a process of the test module's own: ``moto_server``, ``azurite``, ``powerdns``,
  ``postgres``; and ``target``, the ``moto_server`` as a target account reset before each test.

An emulator that is not installed fails the test with the command that installs it; nothing is skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import boto3
import pytest

from failover.manifest import Manifest
from failover.retry import SLEEP_SCALE_VARIABLE
from failover.testing.emulators import Azurite, EmulatorMissing, PowerDns
from failover.testing.moto_amis import use_small_catalogue
from failover.testing.postgres import LocalPostgres, PostgresMissing
from failover.testing.servers import MotoServer

# The checkout's plugin, as its users get it; `-p no:failover` in the pytest config keeps the
# installed package's `pytest11` entry point from registering the same module a second time.
pytest_plugins = ["failover.testing.plugin"]

logging.getLogger("werkzeug").setLevel(logging.ERROR)

# Retries sleep a hundredth of their wait, here and in every CLI process a test starts (they inherit the
# environment); the waits reported and journaled are unchanged, so tests still see the backoff chosen.
os.environ.setdefault(SLEEP_SCALE_VARIABLE, "0.01")
# Before anything imports moto (nothing above does): its EC2 backends, in-process and in every moto_server the
# suite starts (they inherit the environment), hold 84 AMIs instead of ~1,180, so an unfiltered DescribeImages
# (libcloud's list_images: the target's image catalogue) is not seconds of moto's CPU.
use_small_catalogue()

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def use_fake_aws_credentials(patch: pytest.MonkeyPatch) -> None:
    """Fake credentials so nothing can ever reach a real account."""
    for key, value in FAKE_AWS_ENV.items():
        patch.setenv(key, value)
    for key in UNSET_AWS_ENV:
        patch.delenv(key, raising=False)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so nothing can ever reach a real account."""
    use_fake_aws_credentials(monkeypatch)


@pytest.fixture
def aws(aws_env: None) -> Iterator[Callable[[str, str], object]]:
    """A mock AWS account (moto in-process); yields ``client(service, region)``."""
    from moto import mock_aws

    with mock_aws():
        session = boto3.session.Session()
        clients: dict[tuple[str, str], object] = {}

        def client(service: str, region: str = "us-east-1") -> object:
            if (service, region) not in clients:
                clients[(service, region)] = session.client(service, region_name=region)
            return clients[(service, region)]

        yield client


@pytest.fixture
def take_inventory(aws: Callable[[str, str], object]):
    """Run the real AWS inventory against the mock account: ``take_inventory(tags, regions)``."""
    from providers.aws.inventory import AwsInventory
    from providers.aws.session import AwsSession

    def run(tags: dict[str, str] | None = None, regions: list[str] | None = None):
        inventory = AwsInventory(
            service="svc",
            regions=regions or ["us-east-1"],
            selector=tags or {"service": "svc"},
            session=AwsSession(max_backoff=0.05),
        )
        return inventory.inventory()

    return run


@pytest.fixture(scope="session")
def sample_manifest() -> Manifest:
    """The demo's sample service (failover/demo.py) on a mock AWS account, inventoried."""
    from moto import mock_aws

    from failover.demo import REGIONS, TAGS, seed_sample_service
    from providers.aws.inventory import AwsInventory
    from providers.aws.session import AwsSession

    with pytest.MonkeyPatch.context() as patch:
        use_fake_aws_credentials(patch)
        with mock_aws():
            session = boto3.session.Session()
            seed_sample_service(lambda service, region="us-east-1": session.client(service, region_name=region))
            inventory = AwsInventory(service="social-app", regions=REGIONS, selector=TAGS,
                                     session=AwsSession(max_backoff=0.05))
            return inventory.inventory()


# -- the emulators: one process of each per test module that asks for it -----------------------

Emulator = TypeVar("Emulator", MotoServer, Azurite, PowerDns, LocalPostgres)


def started(emulator: Callable[[], Emulator]) -> Emulator:
    """``emulator()``, started; one that is not installed fails the test (never skips it)."""
    try:
        return emulator().start()
    except (EmulatorMissing, PostgresMissing) as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    """A ``moto_server`` process: an AWS account of the module's own, never reset by this fixture
    (``moto_account``, the plugin's, is the one behind ``AWS_ENDPOINT_URL``, reset per test)."""
    server = started(MotoServer)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    """Azurite's blob service, in memory; the module's tests keep their container names apart."""
    emulator = started(Azurite)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def powerdns() -> Iterator[PowerDns]:
    """A ``pdns_server`` with its HTTP API; the module's tests keep their zone names apart."""
    emulator = started(PowerDns)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL cluster (its password has a quote in it: see failover.testing.postgres)."""
    server = started(LocalPostgres)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def target_moto(moto_server: MotoServer) -> Iterator[MotoServer]:
    """The module's ``moto_server`` as the target provider's account (EC2 through libcloud's driver).
    The adapters, and their catalogues of sizes and images, live as long as it."""
    from providers.libcloud.drivers import forget_adapters

    yield moto_server
    forget_adapters()


@pytest.fixture
def target(target_moto: MotoServer) -> MotoServer:
    """The target account, empty for each test."""
    target_moto.reset()
    return target_moto
