from __future__ import annotations

import json
import stat
from pathlib import Path

from failover import demo


def test_inventory_snapshots_and_diff(clients, write_config, failover, tmp_path: Path) -> None:
    seeded = demo.seed_sample_service(clients)
    config = write_config()

    first = failover("inventory", "--config", str(config), "--json", "--output", "first.json")
    assert first.code == 0, first.stderr
    doc = json.loads(first.stdout)
    counts = doc["snapshot"]["counts"]
    assert counts["node"] == 4  # web-1, web-2, worker-1 in us-east-1 and reports-1 in eu-west-1; not staging
    assert counts["bucket"] == 1 and counts["dns_zone"] == 1 and counts["database"] == 1
    assert counts["unsupported"] == 2  # the queue and the table
    manifest = json.loads((tmp_path / "first.json").read_text())
    assert {r["id"] for r in manifest["resources"] if r["kind"] == "node"} >= set(seeded["nodes"].values())
    assert stat.S_IMODE((tmp_path / ".failover").stat().st_mode) == 0o700

    second = failover("inventory", "-c", str(config), "--output", "second.json")
    assert second.code == 0, second.stderr
    assert second.stdout == ""  # people read stderr
    assert "Snapshot snap-" in second.stderr
    strip = lambda text: "\n".join(line for line in text.splitlines() if '"taken_at"' not in line)  # noqa: E731
    assert strip((tmp_path / "first.json").read_text()) == strip((tmp_path / "second.json").read_text())

    ec2 = clients("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    new = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "service", "Value": "social-app"}, {"Key": "Name", "Value": "web-3"}]}
    ])["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[seeded["nodes"]["worker-1"]])
    assert failover("inventory", "-c", str(config)).code == 0

    listed = failover("snapshots", "-c", str(config), "--json")
    assert listed.code == 0
    snaps = json.loads(listed.stdout)["snapshots"]
    assert len(snaps) == 3 and snaps[-1]["counts"]["node"] == 5

    changes = failover("diff", "previous", "latest", "-c", str(config), "--json")
    assert changes.code == 0, changes.stderr
    result = json.loads(changes.stdout)
    launched = ec2.describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"][0]
    root_volume = launched["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    # the node, and as dependencies its untagged root volume and the default VPC it was launched in
    assert sorted((r["kind"], r["id"]) for r in result["added"]) == [
        ("network", launched["VpcId"]), ("node", new), ("volume", root_volume)]
    assert result["removed"] == []
    worker = next(r for r in result["changed"] if r["id"] == seeded["nodes"]["worker-1"])
    assert {"field": "state", "before": "running", "after": "stopped"} in worker["changes"]

    human = failover("diff", snaps[0]["id"], "latest", "-c", str(config))
    assert human.code == 0
    assert f"+ node {new}" in human.stderr and "state: \"running\" -> \"stopped\"" in human.stderr


def test_unreachable_source_exits_4_and_keeps_earlier_snapshots(clients, write_config, failover, tmp_path: Path) -> None:
    demo.seed_sample_service(clients)
    config = write_config()
    assert failover("inventory", "-c", str(config)).code == 0

    gone = failover("inventory", "-c", str(config), env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert gone.code == 4
    assert "Traceback" not in gone.stderr
    assert gone.stderr.count("\n") == 1 and "cannot reach AWS" in gone.stderr

    listed = json.loads(failover("snapshots", "-c", str(config), "--json").stdout)
    assert len(listed["snapshots"]) == 1


def test_source_endpoint_in_config_overrides_the_environment(clients, write_config, failover) -> None:
    demo.seed_sample_service(clients)
    config = write_config(source={"provider": "aws", "regions": ["us-east-1"], "endpoint_url": "http://127.0.0.1:9",
                                  "select": {"tags": {"service": "social-app"}}})
    result = failover("inventory", "-c", str(config))
    assert result.code == 4 and "127.0.0.1:9" in result.stderr


def test_refused_credentials_exit_4(account, clients, write_config, failover) -> None:
    iam = clients("iam")
    iam.create_user(UserName="sre")
    key = iam.create_access_key(UserName="sre")["AccessKey"]
    iam.delete_access_key(UserName="sre", AccessKeyId=key["AccessKeyId"])
    account.enforce_auth(True)
    try:
        env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        result = failover("inventory", "-c", str(write_config()), env=env)
        assert result.code == 4, result.stderr
        assert "refused the credentials" in result.stderr and "Traceback" not in result.stderr
        assert key["SecretAccessKey"] not in result.stderr
    finally:
        account.enforce_auth(False)


def test_bad_config_exits_2_and_changes_nothing(write_config, failover, tmp_path: Path) -> None:
    config = write_config(source={"provider": "aws", "regions": ["us-east-1"], "select": {"tagz": {"a": "b"}}})
    result = failover("inventory", "-c", str(config))
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert f"{config}:" in result.stderr and "source.select.tagz: unknown key" in result.stderr
    assert not (tmp_path / ".failover").exists()

    debug = failover("inventory", "-c", str(config), "--debug")
    assert debug.code == 2 and "Traceback" in debug.stderr


def test_bad_arguments_exit_2(failover, write_config) -> None:
    config = write_config()
    assert failover("inventory", "-c", str(config), "--format", "xml").code == 2
    unknown = failover("inventory", "--no-such-flag")
    assert unknown.code == 2 and "Traceback" not in unknown.stderr
    missing = failover("snapshots", "-c", "does-not-exist.yaml")
    assert missing.code == 2 and "does-not-exist.yaml: config file not found" in missing.stderr


def test_unknown_snapshot_exits_2(clients, write_config, failover) -> None:
    config = write_config()
    result = failover("diff", "snap-nope", "latest", "-c", str(config))
    assert result.code == 2 and "snap-nope" in result.stderr
