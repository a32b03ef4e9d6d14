"""``unsupported-acknowledged``: unsupported resources in the snapshot fail the check until the
config accepts their types."""

from __future__ import annotations

from checkkit import Kit, manifest

from failover.manifest import Unsupported


def left(type_: str, resource_id: str) -> Unsupported:
    return Unsupported(type=type_, id=resource_id, region="us-east-1", reason="no failover action moves it")


def snapshot_with(kit: Kit, *unsupported: Unsupported) -> None:
    """The only snapshot (two taken in one second have no order between them)."""
    kit.store.save_snapshot(manifest().model_copy(update={"unsupported": list(unsupported)}))


def test_nothing_left_behind_passes(kit: Kit) -> None:
    kit.snapshot()
    result = kit.run("unsupported-acknowledged")
    assert result.status == "pass", result.detail
    assert result.data["left_behind"] == {}


def test_unacknowledged_types_fail_naming_each_type_and_count(kit: Kit) -> None:
    snapshot_with(kit, left("AWS::EC2::RouteTable", "rtb-1"), left("AWS::EC2::RouteTable", "rtb-2"),
                  left("AWS::SNS::Topic", "arn:aws:sns:us-east-1:1:alerts"))
    result = kit.run("unsupported-acknowledged")
    assert result.status == "fail"
    assert "AWS::EC2::RouteTable (2)" in result.detail and "AWS::SNS::Topic (1)" in result.detail
    assert "readiness.accept_unsupported" in result.detail
    assert result.data["left_behind"] == {"AWS::EC2::RouteTable": 2, "AWS::SNS::Topic": 1}
    assert result.data["unacknowledged"] == {"AWS::EC2::RouteTable": 2, "AWS::SNS::Topic": 1}

    kit.write(readiness={"accept_unsupported": ["AWS::SNS::Topic"]})
    partly = kit.run("unsupported-acknowledged")
    assert partly.status == "fail" and partly.data["unacknowledged"] == {"AWS::EC2::RouteTable": 2}
    assert "AWS::SNS::Topic" not in partly.detail

    kit.write(readiness={"accept_unsupported": ["AWS::SNS::Topic", "AWS::EC2::RouteTable"]})
    accepted = kit.run("unsupported-acknowledged")
    assert accepted.status == "pass", accepted.detail
    assert accepted.detail == "3 resources left behind, every type accepted"
