"""``failover escrow seal|list|open`` (failover/escrow.py) run as the real CLI against moto's SSM and
Secrets Manager (a ``moto_server`` process) and Azurite: the values go to the target only encrypted,
never into the JSON, the logs or a file, and come back whole with the team's identity."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyrage
import pytest
import yaml
from clikit import FAILOVER, Result
from libcloud.storage.providers import Provider, get_driver

from failover.testing.emulators import AZURITE_ACCOUNT, AZURITE_KEY, Azurite
from failover.testing.servers import MotoServer, free_port

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
PARAMETERS = {  # name -> (type, value)
    "/social-app/db/password": ("SecureString", "pw-PARAM-SECRET-1 \x1b[2J\x9b1m\u202e"),
    "/social-app/api/url": ("String", "https://api.example.net/PARAM-VALUE-2"),
    "/social-app/db/hosts": ("StringList", "db1,db2-PARAM-VALUE-3"),
}
SECRETS = {"social-app/stripe": "sk_live_SECRET-VALUE-4", "social-app/jwt": '{"key": "SECRET-VALUE-5"}'}
BINARY_SECRET = ("social-app/cert", b"\x00\xffBINARY-SECRET-6")
OTHERS = {"/other-app/token": "OTHER-PARAM-7"}, {"other-app/key": "OTHER-SECRET-8"}
VALUES = [value for _, value in PARAMETERS.values()] + list(SECRETS.values()) + ["BINARY-SECRET-6"]


@pytest.fixture(scope="module")
def source(moto_server: MotoServer) -> MotoServer:
    ssm = boto3.client("ssm", endpoint_url=moto_server.url, region_name="us-east-1", **_keys())
    for name, (kind, value) in PARAMETERS.items():
        ssm.put_parameter(Name=name, Type=kind, Value=value)
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server.url, region_name="us-east-1", **_keys())
    for name, value in SECRETS.items():
        secrets.create_secret(Name=name, SecretString=value)
    secrets.create_secret(Name=BINARY_SECRET[0], SecretBinary=BINARY_SECRET[1])
    for name, value in OTHERS[0].items():
        ssm.put_parameter(Name=name, Type="SecureString", Value=value)
    for name, value in OTHERS[1].items():
        secrets.create_secret(Name=name, SecretString=value)
    return moto_server


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def identity() -> pyrage.x25519.Identity:
    return pyrage.x25519.Identity.generate()


@pytest.fixture
def world(tmp_path: Path, source: MotoServer, azurite: Azurite, identity, request) -> Iterator[dict]:
    """A config whose escrow goes to a container of the test's own; the identity file beside it."""
    container = "escrow-" + request.node.name.replace("_", "-")[5:40].strip("-").lower()
    (tmp_path / "team.key").write_text(f"# the team's key\n{identity}\n")
    (tmp_path / "tmp").mkdir()
    yield {"dir": tmp_path, "container": container, "source": source, "azurite": azurite,
           "recipient": str(identity.to_public())}


def write_config(world: dict, **escrow: object) -> Path:
    options = {**world["azurite"].driver_options, "secret": "${env:ESCROW_AZ_KEY}"}
    settings = {"recipients": [world["recipient"]], "ssm_paths": ["/social-app/"], "secrets": ["social-app/*"],
                "target": "fallback", "container": world["container"], **escrow}
    data = {
        "service": "social-app",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}},
                   "endpoint_url": world["source"].url},
        "targets": {"fallback": {"storage": {"driver": "azure_blobs", "options": options}}},
        "evacuation": {"escrow": settings},
    }
    path = world["dir"] / "failover.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def failover(world: dict, *args: str) -> Result:
    env = {**os.environ, **AWS_ENV, "ESCROW_AZ_KEY": AZURITE_KEY, "TMPDIR": str(world["dir"] / "tmp")}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "FAILOVER_CONFIG"):
        env.pop(name, None)
    proc = subprocess.run([*FAILOVER, *args], cwd=world["dir"], capture_output=True, text=True, timeout=120, env=env)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def stored_objects(world: dict) -> dict[str, bytes]:
    driver = get_driver(Provider.AZURE_BLOBS)(key=AZURITE_ACCOUNT, secret=AZURITE_KEY, host="127.0.0.1",
                                              port=world["azurite"].port, secure=False)
    container = driver.get_container(world["container"])
    return {blob.name: b"".join(driver.download_object_as_stream(blob))
            for blob in driver.list_container_objects(container)}


