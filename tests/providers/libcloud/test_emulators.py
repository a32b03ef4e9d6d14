"""The emulator launchers: ready when they return, gone when stopped, and a clear error
naming the install script when a binary is missing."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from failover.testing.emulators import AZURITE_ACCOUNT, Azurite, EmulatorMissing, PowerDns, find_binary


def test_a_missing_binary_names_the_install_script() -> None:
    with pytest.raises(EmulatorMissing, match="no-such-emulator is not installed; run scripts/install-test-deps"):
        find_binary("no-such-emulator")
    with pytest.raises(EmulatorMissing, match="/nowhere/azurite-blob does not exist; run scripts/install-test-deps"):
        Azurite(binary=Path("/nowhere/azurite-blob")).start()


def test_powerdns_answers_its_api_when_started_and_is_gone_when_stopped() -> None:
    with PowerDns(api_key="k1") as pdns:
        request = urllib.request.Request(f"http://127.0.0.1:{pdns.api_port}/api/v1/servers", headers={"X-API-Key": "k1"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
        workdir, process = pdns.workdir, pdns.process

    assert process.poll() is not None and not workdir.exists()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{pdns.api_port}/api/v1/servers", timeout=2)


def test_azurite_answers_for_the_development_account(azurite: Azurite) -> None:
    with pytest.raises(urllib.error.HTTPError) as answer:  # unsigned: refused, but answered
        urllib.request.urlopen(f"http://127.0.0.1:{azurite.port}/{AZURITE_ACCOUNT}?comp=list", timeout=5)
    assert answer.value.code in (400, 401, 403)
    assert azurite.driver_options["port"] == azurite.port and azurite.driver_options["secure"] is False
