"""Writes the CloudFormation templates of tests/providers/aws/test_cfn_services.py (JSON, as moto
reads them), modelled on AWS's public sample templates. Run it after changing a template here:
``python tests/data/cfn/make_templates.py``."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
IMAGE = "ami-1e749f67"  # in moto's catalogue


def tags(name: str, *, propagate: bool = False) -> list[dict]:
    extra = {"PropagateAtLaunch": True} if propagate else {}
    return [{"Key": "service", "Value": {"Ref": "Service"}, **extra}, {"Key": "Name", "Value": name, **extra}]


def template(description: str, resources: dict, parameters: dict | None = None, outputs: dict | None = None) -> dict:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": description,
        "Parameters": {"Service": {"Type": "String"}, **(parameters or {})},
        "Resources": resources,
        **({"Outputs": outputs} if outputs else {}),
    }


def security_group(name: str, ports: list[int], vpc: dict | None = None, cidr: str = "0.0.0.0/0") -> dict:
    props = {
        "GroupDescription": f"{name} access",
        "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "CidrIp": cidr} for p in ports],
        "Tags": tags(name),
    }
    if vpc:
        props["VpcId"] = vpc
    return {"Type": "AWS::EC2::SecurityGroup", "Properties": props}


def instance(name: str, groups: list[str] | None = None, size: str = "t3.micro", user_data: str | None = None,
             subnet: dict | None = None, group_ids: bool = False) -> dict:
    props: dict = {"ImageId": IMAGE, "InstanceType": size, "Tags": tags(name)}
    if groups:
        props["SecurityGroupIds" if group_ids else "SecurityGroups"] = [{"Ref": g} for g in groups]
    if user_data:
        props["UserData"] = {"Fn::Base64": user_data}
    if subnet:
        props["SubnetId"] = subnet
    return {"Type": "AWS::EC2::Instance", "Properties": props}


def network(prefix: str, cidr16: str, azs: int, nat: bool) -> dict:
    """The VPC wizard's network: public and private subnets per zone, an internet gateway, NAT gateways."""
    r: dict = {
        "VPC": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": f"{cidr16}.0.0/16", "EnableDnsHostnames": True,
                                                        "Tags": tags(f"{prefix}-vpc")}},
        "InternetGateway": {"Type": "AWS::EC2::InternetGateway", "Properties": {"Tags": tags(f"{prefix}-igw")}},
        "GatewayAttachment": {"Type": "AWS::EC2::VPCGatewayAttachment",
                              "Properties": {"VpcId": {"Ref": "VPC"}, "InternetGatewayId": {"Ref": "InternetGateway"}}},
        "PublicRouteTable": {"Type": "AWS::EC2::RouteTable",
                             "Properties": {"VpcId": {"Ref": "VPC"}, "Tags": tags(f"{prefix}-public")}},
        "PublicRoute": {"Type": "AWS::EC2::Route", "DependsOn": "GatewayAttachment",
                        "Properties": {"RouteTableId": {"Ref": "PublicRouteTable"},
                                       "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": {"Ref": "InternetGateway"}}},
    }
    zones = [f"us-east-1{z}" for z in "ab"[:azs]]
    for n, zone in enumerate(zones, start=1):
        r[f"PublicSubnet{n}"] = {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "VPC"}, "CidrBlock": f"{cidr16}.{n}.0/24", "AvailabilityZone": zone,
            "MapPublicIpOnLaunch": True, "Tags": tags(f"{prefix}-public-{n}")}}
        r[f"PrivateSubnet{n}"] = {"Type": "AWS::EC2::Subnet", "Properties": {
            "VpcId": {"Ref": "VPC"}, "CidrBlock": f"{cidr16}.{10 + n}.0/24", "AvailabilityZone": zone,
            "Tags": tags(f"{prefix}-private-{n}")}}
        r[f"PublicSubnet{n}RouteTableAssociation"] = {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "SubnetId": {"Ref": f"PublicSubnet{n}"}, "RouteTableId": {"Ref": "PublicRouteTable"}}}
        r[f"PrivateRouteTable{n}"] = {"Type": "AWS::EC2::RouteTable",
                                      "Properties": {"VpcId": {"Ref": "VPC"}, "Tags": tags(f"{prefix}-private-{n}")}}
        r[f"PrivateSubnet{n}RouteTableAssociation"] = {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "SubnetId": {"Ref": f"PrivateSubnet{n}"}, "RouteTableId": {"Ref": f"PrivateRouteTable{n}"}}}
        if nat:
            r[f"NatGateway{n}EIP"] = {"Type": "AWS::EC2::EIP", "DependsOn": "GatewayAttachment",
                                      "Properties": {"Domain": "vpc", "Tags": tags(f"{prefix}-nat-{n}")}}
            r[f"NatGateway{n}"] = {"Type": "AWS::EC2::NatGateway", "Properties": {
                "AllocationId": {"Fn::GetAtt": [f"NatGateway{n}EIP", "AllocationId"]},
                "SubnetId": {"Ref": f"PublicSubnet{n}"}, "Tags": tags(f"{prefix}-nat-{n}")}}
            r[f"PrivateRoute{n}"] = {"Type": "AWS::EC2::Route", "Properties": {
                "RouteTableId": {"Ref": f"PrivateRouteTable{n}"}, "DestinationCidrBlock": "0.0.0.0/0",
                "NatGatewayId": {"Ref": f"NatGateway{n}"}}}
    return r


