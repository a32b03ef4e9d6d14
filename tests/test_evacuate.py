"""The parts of ``failover evacuate`` that need no emulator: the deadline, the order of the
buckets, the estimate against the deadline, the page-by-page diff and the spool that gives the
newest objects first. The command itself: tests/cli/test_evacuate_cli.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from failover.errors import InputError
from failover.evacuate.deadline import Rate, RateMeter, estimate, parse_deadline
from failover.evacuate.listing import BucketDiff, Spool, diff_into
from failover.evacuate.order import bucket_order
from failover.manifest import Bucket
from failover.ports import ObjectInfo
from failover.replicate.buckets import OutOfOrder
from failover.state import ReplicaObject

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "after"), [
    ("20h", timedelta(hours=20)), ("90m", timedelta(minutes=90)), ("1h30m", timedelta(hours=1, minutes=30)),
    ("45s", timedelta(seconds=45)), ("2d", timedelta(days=2)), ("2026-12-07T09:00:00+01:00", timedelta(hours=20)),
    ("2026-12-07T08:00:00Z", timedelta(hours=20)),
])
def test_a_deadline_is_a_time_with_its_offset_or_a_duration(text: str, after: timedelta) -> None:
    assert parse_deadline(text, now=NOW) == NOW + after


@pytest.mark.parametrize(("text", "why"), [
    ("2026-12-07T08:00:00", "needs its offset"), ("tomorrow", "neither"), ("", "neither"),
    ("2026-12-06T11:00:00Z", "has passed"),
])
def test_a_deadline_that_is_not_one_is_an_input_error(text: str, why: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_deadline(text, now=NOW)
    assert raised.value.exit_code == 2
    assert "--deadline" in str(raised.value) and why in str(raised.value)


def _bucket(name: str, size: int) -> Bucket:
    return Bucket(id=name, name=name, region="us-east-1", objects=1, bytes=size, versioning=False)


def test_buckets_go_in_priority_order_then_smallest_first() -> None:
    buckets = [_bucket("logs", 900), _bucket("media-eu", 50), _bucket("avatars", 10), _bucket("db-exports", 500),
               _bucket("media-us", 5), _bucket("tmp", 1)]

    ordered = [item.id for item in bucket_order(buckets, ["db-exports", "media-*"])]

    assert ordered == ["db-exports", "media-eu", "media-us", "tmp", "avatars", "logs"]


def test_the_estimate_names_the_buckets_that_will_not_make_it_in_their_order() -> None:
    rate = Rate(bytes_per_s=1000, objects_per_s=10)  # 100 s left: 100 kB or 1,000 objects
    left = [("first", 10, 50_000), ("second", 100, 40_000), ("third", 20, 20_000), ("fourth", 5, 5_000)]

    guess = estimate(left, rate, NOW + timedelta(seconds=100), now=NOW)

    assert guess.eta == NOW + timedelta(seconds=115)
    assert guess.margin_s == -15
    assert [item.bucket for item in guess.shortfall] == ["third", "fourth"]
    third = guess.shortfall[0]
    assert (third.bytes, third.objects, third.bytes_left, third.objects_left) == (10_000, 10, 20_000, 20)
    assert (guess.shortfall[1].bytes, guess.shortfall[1].objects) == (5_000, 5)


def test_small_objects_are_bound_by_requests_not_bytes() -> None:
    guess = estimate([("tiny", 1000, 1000)], Rate(bytes_per_s=1_000_000, objects_per_s=10),
                     NOW + timedelta(seconds=60), now=NOW)
    assert guess.eta == NOW + timedelta(seconds=100)
    assert [(item.bucket, item.objects) for item in guess.shortfall] == [("tiny", 400)]


def test_on_time_there_is_no_shortfall_and_nothing_left_is_done_now() -> None:
    assert estimate([("a", 1, 10)], Rate(10, 1), NOW + timedelta(seconds=60), now=NOW).shortfall == ()
    assert estimate([("a", 0, 0)], None, NOW + timedelta(seconds=60), now=NOW).eta == NOW
    assert estimate([("a", 1, 10)], None, NOW + timedelta(seconds=60), now=NOW).eta is None


def test_the_rate_is_over_the_last_window_and_a_pause_is_not_part_of_it() -> None:
    clock = [0.0]
    meter = RateMeter(window=10, clock=lambda: clock[0])
    meter.start()
    assert meter.rate() is None
    for _ in range(20):  # 20 s at 100 B/s
        clock[0] += 1
        meter.add(1, 100)
    for _ in range(10):  # then 10 s at 1,000 B/s: the window sees only those
        clock[0] += 1
        meter.add(1, 1000)
    assert meter.rate().bytes_per_s == pytest.approx(1000, rel=0.15)
    clock[0] += 3600  # between two passes
    meter.start()
    clock[0] += 2
    meter.add(2, 200)
    assert meter.rate() == Rate(100, 1)


def _info(key: str, size: int = 3, etag: str = "0" * 32, when: datetime | None = None) -> ObjectInfo:
    return ObjectInfo(key=key, size=size, hash=etag, md5=etag, modified=when)


def test_the_diff_goes_through_diff_pages_and_counts_adopted_refused_and_unchanged() -> None:
    source = [_info("a"), _info("b"), _info("c", etag="1" * 32), _info("d"), _info("e/../x"), _info("f"),
              _info("g")]
    target = [_info("b"), _info("c"), _info("d"), _info("g", etag="2" * 32), _info("zz")]
    records = [ReplicaObject("b", "0" * 32, 3, "0" * 32, None, "t"), ReplicaObject("c", "0" * 32, 3, "0" * 32, None, "t"),
               ReplicaObject("y", "0" * 32, 3, "0" * 32, None, "t")]
    copied: list[str] = []
    adopted: list[list[str]] = []

    diff = diff_into(
        source, target, records, diff=BucketDiff("bucket", "container"), page=2,
        refuse=lambda key: "a '..' segment" if ".." in key else None, to_copy=lambda item: copied.append(item.key),
        adopt=lambda copies: adopted.append([copy.key for copy in copies]),
    )

    assert copied == ["a", "c", "f", "g"]  # new, changed on the source, new, differing on the target
    assert adopted == [["d"]]  # on the target as the source has it, unrecorded: recorded with its window
    assert (diff.objects, diff.bytes, diff.unchanged, diff.adopted, diff.to_copy, diff.to_copy_bytes) == \
        (7, 21, 1, 1, 4, 12)
    assert diff.refused == {"e/../x": "a '..' segment"}


@pytest.mark.parametrize("side", ["source", "target"])
def test_a_listing_out_of_key_order_cannot_be_diffed_page_by_page(side: str) -> None:
    backwards, forwards = [_info("b"), _info("a")], [_info("a"), _info("b")]
    listings = {"source": forwards, "target": forwards, side: backwards}
    with pytest.raises(OutOfOrder, match="not in key order"):
        diff_into(listings["source"], listings["target"], [], diff=BucketDiff("b", "c"), refuse=lambda key: None,
                  to_copy=lambda item: None, adopt=lambda copies: None)


def test_the_spool_gives_the_newest_objects_first_and_sorts_what_is_not_in_key_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    try:
        for index, key in enumerate(["old", "new", "middle", "timeless", "newest"]):
            when = None if key == "timeless" else NOW + timedelta(seconds={"old": 0, "middle": 5, "new": 10,
                                                                         "newest": 20}[key])
            spool.add("copy:b", _info(key, size=index, when=when))
        spool.add("copy:other", _info("elsewhere", when=NOW + timedelta(days=1)))

        batches = list(spool.newest_first("copy:b", batch=2))

        assert [[item.key for item in batch] for batch in batches] == [["newest", "new"], ["middle", "old"], ["timeless"]]
        assert batches[0][0].modified == NOW + timedelta(seconds=20) and batches[0][0].size == 4
        assert [item.key for item in spool.sorted_by_key("target:b", [_info("é"), _info("b"), _info("B")])] == \
            ["B", "b", "é"]
    finally:
        spool.close()
    assert not (tmp_path / "spool.sqlite").exists()


def test_the_records_are_read_in_key_order_a_page_at_a_time(tmp_path: Path) -> None:
    from failover.evacuate.listing import recorded_totals
    from failover.state import StateStore

    keys = [f"k{index:05d}" for index in range(2500)] + ["é", "Z", "a/b"]
    with StateStore(tmp_path / "state") as store:
        store.save_replica_objects("svc", "t", "c", [ReplicaObject(key, "e", 2, "m", None, "now") for key in keys])
        store.save_replica_objects("svc", "t", "other", [ReplicaObject("zzz", "e", 1, "m", None, "now")])
        queries = []
        original = store.query
        store.query = lambda sql, params=(): queries.append(sql) or original(sql, params)  # type: ignore[method-assign]

        read = [item.key for item in store.iter_replica_objects("svc", "t", "c", page=1000)]

        assert read == sorted(keys) and len(queries) == 3
        assert recorded_totals(store, "svc", "t", "c") == (2503, 5006)
