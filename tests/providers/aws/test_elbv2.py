"""The ELBv2 collector against moto: listeners and the nodes registered behind them."""

from __future__ import annotations

import pytest

SERVICE = {"Key": "service", "Value": "svc"}


@pytest.fixture
def network(aws) -> dict:
    ec2 = aws("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(["us-east-1a", "us-east-1b"])
    ]
    return {"vpc": vpc_id, "subnets": subnets}


def make_balancer(aws, network: dict, name: str, tags: list[dict[str, str]] | None = None) -> str:
    kwargs = {"Tags": tags} if tags else {}
    elbv2 = aws("elbv2")
    answer = elbv2.create_load_balancer(Name=name, Subnets=network["subnets"], Scheme="internet-facing", **kwargs)
    return answer["LoadBalancers"][0]["LoadBalancerArn"]


def make_target_group(aws, network: dict, name: str, target_type: str = "instance") -> str:
    answer = aws("elbv2").create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=network["vpc"], TargetType=target_type
    )
    return answer["TargetGroups"][0]["TargetGroupArn"]


def forward(aws, lb_arn: str, port: int, group_arn: str) -> None:
    aws("elbv2").create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="HTTP",
        Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )


def balancers(manifest) -> list[dict]:
    return [r for r in manifest.to_dict()["resources"] if r["kind"] == "load_balancer"]


def test_alb_with_listeners_and_target_nodes(aws, network, inventory):
    ec2 = aws("ec2")
    instances = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=3, MaxCount=3, InstanceType="t3.micro", SubnetId=network["subnets"][0]
    )["Instances"]
    node_ids = sorted(instance["InstanceId"] for instance in instances)
    lb_arn = make_balancer(aws, network, "web-lb", [SERVICE, {"Key": "Name", "Value": "public web"}])
    web = make_target_group(aws, network, "web")
    admin = make_target_group(aws, network, "admin")
    addresses = make_target_group(aws, network, "by-address", target_type="ip")
    elbv2 = aws("elbv2")
    elbv2.register_targets(TargetGroupArn=web, Targets=[{"Id": node_ids[0]}, {"Id": node_ids[1]}])
    elbv2.register_targets(TargetGroupArn=admin, Targets=[{"Id": node_ids[1]}, {"Id": node_ids[2]}])
    elbv2.register_targets(TargetGroupArn=addresses, Targets=[{"Id": "10.0.0.99"}])
    forward(aws, lb_arn, 80, web)
    forward(aws, lb_arn, 8080, admin)
    forward(aws, lb_arn, 9090, addresses)
    dns_name = elbv2.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]["DNSName"]

    [balancer] = balancers(inventory())
    groups = balancer.pop("target_groups")
    assert balancer == {
        "kind": "load_balancer",
        "id": lb_arn,
        "name": "public web",
        "region": "us-east-1",
        "tags": {"Name": "public web", "service": "svc"},
        "scheme": "internet-facing",
        "dns_name": dns_name,
        "type": "application",
        "listeners": [
            {"protocol": "HTTP", "port": 80, "target_group": web},
            {"protocol": "HTTP", "port": 8080, "target_group": admin},
            {"protocol": "HTTP", "port": 9090, "target_group": addresses},
        ],
        "targets": node_ids,  # the ip group's address is no node
    }
    assert dns_name.startswith("web-lb-")
    by_name = {group["name"]: group for group in groups}
    assert by_name["web"]["targets"] == node_ids[:2] and by_name["admin"]["targets"] == node_ids[1:]
    assert by_name["by-address"]["targets"] == []
    assert (by_name["web"]["protocol"], by_name["web"]["port"]) == ("HTTP", 80)
    assert by_name["web"]["health_check"]["protocol"] == "HTTP" and by_name["web"]["health_check"]["path"] == "/"
    assert "stickiness" not in by_name["web"] or by_name["web"]["stickiness"] is None


