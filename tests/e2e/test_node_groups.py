"""Issue 12's scaling groups, end to end: the sample service grows two Auto Scaling groups on the
source account (``front``, behind an HTTPS ALB whose target group checks ``/healthz``, from a
launch template; ``jobs``, without a load balancer, from a launch configuration) whose user data
names the RDS endpoint, the ALB and the bucket. ``run standard`` builds each group's desired
nodes from its launch specification, named ``social-app-<group>-<n>``; the user data on those
nodes names the restored database's node and the DNS name in front of the ALB, not the old
endpoints; ``plan`` lists every substitution. The run is killed (SIGKILL) the moment the journal
holds its first group node, then resumed: no node exists twice; rollback then removes every group
node. The ALB comes back as a HAProxy node whose backends are the ``front`` group's new nodes, its
HTTPS listener served with the profile's certificate and checked on ``/healthz``, and the name that
pointed at the ALB points at it after cutover. Read from the emulators."""

from __future__ import annotations

import base64
import re
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from e2ekit import WEB_FIREWALL, inventory, node_counts, rollback, started_world, step

from failover.cloudinit import cloud_config_parts
from failover.demo import write_demo_certificate
from failover.haproxy import CONFIG_PATH
from failover.testing.world import EmulatedWorld

GROUP_NODES = {"social-app-front-1", "social-app-front-2", "social-app-front-3", "social-app-jobs-1"}
APP_NAME = "app.social.example"
ANNOUNCED = re.compile(r"^Run (run-\S+) ")


def grow_scaling_groups(world: EmulatedWorld) -> dict[str, str]:
    """The two groups on the source account; what their user data names there."""
    ec2, elbv2 = world.source_client("ec2"), world.source_client("elbv2")
    autoscaling, rds = world.source_client("autoscaling"), world.source_client("rds")
    tags = [{"Key": "service", "Value": world.service}]
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["social-vpc"]}])["Vpcs"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]]
    [web_group] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["social-web"]}])["SecurityGroups"]
    image = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["*ubuntu*"]}])["Images"][0]["ImageId"]
    database = rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0]["Endpoint"]["Address"]

    certificate = world.source_client("acm").request_certificate(DomainName=APP_NAME)["CertificateArn"]
    lb = elbv2.create_load_balancer(Name="front", Subnets=subnets, Scheme="internet-facing", Tags=tags)["LoadBalancers"][0]
    target_group = elbv2.create_target_group(Name="front", Protocol="HTTP", Port=80, VpcId=vpc["VpcId"],
                                             HealthCheckPath="/healthz")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443,
                          Certificates=[{"CertificateArn": certificate}],
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": target_group}])
    front_data = (f"#!/bin/sh\necho 'DATABASE_URL=postgres://app@{database}:5432/orders' > /etc/front.env\n"
                  f"echo 'PUBLIC_URL=https://{lb['DNSName']}/' >> /etc/front.env\n"
                  "echo 'MEDIA=https://social-app-media.s3.amazonaws.com/' >> /etc/front.env\n")
    template = ec2.create_launch_template(LaunchTemplateName="front", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.medium", "SecurityGroupIds": [web_group["GroupId"]],
        "UserData": base64.b64encode(front_data.encode()).decode()})["LaunchTemplate"]["LaunchTemplateId"]
    propagated = [{**tag, "PropagateAtLaunch": True} for tag in tags]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="front", MinSize=2, MaxSize=6, DesiredCapacity=3, TargetGroupARNs=[target_group],
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"}, VPCZoneIdentifier=",".join(subnets),
        HealthCheckType="ELB", Tags=propagated)
    jobs_data = f"#!/bin/sh\necho 'DATABASE_HOST={database}' > /etc/jobs.env\n"
    autoscaling.create_launch_configuration(LaunchConfigurationName="jobs", ImageId=image, InstanceType="t3.small",
                                            SecurityGroups=[web_group["GroupId"]], UserData=jobs_data)
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="jobs", MinSize=1, MaxSize=3, DesiredCapacity=1,
                                          LaunchConfigurationName="jobs", VPCZoneIdentifier=subnets[0], Tags=propagated)
    world.source_client("route53").change_resource_record_sets(
        HostedZoneId=world.seeded["zone_id"], ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": f"{APP_NAME}.", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": lb["DNSName"]}]}}]})
    return {"database": database, "lb": lb["DNSName"], "lb_id": lb["LoadBalancerArn"]}


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[EmulatedWorld, dict[str, str]]]:
    with started_world(storage="azurite") as world:
        old = grow_scaling_groups(world)
        # the HTTPS listener's certificate from the profile (ACM's key cannot be exported)
        config = yaml.safe_load(world.config_path.read_text(encoding="utf-8"))
        config["targets"][world.target]["tls"] = write_demo_certificate(world.workdir)
        world.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        inventory(world)
        yield world, old


def group_nodes(world: EmulatedWorld) -> dict[str, int]:
    return {name: count for name, count in node_counts(world).items() if name in GROUP_NODES}


