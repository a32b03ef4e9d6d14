"""The Route53 collector against moto: every record set, across pages, names decoded."""

from __future__ import annotations

SERVICE = {"Key": "service", "Value": "svc"}


def make_zone(aws, name: str, tags: list[dict[str, str]] | None = None, **extra) -> str:
    route53 = aws("route53")
    zone_id = route53.create_hosted_zone(Name=name, CallerReference=name, **extra)["HostedZone"]["Id"]
    zone_id = zone_id.removeprefix("/hostedzone/")
    if tags:
        route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, AddTags=tags)
    return zone_id


def upsert(aws, zone_id: str, *record_sets: dict) -> None:
    changes = [{"Action": "UPSERT", "ResourceRecordSet": record_set} for record_set in record_sets]
    aws("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})


def zones(manifest) -> list[dict]:
    return [r for r in manifest.to_dict()["resources"] if r["kind"] == "dns_zone"]


def test_zone_carries_every_record_set_across_pages(aws, inventory):
    zone_id = make_zone(aws, "example.com", [SERVICE, {"Key": "team", "Value": "edge"}])
    hosts = [
        {"Name": f"host{i:03d}.example.com.", "Type": "A", "TTL": 300,
         "ResourceRecords": [{"Value": f"10.0.{i // 250}.{i % 250}"}]}
        for i in range(320)  # list_resource_record_sets answers at most 300 record sets a page
    ]
    upsert(aws, zone_id, *hosts)
    upsert(
        aws,
        zone_id,
        {"Name": "\\052.example.com.", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "example.com"}]},
        {"Name": "example.com.", "Type": "TXT", "TTL": 120, "ResourceRecords": [{"Value": '"v=spf1 -all"'}]},
        {"Name": "example.com.", "Type": "MX", "TTL": 3600,
         "ResourceRecords": [{"Value": "10 mx1.example.com."}, {"Value": "20 mx2.example.com."}]},
        {"Name": "www.example.com.", "Type": "A",
         "AliasTarget": {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": "web-lb-1.us-east-1.elb.amazonaws.com.",
                         "EvaluateTargetHealth": False}},
    )
    first_page = aws("route53").list_resource_record_sets(HostedZoneId=zone_id)
    assert first_page["IsTruncated"]  # the collector must follow the pages

    [zone] = zones(inventory())

    records = zone["records"]
    assert len(records) == 2 + 320 + 4  # SOA, NS, the hosts, the rest
    assert {r["name"] for r in records if r["type"] == "A" and r["name"].startswith("host")} == {
        f"host{i:03d}.example.com." for i in range(320)
    }
    by_key = {(r["name"], r["type"]): r for r in records}
    assert by_key[("host257.example.com.", "A")] == {
        "name": "host257.example.com.", "type": "A", "ttl": 300, "values": ["10.0.1.7"],
    }
    assert by_key[("*.example.com.", "CNAME")] == {
        "name": "*.example.com.", "type": "CNAME", "ttl": 60, "values": ["example.com"],
    }
    assert by_key[("example.com.", "TXT")]["values"] == ['"v=spf1 -all"']
    assert by_key[("example.com.", "MX")]["values"] == ["10 mx1.example.com.", "20 mx2.example.com."]
    assert by_key[("www.example.com.", "A")] == {
        "name": "www.example.com.", "type": "A", "ttl": None, "values": ["web-lb-1.us-east-1.elb.amazonaws.com."],
    }
    ns = by_key[("example.com.", "NS")]
    assert ns["ttl"] is not None and len(ns["values"]) >= 1
    soa = by_key[("example.com.", "SOA")]
    assert soa["ttl"] is not None and len(soa["values"]) == 1
    assert {k: zone[k] for k in ("kind", "id", "name", "region", "tags", "private")} == {
        "kind": "dns_zone",
        "id": zone_id,
        "name": "example.com.",
        "region": "global",
        "tags": {"service": "svc", "team": "edge"},
        "private": False,
    }


def test_values_are_copied_as_route53_returns_them(aws, inventory):
    zone_id = make_zone(aws, "copy.example.", [SERVICE])
    listed = aws("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]

    [zone] = zones(inventory())

    assert sorted((r["name"], r["type"], r["ttl"], r["values"]) for r in zone["records"]) == sorted(
        (rs["Name"], rs["Type"], rs["TTL"], [rr["Value"] for rr in rs["ResourceRecords"]]) for rs in listed
    )


def test_private_zone_is_flagged(aws, inventory):
    make_zone(
        aws,
        "internal.example.",
        [SERVICE],
        HostedZoneConfig={"PrivateZone": True, "Comment": "inside"},
        VPC={"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"},
    )

    assert [(z["name"], z["private"]) for z in zones(inventory())] == [("internal.example.", True)]


def test_only_zones_carrying_the_selector_tags_across_tag_batches(aws, inventory):
    # list_tags_for_resources takes ten zones a request: thirteen zones need two requests,
    # and with eleven of them selected, each request answers for some.
    for i in range(11):
        make_zone(aws, f"zone{i:02d}.example.", [SERVICE])
    make_zone(aws, "staging.example.", [{"Key": "service", "Value": "svc-staging"}])
    make_zone(aws, "untagged.example.")

    assert sorted(z["name"] for z in zones(inventory())) == [f"zone{i:02d}.example." for i in range(11)]