def test_https_listener_certificate_health_check_and_stickiness(aws, network, inventory):
    certificate = aws("acm").request_certificate(DomainName="shop.example")["CertificateArn"]
    lb_arn = make_balancer(aws, network, "shop", [SERVICE])
    elbv2 = aws("elbv2")
    group = elbv2.create_target_group(
        Name="shop", Protocol="HTTP", Port=8080, VpcId=network["vpc"], HealthCheckPath="/healthz",
        HealthCheckPort="8081", HealthyThresholdCount=2, UnhealthyThresholdCount=4, HealthCheckIntervalSeconds=10,
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(TargetGroupArn=group, Attributes=[
        {"Key": "stickiness.enabled", "Value": "true"}, {"Key": "stickiness.type", "Value": "lb_cookie"},
        {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "3600"}])
    elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTPS", Port=443,
                          Certificates=[{"CertificateArn": certificate}],
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])

    [balancer] = balancers(inventory())

    assert balancer["listeners"] == [{"protocol": "HTTPS", "port": 443, "certificate": certificate,
                                      "target_group": group}]
    [found] = balancer["target_groups"]
    assert (found["id"], found["port"]) == (group, 8080)
    assert found["health_check"] == {"protocol": "HTTP", "port": 8081, "path": "/healthz", "interval_s": 10,
                                     "timeout_s": found["health_check"]["timeout_s"], "healthy_threshold": 2,
                                     "unhealthy_threshold": 4}
    assert found["stickiness"] == {"type": "lb_cookie", "duration_s": 3600, "cookie_name": None}


def test_balancer_without_listeners_has_no_targets_and_its_own_name(aws, network, inventory):
    lb_arn = make_balancer(aws, network, "bare", [SERVICE])

    [balancer] = balancers(inventory())

    assert (balancer["id"], balancer["name"], balancer["listeners"], balancer["targets"]) == (lb_arn, "bare", [], [])


def test_only_selected_balancers_across_tag_batches(aws, network, inventory):
    # describe_tags takes twenty balancers a request: twenty-three need two requests,
    # and with twenty-one of them selected, each request answers for some.
    selected = {make_balancer(aws, network, f"lb-{i:02d}", [SERVICE]) for i in range(21)}
    make_balancer(aws, network, "staging", [{"Key": "service", "Value": "svc-staging"}])
    make_balancer(aws, network, "untagged")

    assert {b["id"] for b in balancers(inventory())} == selected


def https(aws, lb_arn: str, port: int, group_arn: str, certificate_arn: str) -> None:
    aws("elbv2").create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTPS", Port=port, Certificates=[{"CertificateArn": certificate_arn}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )


def test_the_untagged_certificates_of_https_listeners_are_dependencies(aws, network, take_inventory, monkeypatch):
    import providers.aws.inventory as aws_inventory

    # with ACM's collector too: a tagged certificate is its, and comes once
    monkeypatch.setattr(aws_inventory, "COLLECTORS", [c for c in aws_inventory.COLLECTORS if c[0] in ("elbv2", "acm")])
    acm = aws("acm")
    shared = acm.request_certificate(DomainName="www.example.com", SubjectAlternativeNames=["example.com"])
    own = acm.request_certificate(DomainName="api.example.com", Tags=[SERVICE])
    unused = acm.request_certificate(DomainName="other.example.com")
    group = make_target_group(aws, network, "web")
    lb_arn = make_balancer(aws, network, "web-lb", [SERVICE])
    https(aws, lb_arn, 443, group, shared["CertificateArn"])
    https(aws, lb_arn, 8443, group, own["CertificateArn"])
    other_lb = make_balancer(aws, network, "other-lb")  # not the service's: its certificate stays out
    https(aws, other_lb, 443, group, unused["CertificateArn"])

    manifest = take_inventory()

    certificates = {r["id"]: r for r in manifest.to_dict()["resources"] if r["kind"] == "certificate"}
    assert set(certificates) == {shared["CertificateArn"], own["CertificateArn"]}  # each once
    dependency = certificates[shared["CertificateArn"]]
    assert (dependency["owned"], dependency["tags"], dependency["domains"]) == (
        False, {}, ["example.com", "www.example.com"])
    assert "owned" not in certificates[own["CertificateArn"]]  # tagged: the service's own, from ACM's listing
    [balancer] = balancers(manifest)
    assert [(item["protocol"], item["port"]) for item in balancer["listeners"]] == [("HTTPS", 443), ("HTTPS", 8443)]
