"""``failover init`` against a moto_server account holding two services and distractor tags:
the proposals, the file it writes, and that ``validate`` and ``inventory`` accept that file."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml
from clikit import FAILOVER

from failover.testing.servers import free_port
from failover.testing.world import UBUNTU_IMAGE

REGIONS = ("--region", "us-east-1", "--region", "eu-west-1", "--region", "us-west-2")
TARGET_SECRETS = {"DO_TOKEN": "t0ken", "AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": "a2V5",
                  "PDNS_API_KEY": "k", "PDNS_HOST": "127.0.0.1"}


def failover(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in {**os.environ, **(env or {})}.items() if value != ""}
    return subprocess.run([*FAILOVER, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in pairs.items()]


@pytest.fixture(scope="module")
def two_services(moto_server) -> dict[str, str]:
    """shop: a node in us-east-1, a bucket and a database in eu-west-1; blog: a node and a bucket in
    us-west-2. Distractors: env=prod on everything, a shop-staging node, Name tags, a tag holding
    a right-to-left override, untagged resources. Made once for the module (nothing here writes
    to the account); the environment that points at it."""
    moto_server.reset()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": moto_server.url, "AWS_PROFILE": "", "FAILOVER_CONFIG": ""}
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")

    def clients(service: str, region: str):
        return session.client(service, region_name=region, endpoint_url=moto_server.url)

    def node(region: str, **pairs: str) -> None:
        clients("ec2", region).run_instances(
            ImageId=UBUNTU_IMAGE, MinCount=1, MaxCount=1, InstanceType="t3.small",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags(**pairs)}])

    node("us-east-1", service="shop", env="prod", Name="shop-web-1", owner="evil\u202egpj.exe")
    node("us-east-1", service="shop-staging", env="prod", Name="shop-staging-web-1")
    node("us-west-2", service="blog", env="prod", Name="blog-web-1")
    node("us-west-2", env="prod")
    for region, bucket, pairs in (("eu-west-1", "shop-media", {"service": "shop", "env": "prod"}),
                                  ("us-west-2", "blog-assets", {"service": "blog", "env": "prod"}),
                                  ("us-west-2", "untagged-logs", {})):
        s3 = clients("s3", region)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        if pairs:
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags(**pairs)})
    clients("rds", "eu-west-1").create_db_instance(
        DBInstanceIdentifier="shop-db", Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="shop", MasterUserPassword="not-a-secret-1", Tags=tags(service="shop", env="prod"))
    return env


def test_proposes_the_service_tags_with_their_counts(two_services, tmp_path: Path) -> None:
    done = failover(tmp_path, "init", "--non-interactive", "--json", env=two_services)  # every region of the account

    assert done.returncode == 2, done.stderr  # a script must choose: nothing written
    assert "--select" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "failover.yaml").exists()
    found = json.loads(done.stdout)
    assert len(found["regions_scanned"]) > 3
    assert found["regions"] == ["eu-west-1", "us-east-1", "us-west-2"]
    proposals = [(c["tags"], c["resources"], c["regions"]) for c in found["candidates"]]
    assert proposals[:3] == [({"service": "shop"}, 3, ["eu-west-1", "us-east-1"]),
                             ({"service": "blog"}, 2, ["us-west-2"]),
                             ({"service": "shop-staging"}, 1, ["us-east-1"])]
    assert ({"env": "prod"}, 7, ["eu-west-1", "us-east-1", "us-west-2"]) in proposals  # more, but not a service key
    assert not any("Name" in c["tags"] for c in found["candidates"])
    assert found["candidates"][0]["kinds"] == {"ec2:instance": 1, "rds:db": 1, "s3:bucket": 1}
    assert [(r["tag"], r["reason"]) for r in found["refused"]] == [("owner", "the tag holds a control character")]
    assert "\u202e" not in done.stdout + done.stderr


def test_writes_a_config_that_validate_and_inventory_accept(two_services, tmp_path: Path) -> None:
    done = failover(tmp_path, "init", "--non-interactive", "--select", "service=shop", *REGIONS, "--json",
                    env=two_services)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == "failover.yaml"
    text = (tmp_path / "failover.yaml").read_text()
    assert text.startswith("# failover.yaml, written by `failover init`")
    config = yaml.safe_load(text)
    assert config["service"] == "shop"
    assert config["source"]["regions"] == ["eu-west-1", "us-east-1"]
    assert config["source"]["select"] == {"tags": {"service": "shop"}}
    assert config["databases"] == {"shop-db": {"dsn": "${env:SHOP_DB_DSN}", "keep": 7}}
    assert set(config["targets"]) == {"fallback"}
    assert "not-a-secret-1" not in text and "testing" not in text  # placeholders only, never a secret

    assert failover(tmp_path, "validate", "standard", env=two_services).returncode == 0
    unset = failover(tmp_path, "validate", "standard", "--target", "fallback", env=two_services)
    assert unset.returncode == 2 and "DO_TOKEN" in unset.stderr  # the skeleton's variables, named
    with_secrets = failover(tmp_path, "validate", "standard", "--target", "fallback",
                            env={**two_services, **TARGET_SECRETS})
    assert with_secrets.returncode == 0, with_secrets.stderr

    taken = failover(tmp_path, "inventory", "--json", env=two_services)
    assert taken.returncode == 0, taken.stderr
    counts = json.loads(taken.stdout)["snapshot"]["counts"]
    # the node's untagged root volume and VPC come along as dependencies (owned: false)
    assert counts == {"node": 1, "bucket": 1, "database": 1, "network": 1, "volume": 1}


def test_several_selectors_are_all_required(two_services, tmp_path: Path) -> None:
    done = failover(tmp_path, "init", "--select", "service=shop", "--select", "env=prod", *REGIONS,
                    "--service", "web-shop", "--target", "dr", env=two_services)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp_path / "failover.yaml").read_text())
    assert (config["service"], list(config["targets"])) == ("web-shop", ["dr"])
    assert config["source"]["select"]["tags"] == {"service": "shop", "env": "prod"}


def test_never_overwrites(two_services, tmp_path: Path) -> None:
    existing = tmp_path / "failover.yaml"
    existing.write_text("service: mine\n")
    done = failover(tmp_path, "init", "--non-interactive", "--select", "service=shop", *REGIONS, env=two_services)
    assert done.returncode == 2
    assert "failover.yaml: already exists" in done.stderr
    assert existing.read_text() == "service: mine\n"


@pytest.mark.parametrize("args, expected", [
    (["--select", "service=nothing-has-this"], "no tagged resource carries service=nothing-has-this"),
    (["--select", "service"], "expected KEY=VALUE"),
    (["--select", "service=shop", "--service", "Not A Name"], "--service"),
    (["--select", "service=shop", "--region", "mars-north-1x"], "not an AWS region: mars-north-1x"),
])
def test_bad_selectors_exit_2_writing_nothing(two_services, tmp_path: Path, args, expected) -> None:
    done = failover(tmp_path, "init", "--non-interactive", *args, *REGIONS, env=two_services)
    assert done.returncode == 2
    assert expected in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_source_exits_4_writing_nothing(tmp_path: Path) -> None:
    env = {"AWS_PROFILE": "", "FAILOVER_CONFIG": "", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
           "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    done = failover(tmp_path, "init", "--non-interactive", "--select", "service=shop", "--region", "us-east-1", env=env)
    assert done.returncode == 4, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_on_a_terminal_it_asks_which_tag(two_services, tmp_path: Path) -> None:
    """The proposals numbered, a question on the terminal; the answer picks the selector."""
    import pty

    primary, secondary = pty.openpty()
    environment = {key: value for key, value in {**os.environ, **two_services}.items() if value != ""}
    process = subprocess.Popen([*FAILOVER, "init", *REGIONS], cwd=tmp_path, env=environment, stdin=secondary,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(secondary)
    try:
        os.write(primary, b"2\n")  # the second proposal: service=blog
        stdout, stderr = process.communicate(timeout=300)
    finally:
        os.close(primary)
    assert process.returncode == 0, stderr
    assert "Which selector holds the service" in stderr
    config = yaml.safe_load((tmp_path / "failover.yaml").read_text())
    assert config["source"]["select"]["tags"] == {"service": "blog"}
    assert config["source"]["regions"] == ["us-west-2"] and "databases" not in config
