"""``copy-dns-zones`` against a real PowerDNS (answers checked over DNS), and its mapping of
a real vendor's record listing (Cloudflare, libcloud's recorded responses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dnskit import (
    DKIM,
    LB_HOST,
    NEW,
    OLD,
    DnsLab,
    cloudflare_targets,
    dns_lab,
    example_com,
    example_org,
    manifest,
    provision_outputs,
    record,
    vendor_context,
)

from failover.actions.base import ACTIONS, Action, ActionContext, Change
from failover.actions.base import Params as ActionParams
from failover.dnsnames import REPLACED_SET, same_values
from failover.engine import Backoff, Engine
from failover.engine.journal import RunStatus
from failover.errors import InputError
from failover.playbook import validate_document
from failover.ports import RecordSet
from failover.state import StateStore
from failover.testing.emulators import PowerDns
from failover.yamlio import Document

CopyDnsZones = ACTIONS.get("copy-dns-zones")
Params = CopyDnsZones.Params


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, powerdns: PowerDns) -> Iterator[DnsLab]:
    with dns_lab(tmp_path_factory.mktemp("copy-dns"), powerdns) as started:
        yield started


@pytest.fixture(autouse=True)
def empty_server(lab: DnsLab) -> Iterator[None]:
    yield
    lab.wipe()


def copy(lab: DnsLab, params: Params | None = None, **context: object) -> tuple[dict, ActionContext]:
    ctx = lab.context(**context)
    return CopyDnsZones().apply(ctx, params or Params()), ctx


def test_copies_every_public_zone_and_the_server_answers_with_the_snapshot(lab: DnsLab) -> None:
    outputs, _ = copy(lab)

    assert [(z["zone"], z["created"]) for z in outputs["zones"]] == [("example.com.", True), ("example.org.", True)]
    assert lab.zone_names() == {"example.com.", "example.org."}, "the private zone is not copied by default"
    assert lab.answer("example.com", "MX") == (300, ["10 mail.example.com.", "20 mx.backup.example.net."])
    spf = '"v=spf1 include:_spf.example.net ~all"'
    assert lab.answer("example.com", "TXT") == (300, ['"google-site-verification=abc"', spf])
    assert lab.answer("selector1._domainkey.example.com", "TXT") == (300, [DKIM])
    assert lab.answer("app.example.com") == (60, [OLD["web-1"], OLD["web-2"]])
    assert lab.answer("anything.example.com") == (300, [OLD["web-1"]]), "the wildcard answers"
    assert lab.answer("www.example.com", "CNAME") == (300, [LB_HOST + "."]), "host names are written absolute"
    assert lab.answer("v6.example.com", "AAAA") == (300, ["2001:db8::10"])
    assert lab.answer("example.org", "TXT") == (300, ['"hello world"'])


def test_the_target_writes_its_own_apex_soa_and_ns_and_delegations_are_copied(lab: DnsLab) -> None:
    copy(lab)

    sets = lab.sets("example.com.")
    assert ("example.com.", "NS") not in sets
    _, [soa] = lab.answer("example.com", "SOA")
    assert soa.startswith("a.misconfigured.dns.server.invalid."), "PowerDNS's own SOA"
    assert sets[("dev.example.com.", "NS")] == (300, ["ns1.dev-dns.example.net.", "ns2.dev-dns.example.net."])


def test_aliases_below_the_apex_become_cnames_and_the_apex_alias_is_reported(lab: DnsLab) -> None:
    outputs, _ = copy(lab)

    assert lab.answer("static.example.com", "CNAME") == (60, ["s3-website-us-east-1.amazonaws.com."])
    assert lab.answer("example.com", "A") is None
    [skipped] = outputs["zones"][0]["skipped"]
    assert (skipped["name"], skipped["type"], skipped["values"]) == ("example.com.", "A", [f"dualstack.{LB_HOST}."])
    assert "apex" in skipped["reason"]


def test_copying_again_writes_nothing(lab: DnsLab) -> None:
    copy(lab)
    counting = lab.counting()

    outputs, ctx = copy(lab, counting=counting, run_id="run-2")

    assert sorted(counting.calls) == [("find_zone", "example.com."), ("find_zone", "example.org."),
                                      ("list_records", "example.com."), ("list_records", "example.org.")]
    assert ctx.created == [], "nothing to journal"
    assert all(not z["created"] and z["changed"] == [] and z["unchanged"] > 0 for z in outputs["zones"])


def test_only_the_sets_that_differ_are_written_and_extra_records_are_left_alone(lab: DnsLab) -> None:
    copy(lab)
    lab.put("example.com.",
            RecordSet("www.example.com.", "CNAME", 300, ("elsewhere.example.net.",)),
            RecordSet("added.example.com.", "A", 300, ("203.0.113.7",)))
    counting = lab.counting()

    outputs, _ = copy(lab, counting=counting, run_id="run-2")

    assert counting.writes == [("set_record", "example.com.", "www.example.com.", "CNAME", 300, (LB_HOST + ".",))]
    assert outputs["zones"][0]["changed"] == ["www.example.com. CNAME"]
    assert outputs["zones"][0]["not_in_snapshot"] == ["added.example.com. A"]
    assert lab.answer("added.example.com") == (300, ["203.0.113.7"])


def test_a_ttl_change_alone_is_written(lab: DnsLab) -> None:
    copy(lab)
    lab.put("example.org.", RecordSet("example.org.", "TXT", 3600, ('"hello world"',)))
    counting = lab.counting()

    copy(lab, counting=counting, run_id="run-2")

    assert counting.writes == [("set_record", "example.org.", "example.org.", "TXT", 300, ('"hello world"',))]


def test_undo_deletes_the_zones_the_run_created_and_restores_adopted_ones(lab: DnsLab) -> None:
    lab.put("example.org.",
            RecordSet("example.org.", "A", 120, ("203.0.113.99",)),
            RecordSet("example.org.", "MX", 300, ("5 mx.example.org.",)),
            RecordSet("old.example.org.", "CNAME", 300, ("example.org.",)))
    before = lab.sets("example.org.")
    outputs, ctx = copy(lab)
    assert [(z["zone"], z["created"]) for z in outputs["zones"]] == [("example.com.", True), ("example.org.", False)]
    assert lab.answer("example.org") == (300, [OLD["web-2"]])

    CopyDnsZones().undo(ctx, Params())

    assert lab.zone_names() == {"example.org."}, "the adopted zone stays"
    assert lab.sets("example.org.") == before, "exactly as before: the TXT set the run added is gone"
    assert lab.answer("example.org") == (120, ["203.0.113.99"])
    assert lab.answer("www.example.com", "CNAME") is None

    counting = lab.counting()
    CopyDnsZones().undo(lab.context(counting=counting, created=ctx.created), Params())
    assert counting.writes == [], "undo again: nothing left to do"


def test_sets_of_an_adopted_zone_are_journaled_before_they_change(lab: DnsLab) -> None:
    lab.put("example.org.", RecordSet("example.org.", "A", 120, ("203.0.113.99",)))

    _, ctx = copy(lab, params=Params(zones=["example.org"]))

    journaled = [item for item in ctx.created if item["kind"] == REPLACED_SET]
    assert journaled == [
        {"kind": REPLACED_SET, "id": "example.org. example.org. A", "zone": "example.org.", "name": "example.org.",
         "type": "A", "before": {"ttl": 120, "values": ["203.0.113.99"]}},
        {"kind": REPLACED_SET, "id": "example.org. example.org. TXT", "zone": "example.org.", "name": "example.org.",
         "type": "TXT", "before": None},
    ]


def test_a_resumed_copy_restores_what_was_there_before_the_first_attempt(lab: DnsLab) -> None:
    lab.put("example.org.", RecordSet("example.org.", "A", 120, ("203.0.113.99",)))
    before = lab.sets("example.org.")
    params = Params(zones=["example.org.", "example.com."])
    first = lab.context(counting=lab.counting(fail_after=3))  # example.org.'s A and TXT, the new zone, crash
    with pytest.raises(RuntimeError, match="crash"):
        CopyDnsZones().apply(first, params)

    resumed = lab.context(created=first.created)  # the engine hands a resumed attempt the step's journal
    outputs = CopyDnsZones().apply(resumed, params)

    assert [(z["zone"], z["created"]) for z in outputs["zones"]] == [("example.org.", False), ("example.com.", True)]
    ids = [item["id"] for item in resumed.created]
    assert len(ids) == len(set(ids)), "nothing journaled twice: the first value is the one to restore"
    CopyDnsZones().undo(resumed, params)
    assert lab.zone_names() == {"example.org."}
    assert lab.sets("example.org.") == before


def test_plan_reads_only_and_shows_what_would_change(lab: DnsLab) -> None:
    lab.put("example.org.", RecordSet("example.org.", "A", 120, ("203.0.113.99",)),
            RecordSet("example.org.", "TXT", 300, ('"hello world"',)))
    counting = lab.counting()

    changes = CopyDnsZones().plan(lab.context(counting=counting), Params())

    assert counting.writes == []
    assert lab.zone_names() == {"example.org."}
    lines = {(c.operation, c.kind, c.name): c.detail for c in changes}
    assert lines[("create", "dns_zone", "example.com.")] == "14 record sets"
    assert lines[("create", "record", "www.example.com. CNAME")] == f"{LB_HOST}. (ttl 300)"
    assert lines[("update", "record", "example.org. A")] == f"203.0.113.99 (ttl 120) -> {OLD['web-2']} (ttl 300)"
    assert ("update", "record", "example.org. TXT") not in lines, "already as in the snapshot"
    assert lines[("none", "record", "example.com. A")].startswith("not copied: an alias at the zone apex")


def test_a_drill_copies_under_a_prefix_and_renames_in_zone_targets(lab: DnsLab) -> None:
    outputs, ctx = copy(lab, params=Params(zones=["example.com."], prefix="Drill"))

    assert outputs["zones"][0]["zone"] == "drill.example.com." and outputs["zones"][0]["source"] == "example.com."
    assert lab.zone_names() == {"drill.example.com."}
    assert lab.answer("drill.example.com", "MX") == (300, ["10 mail.drill.example.com.", "20 mx.backup.example.net."])
    assert lab.answer("www.drill.example.com", "CNAME") == (300, [LB_HOST + "."])
    assert lab.answer("x.drill.example.com") == (300, [OLD["web-1"]])

    CopyDnsZones().undo(ctx, Params(zones=["example.com."], prefix="drill"))
    assert lab.zone_names() == set()


def test_a_private_zone_is_copied_only_when_named(lab: DnsLab) -> None:
    copy(lab, params=Params(zones=["internal.example"]))

    assert lab.zone_names() == {"internal.example."}
    assert lab.answer("db.internal.example") == (300, ["10.0.0.5"])


def test_an_unknown_zone_is_an_input_error_before_any_call(lab: DnsLab) -> None:
    counting = lab.counting()
    with pytest.raises(InputError, match=r"nope\.example\. is not a zone of the snapshot"):
        copy(lab, params=Params(zones=["nope.example"]), counting=counting)
    assert counting.writes == []


def test_several_snapshot_records_of_one_set_are_merged(lab: DnsLab) -> None:
    weighted = example_org().model_copy(update={"records": [
        record("example.org.", "A", 300, "203.0.113.1"),
        record("example.org.", "A", 60, "203.0.113.2", "203.0.113.1"),
    ]})

    copy(lab, snapshot=manifest(weighted))

    assert lab.answer("example.org") == (60, ["203.0.113.1", "203.0.113.2"])


def test_a_long_unquoted_text_is_written_as_strings_of_at_most_255_bytes(lab: DnsLab) -> None:
    zone = example_org().model_copy(update={"records": [record("long.example.org.", "TXT", 300, "k=" + "x" * 298)]})

    copy(lab, snapshot=manifest(zone))

    assert lab.answer("long.example.org", "TXT") == (300, [f'"k={"x" * 253}" "{"x" * 45}"'])


@pytest.mark.parametrize(("type", "one", "other"), [
    ("CNAME", "WWW.Example.com", "www.example.com."),
    ("MX", "10 Mail.Example.com", "10 mail.example.com."),
    ("AAAA", "2001:DB8:0:0::1", "2001:db8::1"),
    ("TXT", "v=spf1 -all", '"v=spf1 -all"'),
    ("TXT", '"abc" "def"', '"abcdef"'),
    ("CAA", "0\tissue\tletsencrypt.org", '0 issue "letsencrypt.org"'),
])
def test_spellings_providers_use_for_one_value_compare_equal(type: str, one: str, other: str) -> None:
    assert same_values(type, [one], [other])


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="DNS labels"):
        Params(prefix="not a label")
    assert Params(skip_types=["soa"]).skip_types == ["SOA"]
    assert Params(prefix="drill.eu.").prefix == "drill.eu"


def test_a_vendors_listing_is_compared_by_meaning_not_spelling(tmp_path: Path) -> None:
    """Cloudflare lists CNAME and MX hosts without the trailing dot and TXT unquoted; the
    snapshot (Route53) writes them absolute and quoted: the same sets, nothing to write."""
    z = "example.com."
    zone = example_com().model_copy(update={"records": [
        record(z, "A", 1, "192.30.252.154", "192.30.252.153"),
        record("email.example.com.", "CNAME", 1, "mailgun.org."),
        record(z, "MX", 1, "1 mxa.mailgun.org.", "2 mxb.mailgun.org."),
        record(z, "TXT", 1, '"v=spf1 include:mailgun.org ~all"'),
        record("test1.example.com.", "CAA", 1, '0 issue "test.example.com"'),
        record("foo.example.com.", "CNAME", 300, "foo.com."),  # recorded with TTL 1 (automatic)
        record("new.example.com.", "A", 300, "203.0.113.8"),
    ]})
    with cloudflare_targets(tmp_path) as targets:
        ctx = vendor_context(targets, manifest(zone))
        changes = CopyDnsZones().plan(ctx, Params())

    assert [(c.operation, c.name, c.detail) for c in changes] == [
        ("update", "foo.example.com. CNAME", "foo.com (ttl 1) -> foo.com. (ttl 300)"),
        ("create", "new.example.com. A", "203.0.113.8 (ttl 300)"),
    ]


@ACTIONS.register("test-new-nodes")
class NewNodes(Action):
    """Stands in for provision-nodes in a playbook: its outputs carry web-1's and web-2's new addresses."""

    summary = "Test action: outputs new node addresses as provision-nodes does."
    Params = ActionParams

    def plan(self, ctx: ActionContext, params: ActionParams) -> list[Change]:
        return []

    def apply(self, ctx: ActionContext, params: ActionParams) -> dict:
        return provision_outputs()

    def undo(self, ctx: ActionContext, params: ActionParams) -> None:
        """Nothing was created."""


def test_a_run_copies_cuts_over_and_rolls_back_through_the_engine(lab: DnsLab) -> None:
    lab.put("example.org.", RecordSet("example.org.", "A", 120, ("203.0.113.99",)))
    before = lab.sets("example.org.")
    document = Document(file="playbook.yaml", data={"name": "dns", "vars": {"dns_ttl": 30}, "steps": [
        {"id": "nodes", "action": "test-new-nodes"},
        {"id": "zones", "action": "copy-dns-zones"},
        {"id": "dns", "action": "cutover-dns", "needs": ["nodes", "zones"], "with": {"ttl": "${vars.dns_ttl}"}},
    ]})
    playbook = validate_document(document, config=lab.config, target="fallback")

    with StateStore(lab.config.state_dir) as store:
        store.save_snapshot(manifest())
        engine = Engine(store, lab.config, backoff=Backoff(initial=0.001, maximum=0.01, jitter=0.001))
        run = engine.start(playbook, target="fallback")
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert lab.answer("www.example.com") == (30, sorted(NEW.values()))
        assert lab.answer("example.org") == (30, [NEW["web-2"]])

        rolled_back = engine.rollback(run.id)

    assert rolled_back.status is RunStatus.ROLLED_BACK, rolled_back.error
    assert lab.zone_names() == {"example.org."}, "the zone the run created is gone, the adopted one stays"
    assert lab.sets("example.org.") == before


@pytest.mark.parametrize("prefix", [None, "drill"])  # a drill's copy too
def test_a_set_the_target_refuses_or_that_cannot_be_carried_is_reported_and_the_zone_copied(
    lab: DnsLab, prefix: str | None
) -> None:
    zone = example_org().model_copy(update={"records": [
        *example_org().records,
        record("<script>.example.org.", "A", 300, "203.0.113.66"),
        record("bad.example.org.", "TXT", 300, '"x" ; rm -rf /'),
    ]})
    domain = f"{prefix}.example.org" if prefix else "example.org"

    outputs, _ = copy(lab, Params(prefix=prefix), snapshot=manifest(zone))

    [copied] = outputs["zones"]
    refused = {(item["name"], item["type"]): item["reason"] for item in copied["refused"]}
    assert set(refused) == {(f"<script>.{domain}.", "A"), (f"bad.{domain}.", "TXT")}
    assert "the target refused it" in refused[(f"<script>.{domain}.", "A")]
    assert "not only quoted strings" in refused[(f"bad.{domain}.", "TXT")]
    assert lab.answer(f"bad.{domain}", "TXT") is None  # never rewritten to "x"
    written = [item for item in example_org().records if item.type not in ("SOA", "NS")]
    assert written and copied["unchanged"] == 0 and len(copied["changed"]) == len({(r.name, r.type) for r in written})
    for item in written:  # every other set is on the server
        name = item.name.rstrip(".").replace("example.org", domain)
        assert lab.answer(name, item.type) is not None, item
