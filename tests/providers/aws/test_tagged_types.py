"""Which CloudFormation type an ARN or EC2 id names, and the short id listings name it by."""

from __future__ import annotations

import pytest

from providers.aws.tagged import cfn_type, reason, short_id

ACCOUNT = "123456789012"


@pytest.mark.parametrize(("arn", "expected"), [
    (f"arn:aws:ec2:us-east-1:{ACCOUNT}:route-table/rtb-1", "AWS::EC2::RouteTable"),
    (f"arn:aws:ec2:us-east-1:{ACCOUNT}:natgateway/nat-1", "AWS::EC2::NatGateway"),
    (f"arn:aws:ec2:us-east-1:{ACCOUNT}:internet-gateway/igw-1", "AWS::EC2::InternetGateway"),
    (f"arn:aws:iam::{ACCOUNT}:role/app-role", "AWS::IAM::Role"),
    (f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/front", "AWS::ElasticLoadBalancing::LoadBalancer"),
    (f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/front/50dc6c495c0c9188",
     "AWS::ElasticLoadBalancingV2::LoadBalancer"),
    (f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/web/73e2d6bc24d8a067",
     "AWS::ElasticLoadBalancingV2::TargetGroup"),
    (f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:7f3c:autoScalingGroupName/web",
     "AWS::AutoScaling::AutoScalingGroup"),
    (f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts", "AWS::SNS::Topic"),
    (f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders", "AWS::RDS::DBInstance"),
    ("arn:aws:s3:::media", "AWS::S3::Bucket"),
    (f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/web/0a1b", "AWS::CloudFormation::Stack"),
    (f"arn:aws:ec2:us-east-1:{ACCOUNT}:carrier-gateway/cagw-1", "AWS::EC2::CarrierGateway"),  # not in the table
])
def test_cloudformation_type_of_an_arn(arn: str, expected: str) -> None:
    assert cfn_type(arn) == expected


def test_short_ids_are_what_each_service_lists_resources_by() -> None:
    assert short_id(f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abc") == "i-0abc"
    assert short_id(f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders") == "orders"
    assert short_id("arn:aws:s3:::media") == "media"
    assert short_id("https://sqs.us-east-1.amazonaws.com/123456789012/jobs") == "jobs"
    assert short_id(f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:7f3c:autoScalingGroupName/web") == "web"


def test_every_type_gets_a_reason() -> None:
    # a node_group of the manifest: listed as left behind only when it was not read
    assert "not taken into the manifest" in reason("AWS::AutoScaling::AutoScalingGroup")
    assert reason("AWS::Kinesis::Stream") == "no failover action moves AWS::Kinesis::Stream; recreate it on the target by hand"
    assert "not taken into the manifest" in reason("AWS::EC2::Instance")
