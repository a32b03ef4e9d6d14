"""Deploys the templates of this folder into a moto account through CloudFormation, as a user would.

moto's CloudFormation needs a few things a real account does not (see the test module's docstring):
the default VPC's ids and an ACM certificate are passed as parameters, CloudFront's managed prefix
list is looked up by name and passed in, and the tags of the kinds moto's CloudFormation does not
tag are put on afterwards through each service's own API, as AWS itself would have done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"


def template_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json"))


def parameters(session: Any, name: str, service: str, region: str = "us-east-1") -> list[dict[str, str]]:
    """What the template asks for, read from the account (never hard-coded ids)."""
    body = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    ec2 = session.client("ec2", region_name=region)
    values = {"Service": service}
    asked = body.get("Parameters", {})
    if "VpcId" in asked or "Subnets" in asked:
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        values["VpcId"] = vpc
        values["Subnets"] = ",".join(sorted(s["SubnetId"] for s in subnets)[:2])
    if "DefaultSecurityGroup" in asked:  # the default VPC's own default group, shared by whatever uses it
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        groups = ec2.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
        values["DefaultSecurityGroup"] = groups[0]["GroupId"]
    if "CertificateArn" in asked:
        acm = session.client("acm", region_name=region)
        values["CertificateArn"] = acm.request_certificate(
            DomainName=f"{service}.example.com", Tags=[{"Key": "service", "Value": service}]
        )["CertificateArn"]
    if "CloudFrontPrefixList" in asked:
        lists = ec2.describe_managed_prefix_lists(
            Filters=[{"Name": "prefix-list-name", "Values": [CLOUDFRONT_PREFIX_LIST]}]
        )["PrefixLists"]
        values["CloudFrontPrefixList"] = lists[0]["PrefixListId"]
    return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]


def deploy(session: Any, name: str, service: str, region: str = "us-east-1") -> dict[str, Any]:
    """Creates the stack ``service`` from template ``name``; returns describe_stacks' answer for it."""
    cfn = session.client("cloudformation", region_name=region)
    given = parameters(session, name, service, region)
    cfn.create_stack(
        StackName=service,
        TemplateBody=(HERE / f"{name}.json").read_text(encoding="utf-8"),
        Parameters=given,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        Tags=[{"Key": "service", "Value": service}],
    )
    stack = cfn.describe_stacks(StackName=service)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=service)["StackEvents"]
        reasons = [e.get("ResourceStatusReason") for e in events if e.get("ResourceStatusReason")]
        raise RuntimeError(f"stack {service} ({name}): {stack['StackStatus']}: {reasons}")
    body = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    resources = cfn.describe_stack_resources(StackName=service)["StackResources"]
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in resources}
    for resource in resources:
        declared = body["Resources"][resource["LogicalResourceId"]].get("Properties", {}).get("Tags", [])
        tags = {"service": service, **{t["Key"]: t["Value"] for t in declared if isinstance(t["Value"], str)}}
        if resource.get("PhysicalResourceId"):  # moto leaves it off a Lambda permission
            _tag(session, region, resource["ResourceType"], resource["PhysicalResourceId"], tags)
        properties = body["Resources"][resource["LogicalResourceId"]].get("Properties", {})
        versioning = properties.get("VersioningConfiguration")
        groups = [physical[ref["Ref"]] for ref in properties.get("SecurityGroupIds", []) if isinstance(ref, dict)]
        if resource["ResourceType"] == "AWS::EC2::Instance" and groups:  # moto drops them beside a SubnetId
            session.client("ec2", region_name=region).modify_instance_attribute(
                InstanceId=resource["PhysicalResourceId"], Groups=groups)
        if resource["ResourceType"] == "AWS::EC2::SecurityGroup":
            _prefix_list_rules(session, region, resource["PhysicalResourceId"], properties, given)
        if resource["ResourceType"] == "AWS::S3::Bucket" and versioning:  # moto's CloudFormation ignores it
            session.client("s3", region_name=region).put_bucket_versioning(
                Bucket=resource["PhysicalResourceId"], VersioningConfiguration=versioning)
    return stack


def _tag(session: Any, region: str, resource_type: str, physical_id: str, tags: dict[str, str]) -> None:
    """Tags that moto's CloudFormation leaves off (AWS propagates the stack's tags to these kinds)."""
    pairs = [{"Key": key, "Value": value} for key, value in tags.items()]
    client = session.client
    if resource_type == "AWS::ElasticLoadBalancing::LoadBalancer":
        client("elb", region_name=region).add_tags(LoadBalancerNames=[physical_id], Tags=pairs)
    elif resource_type in ("AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup"):
        client("elbv2", region_name=region).add_tags(ResourceArns=[physical_id], Tags=pairs)
    elif resource_type == "AWS::SNS::Topic":
        client("sns", region_name=region).tag_resource(ResourceArn=physical_id, Tags=pairs)
    elif resource_type == "AWS::Lambda::Function":
        lam = client("lambda", region_name=region)
        arn = lam.get_function(FunctionName=physical_id)["Configuration"]["FunctionArn"]
        lam.tag_resource(Resource=arn, Tags=tags)
    elif resource_type == "AWS::Route53::HostedZone":
        client("route53", region_name=region).change_tags_for_resource(
            ResourceType="hostedzone", ResourceId=physical_id.rsplit("/", 1)[-1], AddTags=pairs)
    elif resource_type == "AWS::EC2::EIP":  # moto tags the public IP, not the allocation
        ec2 = client("ec2", region_name=region)
        address = ec2.describe_addresses(PublicIps=[physical_id])["Addresses"][0]
        ec2.create_tags(Resources=[address.get("AllocationId") or physical_id], Tags=pairs)


def _prefix_list_rules(session: Any, region: str, group_id: str, properties: dict[str, Any],
                       given: list[dict[str, str]]) -> None:
    """Ingress rules from a prefix list, which moto's CloudFormation leaves out of the group."""
    values = {p["ParameterKey"]: p["ParameterValue"] for p in given}
    rules = [
        {"IpProtocol": rule["IpProtocol"], "FromPort": rule["FromPort"], "ToPort": rule["ToPort"],
         "PrefixListIds": [{"PrefixListId": values[rule["SourcePrefixListId"]["Ref"]]}]}
        for rule in properties.get("SecurityGroupIngress", []) if "SourcePrefixListId" in rule
    ]
    if rules:
        ec2 = session.client("ec2", region_name=region)
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=rules)

