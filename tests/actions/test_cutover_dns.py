"""``cutover-dns`` against a real PowerDNS holding the copied zones: the answers over DNS
after the cutover, the records that cannot move, an exact undo, and a second apply that
writes nothing. Plus the plan against a vendor's recorded answers (Cloudflare)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dnskit import (
    LB_HOST,
    NEW,
    OLD,
    DnsLab,
    cloudflare_targets,
    dns_lab,
    example_com,
    manifest,
    node,
    provision_outputs,
    record,
    vendor_context,
)

from failover.actions.base import ACTIONS
from failover.errors import OperationFailed
from failover.testing.emulators import PowerDns

CopyDnsZones = ACTIONS.get("copy-dns-zones")
CutoverDns = ACTIONS.get("cutover-dns")
Params = CutoverDns.Params
BOTH = sorted(NEW.values())
NOBODYS = "no node or Elastic IP of the snapshot has this address"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, powerdns: PowerDns) -> Iterator[DnsLab]:
    with dns_lab(tmp_path_factory.mktemp("cutover-dns"), powerdns) as started:
        yield started


@pytest.fixture(autouse=True)
def copied(lab: DnsLab) -> Iterator[None]:
    """The snapshot's public zones, copied to the target as copy-dns-zones does."""
    CopyDnsZones().apply(lab.context(step_id="copy"), CopyDnsZones.Params())
    yield
    lab.wipe()


def cut_over(lab: DnsLab, params: Params | None = None, **context: object) -> tuple[dict, object]:
    context.setdefault("outputs", {"nodes": provision_outputs()})
    ctx = lab.context(**context)
    return CutoverDns().apply(ctx, params or Params(ttl=45)), ctx


def test_names_answer_with_the_new_addresses_and_the_steps_ttl(lab: DnsLab) -> None:
    cut_over(lab)

    assert lab.answer("example.com") == (45, BOTH), "the apex alias to the load balancer"
    assert lab.answer("www.example.com") == (45, BOTH), "the CNAME to the load balancer"
    assert lab.answer("www.example.com", "CNAME") is None
    assert lab.answer("app.example.com") == (45, BOTH), "two nodes' public IPs"
    assert lab.answer("legacy.example.com") == (45, [NEW["web-2"]]), "an Elastic IP attached to web-2"
    assert lab.answer("anything.example.com") == (45, [NEW["web-1"]]), "the wildcard"
    assert lab.answer("example.org") == (45, [NEW["web-2"]])


def test_what_cannot_move_is_left_as_it_is_and_reported(lab: DnsLab) -> None:
    outputs, _ = cut_over(lab)

    unmoved = {(u["name"], u["type"]): (u["values"], u["reason"]) for u in outputs["unmoved"]}
    assert set(unmoved) == {
        ("worker.example.com.", "A"), ("mail.example.com.", "A"), ("v6.example.com.", "AAAA"),
        ("cdn.example.com.", "CNAME"), ("static.example.com.", "A"),
    }
    assert unmoved[("mail.example.com.", "A")] == (["203.0.113.50"], NOBODYS)
    assert unmoved[("worker.example.com.", "A")][1].startswith("node worker (i-worker) has no new address")
    assert "cloudfront.net" in unmoved[("cdn.example.com.", "CNAME")][1]
    assert lab.answer("mail.example.com") == (300, ["203.0.113.50"])
    assert lab.answer("worker.example.com") == (300, [OLD["worker"]])
    assert lab.answer("v6.example.com", "AAAA") == (300, ["2001:db8::10"])
    assert lab.answer("cdn.example.com", "CNAME") == (300, ["d111111abcdef8.cloudfront.net."])
    assert lab.answer("static.example.com", "CNAME") == (60, ["s3-website-us-east-1.amazonaws.com."])
    assert lab.answer("docs.example.com", "CNAME") == (300, ["example.github.io."]), "not AWS: not touched"
    assert lab.answer("example.com", "MX") == (300, ["10 mail.example.com.", "20 mx.backup.example.net."])


