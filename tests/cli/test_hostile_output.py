"""A hostile source (issue 10) seen by people: names carrying rich markup or terminal
controls, inventoried from a moto_server account and printed by the real CLI."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

from clikit import FAILOVER

SOURCE = {"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}}
TARGETS = {"fallback": {}}  # no capability: the checks that need one say so, the table is printed all the same


def on_a_terminal(*args: str, cwd: Path, timeout: float = 120) -> tuple[int, str]:
    """Run the CLI with stdin, stdout and stderr on a pseudo-terminal; its exit code and all it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 220, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "220"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([*FAILOVER, *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


def test_a_table_name_with_rich_markup_is_printed_as_written(clients, write_config, failover) -> None:
    clients("dynamodb").create_table(
        TableName="tbl[/]x", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "service", "Value": "social-app"}],
    )
    config = write_config(source=SOURCE)

    result = failover("inventory", "-c", str(config))

    assert result.code == 0, result.stderr
    assert "MarkupError" not in result.stderr
    assert "tbl[/]x" in result.stderr and "unsupported" in result.stderr


def test_terminal_controls_in_record_names_are_shown_not_sent(clients, write_config, tmp_path: Path) -> None:
    route53 = clients("route53")
    zone = route53.create_hosted_zone(Name="social.example.", CallerReference="hostile")["HostedZone"]["Id"]
    route53.change_tags_for_resource(
        ResourceType="hostedzone", ResourceId=zone.split("/")[-1], AddTags=[{"Key": "service", "Value": "social-app"}],
    )
    # Route53 writes other bytes as octal escapes; \033 is ESC, and [2J clears the screen.
    record = {"Name": "\\033[2Jevil.social.example.", "Type": "A", "TTL": 86400,
              "ResourceRecords": [{"Value": "192.0.2.1"}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record}]},
    )
    config = write_config(source=SOURCE, targets=TARGETS)

    code, shown = on_a_terminal("inventory", "-c", str(config), cwd=tmp_path)
    assert code == 0, shown
    code, shown = on_a_terminal("check", "smoke", "--target", "fallback", "-c", str(config), cwd=tmp_path)

    assert code == 1, shown  # not ready: no capability, and that TTL
    assert "evil.social.example" in shown  # source-ttls names the record
    assert "\x1b[2j" not in shown.lower()  # record names are lowercased in the snapshot
    assert "\\x1b[2jevil.social.example" in shown


def test_plan_shows_terminal_controls_of_node_names(account, clients, write_config, tmp_path: Path) -> None:
    ec2 = clients("ec2")
    image = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["*ubuntu*"]}])["Images"][0]
    ec2.run_instances(ImageId=image["ImageId"], InstanceType="t3.medium", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "service", "Value": "social-app"},
                                              {"Key": "Name", "Value": "web\x9b2J\u202e1-"}]},
    ])  # EC2 speaks XML, which has no ESC: CSI as its one-byte C1 form, and a right-to-left override
    # The compute target: libcloud's EC2 driver against the same moto_server (plan only reads it).
    compute = {"driver": "failover.testing.ec2_shim:MotoEC2NodeDriver", "options": {
        "key": "testing", "secret": "testing", "host": "127.0.0.1", "port": account.port, "secure": False}}
    targets = {"fallback": {"compute": compute, "images": {image["ImageId"]: image["ImageId"]}}}
    config = write_config(source=SOURCE, targets=targets)
    (tmp_path / "nodes.yaml").write_text("name: nodes\nsteps:\n  - {id: nodes, action: provision-nodes}\n")

    code, shown = on_a_terminal("inventory", "-c", str(config), cwd=tmp_path)
    assert code == 0, shown
    code, shown = on_a_terminal("plan", "nodes.yaml", "--target", "fallback", "-c", str(config), cwd=tmp_path)

    assert code == 0, shown
    assert "\x9b" not in shown and "\u202e" not in shown
    assert "web\\x9b2J\\u202e1-" in shown.replace("\r\n", "")
