"""ACM certificates: the names they cover, their status and when they expire."""

from __future__ import annotations

from datetime import UTC, datetime

from failover.manifest import Certificate
from providers.aws.inventory import Context, Found, name_of, tag_dict

# ACM lists only RSA-1024/2048 certificates unless asked for every key type.
ALL_STATUSES = ["PENDING_VALIDATION", "ISSUED", "INACTIVE", "EXPIRED", "VALIDATION_TIMED_OUT", "REVOKED", "FAILED"]
ALL_KEY_TYPES = [
    "RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1",
]


def collect(ctx: Context, region: str) -> Found:
    pages = ctx.session.pages(
        "acm", region, "list_certificates", CertificateStatuses=ALL_STATUSES, Includes={"keyTypes": ALL_KEY_TYPES}
    )
    arns = [summary["CertificateArn"] for page in pages for summary in page["CertificateSummaryList"]]
    certificates = ctx.map(lambda arn: _certificate(ctx, region, arn), arns)
    return Found(resources=[certificate for certificate in certificates if certificate is not None])


def _certificate(ctx: Context, region: str, arn: str) -> Certificate | None:
    tags = tags_of(ctx, region, arn)
    return described(ctx, region, arn, tags) if ctx.selected(tags) else None


def tags_of(ctx: Context, region: str, arn: str) -> dict[str, str]:
    return tag_dict(ctx.session.call("acm", region, "list_tags_for_certificate", CertificateArn=arn).get("Tags"))


def described(ctx: Context, region: str, arn: str, tags: dict[str, str], owned: bool = True) -> Certificate:
    details = ctx.session.call("acm", region, "describe_certificate", CertificateArn=arn)["Certificate"]
    return Certificate(
        id=arn,
        name=name_of(tags, details["DomainName"]),
        region=region,
        tags=tags,
        domains=list(dict.fromkeys([details["DomainName"], *details.get("SubjectAlternativeNames", [])])),
        status=details.get("Status"),
        not_after=_utc_iso(details.get("NotAfter")),
        owned=owned,
    )


def _utc_iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