def test_outputs_say_what_changed_from_what_to_what(lab: DnsLab) -> None:
    outputs, _ = cut_over(lab)

    changed = {(c["zone"], c["name"], c["type"]): (c["before"], c["after"], c["ttl"]) for c in outputs["changed"]}
    assert changed == {
        ("example.com.", "example.com.", "A"): ([], BOTH, 45),
        ("example.com.", "www.example.com.", "CNAME"): ([LB_HOST + "."], [], 45),
        ("example.com.", "www.example.com.", "A"): ([], BOTH, 45),
        ("example.com.", "app.example.com.", "A"): ([OLD["web-1"], OLD["web-2"]], BOTH, 45),
        ("example.com.", "legacy.example.com.", "A"): ([OLD["web-2-eip"]], [NEW["web-2"]], 45),
        ("example.com.", "*.example.com.", "A"): ([OLD["web-1"]], [NEW["web-1"]], 45),
        ("example.org.", "example.org.", "A"): ([OLD["web-2"]], [NEW["web-2"]], 45),
    }


def test_a_second_apply_writes_nothing(lab: DnsLab) -> None:
    cut_over(lab)
    counting = lab.counting()

    outputs, ctx = cut_over(lab, counting=counting, run_id="run-2")

    assert counting.writes == []
    assert outputs["changed"] == [] and ctx.created == []
    assert len(outputs["unmoved"]) == 5, "still reported"


def test_undo_restores_every_set_exactly(lab: DnsLab) -> None:
    before = {zone: lab.sets(zone) for zone in ("example.com.", "example.org.")}
    _, ctx = cut_over(lab)

    CutoverDns().undo(ctx, Params(ttl=45))

    assert {zone: lab.sets(zone) for zone in before} == before
    assert lab.answer("www.example.com", "CNAME") == (300, [LB_HOST + "."])
    assert lab.answer("app.example.com") == (60, [OLD["web-1"], OLD["web-2"]])
    assert lab.answer("example.com") is None, "the apex had no A set"

    counting = lab.counting()
    CutoverDns().undo(lab.context(counting=counting, created=ctx.created), Params(ttl=45))
    assert counting.writes == [], "undo again: nothing left to do"


def test_a_resumed_cutover_undoes_to_the_values_before_the_first_attempt(lab: DnsLab) -> None:
    before = lab.sets("example.com.")
    outputs = {"nodes": provision_outputs()}
    # The first attempt deletes the CNAME, sets the apex's A set, and crashes.
    first = lab.context(outputs=outputs, counting=lab.counting(fail_after=2))
    with pytest.raises(RuntimeError, match="crash"):
        CutoverDns().apply(first, Params(ttl=45))
    midway = lab.sets("example.com.")
    assert ("www.example.com.", "CNAME") not in midway and ("www.example.com.", "A") not in midway

    resumed = lab.context(outputs=outputs, created=first.created)
    result = CutoverDns().apply(resumed, Params(ttl=45))
    assert lab.answer("www.example.com") == (45, BOTH)
    assert len(result["changed"]) == 7, "the earlier attempt's changes are reported too"

    CutoverDns().undo(resumed, Params(ttl=45))
    assert lab.sets("example.com.") == before


def test_plan_shows_each_change_and_writes_nothing(lab: DnsLab) -> None:
    counting = lab.counting()

    changes = CutoverDns().plan(lab.context(counting=counting, outputs={"nodes": provision_outputs()}), Params(ttl=45))

    assert counting.writes == []
    lines = {(c.operation, c.name): c.detail for c in changes}
    old, new = f"{OLD['web-1']}, {OLD['web-2']}", ", ".join(BOTH)
    assert lines[("update", "app.example.com. A")] == f"{old} (ttl 60) -> {new} (ttl 45)"
    assert lines[("delete", "www.example.com. CNAME")] == f"{LB_HOST}. -> (deleted)"
    assert lines[("create", "www.example.com. A")] == f"{', '.join(BOTH)} (ttl 45)"
    assert lines[("none", "mail.example.com. A")] == f"left as it is: {NOBODYS}"
    assert lab.answer("app.example.com") == (60, [OLD["web-1"], OLD["web-2"]])