def files_under(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def assert_no_value_in(what: str, data: bytes | str) -> None:
    data = data.encode() if isinstance(data, str) else data
    for value in [*VALUES, "pw-PARAM-SECRET-1"]:
        assert value.encode() not in data, f"{value!r} is in {what}"
    assert BINARY_SECRET[1] not in data


def test_seal_stores_only_ciphertext_and_open_gives_every_value_back(world: dict, identity) -> None:
    config = write_config(world)
    sealed = failover(world, "escrow", "seal", "-c", str(config), "--json", "--debug")
    assert sealed.code == 0, sealed.stderr
    summary = json.loads(sealed.stdout)
    assert summary["ok"] is True and summary["recipients"] == 1 and summary["missing"] == []
    assert sorted(item["name"] for item in summary["parameters"]) == sorted(PARAMETERS)
    assert sorted(item["name"] for item in summary["secrets"]) == sorted([*SECRETS, BINARY_SECRET[0]])
    # never a value: not in the JSON, the logs, nor any file under the project (config, state, TMPDIR)
    assert_no_value_in("stdout", sealed.stdout)
    assert_no_value_in("stderr", sealed.stderr)
    for path, content in files_under(world["dir"]).items():
        assert_no_value_in(str(path), content)
    stored = stored_objects(world)
    assert list(stored) == [summary["object"]] and summary["object"].startswith("social-app-escrow-")
    assert stored[summary["object"]].startswith(b"age-encryption.org/v1\n")
    assert_no_value_in("the stored object", stored[summary["object"]])

    listing = failover(world, "escrow", "list", "-c", str(config), "--json")
    assert listing.code == 0, listing.stderr
    assert json.loads(listing.stdout)["escrows"] == [{"object": summary["object"], "bytes": summary["bytes"]}]

    opened = failover(world, "escrow", "open", "latest", "--identity", "team.key", "-c", str(config))
    assert opened.code == 0, opened.stderr
    document = json.loads(opened.stdout)
    assert document["format"] == "failover-escrow/1" and document["service"] == "social-app"
    assert {item["name"]: (item["type"], item["value"]) for item in document["parameters"]} == PARAMETERS
    secrets = {item["name"]: item for item in document["secrets"]}
    assert {name: secrets[name]["value"] for name in SECRETS} == SECRETS
    import base64

    assert base64.b64decode(secrets[BINARY_SECRET[0]]["binary_base64"]) == BINARY_SECRET[1]
    assert "OTHER" not in opened.stdout  # another service's parameters and secrets stay out
    assert not {"\x1b", "\x9b", "\u202e"} & set(opened.stdout + opened.stderr)  # escaped in the JSON, never raw

    out = world["dir"] / "opened"
    to_dir = failover(world, "escrow", "open", summary["object"], "-i", "team.key", "-o", str(out), "-c", str(config),
                      "--json")
    assert to_dir.code == 0, to_dir.stderr
    written = Path(json.loads(to_dir.stdout)["file"])
    assert written.parent == out and json.loads(written.read_text()) == document
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and stat.S_IMODE(written.stat().st_mode) & 0o077 == 0
    assert_no_value_in("stdout with --output", to_dir.stdout + to_dir.stderr)


def test_another_identity_cannot_open_it_exit_2_naming_the_file(world: dict) -> None:
    config = write_config(world)
    assert failover(world, "escrow", "seal", "-c", str(config)).code == 0
    (world["dir"] / "other.key").write_text(f"{pyrage.x25519.Identity.generate()}\n")
    opened = failover(world, "escrow", "open", "--identity", "other.key", "-c", str(config))
    assert opened.code == 2 and "other.key" in opened.stderr and "no identity in it can open" in opened.stderr
    assert opened.stdout == "" and "Traceback" not in opened.stderr
    (world["dir"] / "junk.key").write_text("not a key\n")
    junk = failover(world, "escrow", "open", "--identity", "junk.key", "-c", str(config))
    assert junk.code == 2 and "junk.key" in junk.stderr


def test_a_named_secret_missing_on_the_source_is_reported_and_exit_1_the_rest_sealed(world: dict, identity) -> None:
    config = write_config(world, secrets=["social-app/stripe", "social-app/gone"], ssm_paths=["/social-app/api/url"])
    sealed = failover(world, "escrow", "seal", "-c", str(config), "--json")
    assert sealed.code == 1, sealed.stderr
    summary = json.loads(sealed.stdout)
    assert summary["missing"] == ["social-app/gone"] and "social-app/gone" in sealed.stderr
    assert [item["name"] for item in summary["parameters"]] == ["/social-app/api/url"]
    [blob] = stored_objects(world).values()
    document = json.loads(pyrage.decrypt(blob, [identity]))
    assert [item["name"] for item in document["secrets"]] == ["social-app/stripe"]


def test_config_errors_exit_2_with_file_line_and_field_nothing_stored(world: dict) -> None:
    config = write_config(world, recipients=["age1notakey"])
    bad = failover(world, "escrow", "seal", "-c", str(config))
    assert bad.code == 2
    assert "failover.yaml:" in bad.stderr and "evacuation.escrow.recipients" in bad.stderr
    config = write_config(world, target="nowhere")
    assert failover(world, "escrow", "seal", "-c", str(config)).code == 2
    data = yaml.safe_load(config.read_text())
    del data["evacuation"]
    config.write_text(yaml.safe_dump(data))
    none = failover(world, "escrow", "seal", "-c", str(config))
    assert none.code == 2 and "evacuation.escrow: no escrow is configured" in none.stderr


def test_an_unreachable_source_exits_4_and_stores_nothing(world: dict) -> None:
    config = write_config(world)
    config.write_text(config.read_text().replace(world["source"].url, f"http://127.0.0.1:{free_port()}"))
    gone = failover(world, "escrow", "seal", "-c", str(config))
    assert gone.code == 4, gone.stderr
    driver = get_driver(Provider.AZURE_BLOBS)(key=AZURITE_ACCOUNT, secret=AZURITE_KEY, host="127.0.0.1",
                                              port=world["azurite"].port, secure=False)
    assert world["container"] not in [container.name for container in driver.list_containers()]
