"""Tagged resources no failover action can move: reported, never silently dropped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from failover.manifest import Unsupported
from providers.aws.inventory import Context, Found, name_of, tag_dict

# What a listed resource is, once its tags are known: (id, own name, tags).
Described = tuple[str, str, dict[str, str]]

LAMBDA_REASON = "no failover action moves Lambda functions; redeploy them from source"
DYNAMODB_REASON = "no failover action moves DynamoDB tables; export the data and recreate the table on the target"
SQS_REASON = "no failover action moves SQS queues; recreate the queue on the target (messages are not copied)"


def collect(ctx: Context, region: str) -> Found:
    return Found(unsupported=_lambda_functions(ctx, region) + _dynamodb_tables(ctx, region) + _sqs_queues(ctx, region))


def _lambda_functions(ctx: Context, region: str) -> list[Unsupported]:
    functions = [fn for page in ctx.session.pages("lambda", region, "list_functions") for fn in page["Functions"]]
    described = ctx.map(lambda fn: _describe_function(ctx, region, fn), functions)
    return _selected(ctx, region, "AWS::Lambda::Function", LAMBDA_REASON, described)


def _describe_function(ctx: Context, region: str, fn: dict[str, Any]) -> Described:
    tags = ctx.session.call("lambda", region, "list_tags", Resource=fn["FunctionArn"]).get("Tags", {})
    return fn["FunctionArn"], fn["FunctionName"], tags


def _dynamodb_tables(ctx: Context, region: str) -> list[Unsupported]:
    names = [name for page in ctx.session.pages("dynamodb", region, "list_tables") for name in page["TableNames"]]
    described = ctx.map(lambda name: _describe_table(ctx, region, name), names)
    return _selected(ctx, region, "AWS::DynamoDB::Table", DYNAMODB_REASON, described)


def _describe_table(ctx: Context, region: str, name: str) -> Described:
    arn = ctx.session.call("dynamodb", region, "describe_table", TableName=name)["Table"]["TableArn"]
    pages = ctx.session.pages("dynamodb", region, "list_tags_of_resource", ResourceArn=arn)
    return arn, name, tag_dict(tag for page in pages for tag in page.get("Tags", []))


def _sqs_queues(ctx: Context, region: str) -> list[Unsupported]:
    # SQS pages its answer (and so lists more than 1,000 queues) only when given a page size.
    pages = ctx.session.pages("sqs", region, "list_queues", PaginationConfig={"PageSize": 1000})
    urls = [url for page in pages for url in page.get("QueueUrls", [])]
    described = ctx.map(lambda url: _describe_queue(ctx, region, url), urls)
    return _selected(ctx, region, "AWS::SQS::Queue", SQS_REASON, described)


def _describe_queue(ctx: Context, region: str, url: str) -> Described:
    tags = ctx.session.call("sqs", region, "list_queue_tags", QueueUrl=url).get("Tags", {})
    return url, url.rsplit("/", 1)[-1], tags


def _selected(ctx: Context, region: str, type_: str, reason: str, described: Iterable[Described]) -> list[Unsupported]:
    return [
        Unsupported(type=type_, id=resource_id, name=name_of(tags, own_name), region=region, reason=reason)
        for resource_id, own_name, tags in described
        if ctx.selected(tags)
    ]