def user_data(world: EmulatedWorld, name: str) -> str:
    [instance] = [i for i in world.target_instances()
                  if {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("Name") == name]
    value = world.compute_client().describe_instance_attribute(InstanceId=instance["InstanceId"],
                                                              Attribute="userData")["UserData"]["Value"]
    return base64.b64decode(value).decode()


def test_plan_builds_the_groups_and_lists_every_substitution(world) -> None:
    world, old = world
    planned = world.failover("plan", "standard", "--target", world.target, "--json", *world.run_vars)
    assert planned.code == 0, planned.stderr
    changes = step(planned.json(), "nodes")["changes"]
    created = {c["name"] for c in changes if c["kind"] == "node" and c["operation"] == "create"}
    assert created >= GROUP_NODES
    groups = {c["name"]: c["detail"] for c in changes if c["kind"] == "node_group"}
    assert set(groups) == {"front", "jobs"}
    assert "no autoscaling on the target" in groups["front"] and old["lb_id"] in groups["front"]
    rewrites = {c["name"]: c for c in changes if c["kind"] == "user_data"}
    assert rewrites[old["database"]]["operation"] == "update"
    assert "restored by step databases" in rewrites[old["database"]]["detail"]
    assert rewrites[old["lb"]]["detail"].startswith(f"-> {APP_NAME}: load_balancer")
    media = rewrites["social-app-media.s3.amazonaws.com"]["detail"]
    assert media.startswith("-> http://127.0.0.1:") and "/replica-social-app-media" in media


def first_group_node_journaled(world: EmulatedWorld, run_id: str) -> bool:
    database = sqlite3.connect(f"file:{world.state_dir / 'state.db'}?mode=ro", uri=True, timeout=5)
    try:
        rows = database.execute("SELECT details FROM created_resources WHERE run_id = ? AND step_id = 'nodes'",
                                (run_id,)).fetchall()
    except sqlite3.OperationalError:  # locked by the run's own write: look again
        return False
    finally:
        database.close()
    return any(any(name in details for name in GROUP_NODES) for (details,) in rows)


def test_rewrite_endpoints_false_plans_no_substitution(world) -> None:
    world, old = world
    planned = world.failover("plan", "standard", "--target", world.target, "--json", *world.run_vars,
                             "--var", "rewrite_endpoints=false")
    assert planned.code == 0, planned.stderr
    changes = step(planned.json(), "nodes")["changes"]
    assert [c for c in changes if c["kind"] == "user_data" and c["operation"] == "update"] == []
    assert {c["name"] for c in changes if c["kind"] == "node_group"} == {"front", "jobs"}


@pytest.fixture(scope="module")
def ran(world) -> dict[str, Any]:
    """``run standard`` killed with SIGKILL as soon as its first group node is journaled, then resumed."""
    world, _ = world
    process = world.start_failover("run", "standard", "--target", world.target, "--yes", *world.run_vars)
    run_id = next((match.group(1) for line in process.stderr if (match := ANNOUNCED.match(line))), None)
    assert run_id is not None
    deadline = time.monotonic() + 300  # a bound on waiting, not a timing assertion
    while not first_group_node_journaled(world, run_id) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    process.communicate(timeout=60)
    killed = world.failover("status", run_id, "--json").json()
    assert step(killed, "nodes")["status"] != "succeeded", "the kill came after the nodes step"

    resumed = world.failover("resume", run_id, "--json")
    assert resumed.code == 0, resumed.stderr
    return resumed.json()


def test_the_target_runs_each_groups_desired_nodes_with_rewritten_user_data(world, ran) -> None:
    world, old = world
    assert ran["status"] == "succeeded", ran["error"]
    assert group_nodes(world) == {name: 1 for name in GROUP_NODES}
    outputs = step(ran, "nodes")["outputs"]
    assert {entry["group"] for entry in outputs["nodes"].values() if "group" in entry} == {"front", "jobs"}
    database_node = step(ran, "databases")["outputs"]["databases"]["orders-db"]
    new_database = database_node["private_ip"]

    front = user_data(world, "social-app-front-3")
    assert f"postgres://app@{new_database}:5432/orders" in front and old["database"] not in front
    assert f"PUBLIC_URL=https://{APP_NAME}/" in front and old["lb"] not in front
    assert "s3.amazonaws.com" not in front and "/replica-social-app-media/" in front
    jobs = user_data(world, "social-app-jobs-1")
    assert f"DATABASE_HOST={new_database}" in jobs and old["database"] not in jobs
    nodes = world.target_nodes()
    for name in GROUP_NODES:  # the launch spec's security group, through the firewall API
        assert WEB_FIREWALL in nodes[name].security_groups, (name, nodes[name].security_groups)
    recorded = outputs["endpoints"]["substitutions"]
    assert recorded[old["database"]]["to"] == new_database and recorded[old["lb"]]["to"] == APP_NAME


def test_the_front_groups_nodes_are_behind_the_new_https_balancer(world, ran) -> None:
    world, old = world
    assert ran["status"] == "succeeded", ran["error"]
    balancer = step(ran, "front-door")["outputs"]["load_balancers"][old["lb_id"]]
    nodes = world.target_nodes()
    lb_node = nodes["social-app-lb-front"]
    assert balancer["address"] == lb_node.public_ip
    [cloud_config] = cloud_config_parts(user_data(world, "social-app-lb-front"))
    config = next(item["content"] for item in cloud_config["write_files"] if item["path"] == CONFIG_PATH)
    front_private = sorted(nodes[f"social-app-front-{n}"].private_ip for n in (1, 2, 3))
    assert sorted(re.findall(r"server s\d+ (\S+):80 check", config)) == front_private  # the group's nodes, not jobs
    assert re.search(r"bind \S*:443 .*ssl crt", config) and "uri /healthz" in config
    assert world.dns(f"{APP_NAME}.", "A") == [lb_node.public_ip]  # the CNAME to the ALB names the new balancer


def test_after_the_kill_and_resume_no_node_exists_twice(world, ran) -> None:
    world, _ = world
    assert ran["status"] == "succeeded", ran["error"]
    assert all(count == 1 for count in node_counts(world).values()), node_counts(world)


def test_rollback_removes_every_group_node(world, ran) -> None:
    world, _ = world
    rollback(world, ran["run_id"])
    assert group_nodes(world) == {}
    assert node_counts(world) == {}
