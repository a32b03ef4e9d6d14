"""The unsupported collector against moto: tagged Lambda, DynamoDB and SQS are reported."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

SERVICE = {"service": "svc"}
STAGING = {"service": "svc-staging"}
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture
def lambda_role(aws) -> str:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]}
    return aws("iam").create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def make_function(aws, role: str, name: str, tags: dict[str, str] | None = None, region: str = "us-east-1") -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handler.py", "def handle(event, context):\n    return event\n")
    answer = aws("lambda", region).create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": archive.getvalue()},
        Tags=tags or {},
    )
    return answer["FunctionArn"]


def make_table(aws, name: str, tags: dict[str, str] | None = None) -> str:
    answer = aws("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    )
    return answer["TableDescription"]["TableArn"]


def make_queue(aws, name: str, tags: dict[str, str] | None = None) -> str:
    return aws("sqs").create_queue(QueueName=name, tags=tags or {})["QueueUrl"]


def test_tagged_function_table_and_queue_are_unsupported_with_a_reason(aws, lambda_role, inventory):
    function_arn = make_function(aws, lambda_role, "thumbnailer", SERVICE)
    table_arn = make_table(aws, "sessions", {**SERVICE, "Name": "user sessions"})
    queue_url = make_queue(aws, "jobs", SERVICE)

    assert inventory().to_dict()["unsupported"] == [
        {
            "type": "AWS::DynamoDB::Table",
            "id": table_arn,
            "name": "user sessions",
            "region": "us-east-1",
            "reason": "no failover action moves DynamoDB tables; export the data and recreate the table on the target",
        },
        {
            "type": "AWS::Lambda::Function",
            "id": function_arn,
            "name": "thumbnailer",
            "region": "us-east-1",
            "reason": "no failover action moves Lambda functions; redeploy them from source",
        },
        {
            "type": "AWS::SQS::Queue",
            "id": queue_url,
            "name": "jobs",
            "region": "us-east-1",
            "reason": "no failover action moves SQS queues; recreate the queue on the target (messages are not copied)",
        },
    ]
    assert function_arn == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:thumbnailer"
    assert table_arn == f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/sessions"
    assert queue_url.endswith(f"/{ACCOUNT}/jobs")


def test_untagged_and_other_service_resources_are_absent(aws, lambda_role, inventory):
    make_function(aws, lambda_role, "untagged-fn")
    make_function(aws, lambda_role, "staging-fn", STAGING)
    make_table(aws, "untagged-table")
    make_table(aws, "staging-table", STAGING)
    make_queue(aws, "untagged-queue")
    make_queue(aws, "staging-queue", STAGING)
    make_queue(aws, "mine", SERVICE)

    assert [(u["type"], u["name"]) for u in inventory().to_dict()["unsupported"]] == [("AWS::SQS::Queue", "mine")]


def test_each_configured_region_is_searched(aws, lambda_role, inventory):
    make_function(aws, lambda_role, "home-fn", SERVICE)
    make_function(aws, lambda_role, "dublin-fn", SERVICE, region="eu-west-1")

    home_only = inventory(regions=["us-east-1"]).to_dict()["unsupported"]
    both = inventory(regions=["us-east-1", "eu-west-1"]).to_dict()["unsupported"]

    assert [(u["name"], u["region"]) for u in home_only] == [("home-fn", "us-east-1")]
    assert [(u["name"], u["region"]) for u in both] == [("dublin-fn", "eu-west-1"), ("home-fn", "us-east-1")]
