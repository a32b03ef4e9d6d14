"""``failover demo``: the story offline, on embedded mock clouds (moto in-process).

A small sample service ("social-app") is built on a mock AWS account, beside a service
that does not belong to it, and inventoried into a throwaway state directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SERVICE = "social-app"
REGIONS = ["us-east-1", "eu-west-1"]
TAGS = {"service": SERVICE}

USER_DATA = """#cloud-config
packages: [nginx]
runcmd:
  - [systemctl, enable, --now, nginx]
"""


def _tags(name: str, **extra: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in {"Name": name, **TAGS, **extra}.items()]


def seed_sample_service(clients: Any) -> dict[str, Any]:
    """Build the sample service. ``clients(service, region)`` returns a boto3 client."""
    ec2 = clients("ec2", "us-east-1")
    image_id = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["*ubuntu*"]}])["Images"][0]["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags("social-vpc")}])["Vpc"]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    web_sg = ec2.create_security_group(
        GroupName="social-web", Description="web tier", VpcId=vpc["VpcId"],
        TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags("social-web")}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]},
    ])
    db_sg = ec2.create_security_group(
        GroupName="social-db", Description="database", VpcId=vpc["VpcId"],
        TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags("social-db")}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web_sg}]},
    ])
    nodes = {}
    for name, role, itype in (("web-1", "web", "t3.medium"), ("web-2", "web", "t3.medium"), ("worker-1", "worker", "t3.large")):
        nodes[name] = ec2.run_instances(
            ImageId=image_id, InstanceType=itype, MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"],
            SecurityGroupIds=[web_sg], UserData=USER_DATA,
            TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(name, role=role)}],
        )["Instances"][0]["InstanceId"]
    eip = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": _tags("web-ip")}])
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=nodes["web-1"])
    volume = ec2.create_volume(
        AvailabilityZone="us-east-1a", Size=50, VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": _tags("uploads")}],
    )["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=nodes["worker-1"], Device="/dev/sdf")

    # A neighbour that must never appear: another service in the same account.
    ec2.run_instances(
        ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "service", "Value": "social-app-staging"}]}],
    )
    # A reporting node in the second region.
    ec2_eu = clients("ec2", "eu-west-1")
    eu_image = ec2_eu.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2_eu.run_instances(
        ImageId=eu_image, InstanceType="t3.small", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags("reports-1", role="reports")}],
    )

    s3 = clients("s3", "us-east-1")
    s3.create_bucket(Bucket="social-app-media")
    s3.put_bucket_tagging(Bucket="social-app-media", Tagging={"TagSet": _tags("media")})
    s3.put_bucket_versioning(Bucket="social-app-media", VersioningConfiguration={"Status": "Enabled"})
    for i in range(12):
        s3.put_object(Bucket="social-app-media", Key=f"avatars/user-{i}.png", Body=b"\x89PNG" + bytes(100 * i),
                      ContentType="image/png")
    s3.put_object(Bucket="social-app-media", Key="posts/café menu.txt", Body="bonjour".encode(), ContentType="text/plain")

    route53 = clients("route53", "us-east-1")
    zone_id = route53.create_hosted_zone(Name="social.example.", CallerReference="demo")["HostedZone"]["Id"]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id.split("/")[-1], AddTags=_tags("social.example"))
    changes = [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": 300, "ResourceRecords": [{"Value": v}]}}
        for name, rtype, v in (
            ("social.example.", "A", eip["PublicIp"]),
            ("www.social.example.", "CNAME", "social.example."),
            ("social.example.", "MX", "10 mail.provider.example."),
            ("social.example.", "TXT", '"v=spf1 -all"'),
        )
    ]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})

    rds = clients("rds", "us-east-1")
    rds.create_db_instance(
        DBInstanceIdentifier="orders-db", Engine="postgres", EngineVersion="15.4", DBInstanceClass="db.t3.medium",
        AllocatedStorage=20, MasterUsername="app", MasterUserPassword="demo-password-1", Tags=_tags("orders-db"),
    )

    elb = clients("elbv2", "us-east-1")
    subnet_b = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.20.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    lb = elb.create_load_balancer(Name="social-web", Subnets=[subnet["SubnetId"], subnet_b["SubnetId"]],
                                  Scheme="internet-facing", Tags=_tags("social-web"))["LoadBalancers"][0]
    tg = elb.create_target_group(Name="social-web", Protocol="HTTP", Port=80, VpcId=vpc["VpcId"])["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": nodes["web-1"]}, {"Id": nodes["web-2"]}])
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])

    acm = clients("acm", "us-east-1")
    acm.request_certificate(DomainName="social.example", SubjectAlternativeNames=["www.social.example"],
                            ValidationMethod="DNS", Tags=_tags("social-cert"))

    sqs = clients("sqs", "us-east-1")
    sqs.create_queue(QueueName="social-app-jobs", tags={**TAGS})
    ddb = clients("dynamodb", "us-east-1")
    ddb.create_table(TableName="social-app-sessions", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], Tags=_tags("sessions"))
    return {"nodes": nodes, "zone_id": zone_id, "eip": eip["PublicIp"], "bucket": "social-app-media"}


def sample_config(state_dir: Path, endpoint_url: str | None = None) -> dict[str, Any]:
    source: dict[str, Any] = {"provider": "aws", "regions": REGIONS, "select": {"tags": dict(TAGS)}}
    if endpoint_url:
        source["endpoint_url"] = endpoint_url
    return {"service": SERVICE, "state": str(state_dir), "source": source}


def fake_credentials() -> None:
    """moto needs some credentials; the demo never uses real ones."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
