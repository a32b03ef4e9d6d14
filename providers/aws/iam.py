"""IAM (global): roles that carry the selector's tags. No failover action moves them; the
inventory reports them as unsupported."""

from __future__ import annotations

from typing import Any

from providers.aws.inventory import HOME_REGION, Context, Found, tag_dict
from providers.aws.tagged import Tagged


def collect(ctx: Context, region: None) -> Found:
    return Found(tagged=_roles(ctx))


def _roles(ctx: Context) -> list[Tagged]:
    region = HOME_REGION
    roles = [role for page in ctx.session.pages("iam", region, "list_roles") for role in page.get("Roles", [])]
    tagged = ctx.map(lambda role: (role, _role_tags(ctx, region, role)), roles)
    return [
        Tagged("AWS::IAM::Role", role["Arn"], None, tags.get("Name")) for role, tags in tagged if ctx.selected(tags)
    ]


def _role_tags(ctx: Context, region: str, role: dict[str, Any]) -> dict[str, str]:
    if "Tags" in role:  # moto answers them in the listing; AWS does not
        return tag_dict(role["Tags"])
    pages = ctx.session.pages("iam", region, "list_role_tags", RoleName=role["RoleName"])
    return tag_dict(tag for page in pages for tag in page.get("Tags", []))