def test_plan_before_the_nodes_exist_names_the_nodes_whose_addresses_will_be_used(lab: DnsLab) -> None:
    changes = CutoverDns().plan(lab.context(outputs={}), Params(ttl=45))

    lines = {(c.operation, c.name): c.detail for c in changes}
    expected = f"{OLD['web-2-eip']} (ttl 300) -> <new address of web-2> (ttl 45)"
    assert lines[("update", "legacy.example.com. A")] == expected


def test_the_addresses_come_from_any_needed_step_with_nodes_or_addresses(lab: DnsLab) -> None:
    web = provision_outputs()
    only_nodes = {"nodes": web["nodes"]}
    outputs = {"data": {"synced": 3}, "web": only_nodes}

    cut_over(lab, outputs=outputs)

    assert lab.answer("app.example.com") == (45, BOTH)


def test_nodes_from_picks_the_steps_to_read(lab: DnsLab) -> None:
    outputs = {"web": provision_outputs("web-1"), "other": provision_outputs("web-2")}

    result, _ = cut_over(lab, params=Params(ttl=45, nodes_from=["web"]), outputs=outputs)

    assert lab.answer("app.example.com") == (45, [NEW["web-1"], OLD["web-2"]]), "web-2's address stays: not read"
    assert ("app.example.com.", [OLD["web-2"]]) in [(u["name"], u["values"]) for u in result["unmoved"]]
    assert lab.answer("www.example.com") == (45, [NEW["web-1"]]), "the load balancer's target that moved"


@pytest.mark.parametrize(("outputs", "nodes_from", "message"), [
    ({}, None, "no new node addresses"),
    ({"data": {"synced": 3}}, None, "no new node addresses"),
    ({"nodes": provision_outputs()}, ["web"], "step 'web' has no node addresses in its outputs (has it run?"),
    ({"a": provision_outputs(), "b": {"addresses": {"i-web1": "192.0.2.99"}}}, None, "different new addresses"),
])
def test_without_usable_addresses_nothing_is_written(
    lab: DnsLab, outputs: dict, nodes_from: list | None, message: str
) -> None:
    counting = lab.counting()

    with pytest.raises(OperationFailed, match=message.replace("(", r"\(").replace("?", r"\?")):
        cut_over(lab, params=Params(ttl=45, nodes_from=nodes_from), outputs=outputs, counting=counting)

    assert counting.writes == []


def test_a_zone_not_on_the_target_fails_before_any_write(lab: DnsLab) -> None:
    lab.dns.delete_zone(lab.dns.find_zone("example.org."))
    counting = lab.counting()

    with pytest.raises(OperationFailed, match=r"zones not on the target: example\.org\.: copy them first"):
        cut_over(lab, counting=counting)

    assert counting.writes == []


def test_a_drill_cuts_over_the_copy_under_its_prefix(lab: DnsLab) -> None:
    CopyDnsZones().apply(lab.context(step_id="copy"), CopyDnsZones.Params(zones=["example.com."], prefix="drill"))

    cut_over(lab, params=Params(ttl=45, zones=["example.com."], prefix="drill"))

    assert lab.answer("www.drill.example.com") == (45, BOTH)
    assert lab.answer("www.example.com", "CNAME") == (300, [LB_HOST + "."]), "the real zone is not touched"


def test_a_vendors_listing_gives_the_before_values(tmp_path: Path) -> None:
    """Cloudflare's recorded zone: its apex A set holds two nodes' old public IPs."""
    z = "example.com."
    zone = example_com().model_copy(update={"records": [
        record(z, "A", 1, "192.30.252.153", "192.30.252.154"),
        record("email.example.com.", "CNAME", 1, "mailgun.org."),
    ]})
    snapshot = manifest(zone).model_copy(update={"resources": [
        node("i-web1", "web-1", "192.30.252.153"), node("i-web2", "web-2", "192.30.252.154"), zone,
    ]})
    with cloudflare_targets(tmp_path) as targets:
        changes = CutoverDns().plan(vendor_context(targets, snapshot, {"nodes": provision_outputs()}), Params(ttl=60))

    assert [(c.operation, c.name, c.detail) for c in changes] == [
        ("update", "example.com. A", f"192.30.252.153, 192.30.252.154 (ttl 1) -> {', '.join(BOTH)} (ttl 60)"),
    ]