def classic_elb(name: str, instances: list[str] | None = None, log_bucket: str | None = None) -> dict:
    props: dict = {
        "AvailabilityZones": ["us-east-1a", "us-east-1b"],
        "Listeners": [{"LoadBalancerPort": "80", "InstancePort": "80", "Protocol": "HTTP"}],
        "HealthCheck": {"Target": "HTTP:80/", "HealthyThreshold": "3", "UnhealthyThreshold": "5",
                        "Interval": "30", "Timeout": "5"},
        "Tags": tags(name),
    }
    if instances:
        props["Instances"] = [{"Ref": i} for i in instances]
    if log_bucket:
        props["AccessLoggingPolicy"] = {"Enabled": True, "S3BucketName": {"Ref": log_bucket}, "EmitInterval": 5}
    return {"Type": "AWS::ElasticLoadBalancing::LoadBalancer", "Properties": props}


LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]}
EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]}

TEMPLATES: dict[str, dict] = {
    "instances-with-security-groups": template(
        "EC2 instances with security groups (after EC2InstanceWithSecurityGroupSample)",
        {
            "WebSecurityGroup": security_group("web", [22, 80, 443]),
            "AdminSecurityGroup": security_group("admin", [22], cidr="203.0.113.0/24"),
            "WebServer": instance("web-1", ["WebSecurityGroup", "AdminSecurityGroup"]),
            "Worker": instance("worker-1", ["AdminSecurityGroup"], size="m7i.xlarge"),
        },
    ),
    "elastic-ip": template(
        "An instance with an Elastic IP (after EIP_With_Association)",
        {
            "SSHGroup": security_group("ssh", [22]),
            "Server": instance("eip-server", ["SSHGroup"],
                               user_data="#!/bin/sh\necho 'advertise 0.0.0.0' > /etc/motd\n"),
            "IPAddress": {"Type": "AWS::EC2::EIP", "Properties": {"InstanceId": {"Ref": "Server"}, "Domain": "vpc",
                                                                   "Tags": tags("eip-server-ip")}},
        },
    ),
    "vpc-wizard": template(
        "The VPC wizard's network: two zones, public and private subnets, NAT gateways "
        "(after VPC_With_PublicIPs_And_DNS)",
        network("wizard", "10.20", 2, nat=True),
    ),
    "classic-elb-two-instances": template(
        "Two instances behind a classic load balancer (after ELBWithLockedDownEC2Instances)",
        {
            "InstanceSecurityGroup": security_group("elb-web", [80]),
            "Web1": instance("elb-web-1", ["InstanceSecurityGroup"]),
            "Web2": instance("elb-web-2", ["InstanceSecurityGroup"]),
            "ElasticLoadBalancer": classic_elb("elb-front", ["Web1", "Web2"]),
        },
    ),
    "asg-classic-elb-log-bucket": template(
        "An Auto Scaling group behind a classic load balancer with access logs in a bucket "
        "(after AutoScalingMultiAZWithNotifications)",
        {
            "LogBucket": {"Type": "AWS::S3::Bucket", "Properties": {"Tags": tags("elb-logs")}},
            "WebServerGroupSecurityGroup": security_group("asg-web", [80]),
            "LaunchConfig": {"Type": "AWS::AutoScaling::LaunchConfiguration", "Properties": {
                "ImageId": IMAGE, "InstanceType": "t3.small",
                "SecurityGroups": [{"Ref": "WebServerGroupSecurityGroup"}]}},
            "ElasticLoadBalancer": classic_elb("asg-front", log_bucket="LogBucket"),
            "WebServerGroup": {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {
                "AvailabilityZones": ["us-east-1a", "us-east-1b"],
                "LaunchConfigurationName": {"Ref": "LaunchConfig"}, "MinSize": "2", "MaxSize": "2",
                "DesiredCapacity": "2", "LoadBalancerNames": [{"Ref": "ElasticLoadBalancer"}],
                "Tags": tags("asg-web", propagate=True)}},
        },
    ),
    "asg-https-alb-sns": template(
        "An Auto Scaling group behind an HTTPS application load balancer, with SNS notifications; the "
        "instances use the default VPC's default security group (after ELBv2 and AutoScaling samples)",
        {
            "NotificationTopic": {"Type": "AWS::SNS::Topic", "Properties": {"Tags": tags("alb-alerts")}},
            "InstanceRole": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": EC2_TRUST, "Tags": tags("alb-instance-role")}},
            "LaunchTemplate": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {
                "LaunchTemplateData": {"ImageId": IMAGE, "InstanceType": "m5.large",
                                       "SecurityGroupIds": [{"Ref": "DefaultSecurityGroup"}]}}},
            "ApplicationLoadBalancer": {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {
                "Subnets": {"Ref": "Subnets"}, "Tags": tags("alb-front")}},
            "TargetGroup": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {
                "Port": 80, "Protocol": "HTTP", "VpcId": {"Ref": "VpcId"}, "Tags": tags("alb-targets")}},
            "HttpsListener": {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
                "LoadBalancerArn": {"Ref": "ApplicationLoadBalancer"}, "Port": 443, "Protocol": "HTTPS",
                "Certificates": [{"CertificateArn": {"Ref": "CertificateArn"}}],
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}]}},
            "WebServerGroup": {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {
                "VPCZoneIdentifier": {"Ref": "Subnets"},
                "LaunchTemplate": {"LaunchTemplateId": {"Ref": "LaunchTemplate"},
                                   "Version": {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]}},
                "MinSize": "2", "MaxSize": "2", "DesiredCapacity": "2",
                "TargetGroupARNs": [{"Ref": "TargetGroup"}],
                "NotificationConfigurations": [{"TopicARN": {"Ref": "NotificationTopic"}, "NotificationTypes": [
                    "autoscaling:EC2_INSTANCE_LAUNCH", "autoscaling:EC2_INSTANCE_TERMINATE"]}],
                "Tags": tags("alb-web", propagate=True)}},
        },
        parameters={"VpcId": {"Type": "AWS::EC2::VPC::Id"}, "Subnets": {"Type": "List<AWS::EC2::Subnet::Id>"},
                    "DefaultSecurityGroup": {"Type": "AWS::EC2::SecurityGroup::Id"},
                    "CertificateArn": {"Type": "String"}},
    ),
    "mysql-read-replica": template(
        "MySQL with a read replica (after RDS_MySQL_With_Read_Replica)",
        {
            "MasterDB": {"Type": "AWS::RDS::DBInstance", "Properties": {
                "DBInstanceIdentifier": {"Fn::Sub": "${Service}-master"}, "Engine": "mysql",
                "EngineVersion": "8.0.35", "DBInstanceClass": "db.m5.large", "AllocatedStorage": "20",
                "MasterUsername": "admin", "MasterUserPassword": "not-a-secret-1", "Tags": tags("mysql-master")}},
            "ReplicaDB": {"Type": "AWS::RDS::DBInstance", "Properties": {
                "DBInstanceIdentifier": {"Fn::Sub": "${Service}-replica"},
                "SourceDBInstanceIdentifier": {"Ref": "MasterDB"}, "DBInstanceClass": "db.m5.large",
                "Tags": tags("mysql-replica")}},
        },
    ),
    "versioned-buckets": template(
        "Three versioned buckets (after S3_Website_Bucket_With_Retain_On_Delete)",
        {
            f"Bucket{n}": {"Type": "AWS::S3::Bucket", "Properties": {
                "VersioningConfiguration": {"Status": "Enabled"}, "Tags": tags(f"versioned-{n}")}}
            for n in (1, 2, 3)
        },
    ),
    "bucket-lambda-trigger": template(
        "A bucket whose uploads trigger a Lambda function (after S3 notification samples)",
        {
            "TriggerRole": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": LAMBDA_TRUST, "Tags": tags("thumbnailer-role")}},
            "Thumbnailer": {"Type": "AWS::Lambda::Function", "Properties": {
                "Handler": "index.handler", "Runtime": "python3.11", "Role": {"Fn::GetAtt": ["TriggerRole", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context):\n    return event\n"}, "Tags": tags("thumbnailer")}},
            "InvokePermission": {"Type": "AWS::Lambda::Permission", "Properties": {
                "FunctionName": {"Ref": "Thumbnailer"}, "Action": "lambda:InvokeFunction",
                "Principal": "s3.amazonaws.com"}},
            "Uploads": {"Type": "AWS::S3::Bucket", "DependsOn": "InvokePermission", "Properties": {
                "NotificationConfiguration": {"LambdaConfigurations": [
                    {"Event": "s3:ObjectCreated:*", "Function": {"Fn::GetAtt": ["Thumbnailer", "Arn"]}}]},
                "Tags": tags("uploads")}},
        },
    ),
    "dns-zone": template(
        "A public hosted zone and its records, nothing else (after Route53_A and Route53_CNAME)",
        {
            "Zone": {"Type": "AWS::Route53::HostedZone", "Properties": {
                "Name": {"Fn::Sub": "${Service}.example."},
                "HostedZoneTags": [{"Key": "service", "Value": {"Ref": "Service"}}]}},
            "Apex": {"Type": "AWS::Route53::RecordSet", "Properties": {
                "HostedZoneId": {"Ref": "Zone"}, "Name": {"Fn::Sub": "${Service}.example."}, "Type": "A",
                "TTL": "300", "ResourceRecords": ["198.51.100.7"]}},
            "Www": {"Type": "AWS::Route53::RecordSet", "Properties": {
                "HostedZoneId": {"Ref": "Zone"}, "Name": {"Fn::Sub": "www.${Service}.example."}, "Type": "CNAME",
                "TTL": "300", "ResourceRecords": [{"Fn::Sub": "${Service}.example."}]}},
        },
    ),
    "git-server": template(
        "A git server in its own VPC with a NAT gateway, reachable from CloudFront's prefix list only "
        "(after the AWS CodeCommit-free git server samples)",
        {
            **network("git", "10.30", 1, nat=True),
            "GitSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
                "GroupDescription": "git over https from CloudFront", "VpcId": {"Ref": "VPC"},
                "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                          "SourcePrefixListId": {"Ref": "CloudFrontPrefixList"}}],
                "Tags": tags("git-https")}},
            "GitServer": instance("git-1", ["GitSecurityGroup"], size="m7i.large", group_ids=True,
                                  subnet={"Ref": "PublicSubnet1"}),
        },
        parameters={"CloudFrontPrefixList": {"Type": "String"}},
    ),
}

if __name__ == "__main__":
    for name, body in TEMPLATES.items():
        (HERE / f"{name}.json").write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
