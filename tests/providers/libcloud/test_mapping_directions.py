"""Size mapping in every direction between DigitalOcean, Linode, Vultr and EC2, on the size
catalogues of their real libcloud drivers (libcloud's recorded responses; EC2's is the price
list libcloud ships), by vCPUs, memory and CPU architecture.

A node of one provider is what a source adapter makes of one of its sizes: the size's id as
its ``instance_type``, its vCPUs, memory and architecture.
"""

from __future__ import annotations

import itertools

import pytest

from failover.manifest import Node
from failover.mapping import Unmappable, choose_size, size_architecture
from failover.ports import SizeInfo
from failover.testing.libcloud_fixtures import RECORDED_COMPUTE, recorded_sizes
from providers.libcloud.catalog import to_size_info

PROVIDERS = tuple(RECORDED_COMPUTE)


@pytest.fixture(scope="module")
def catalogues() -> dict[str, list[SizeInfo]]:
    return {provider: [to_size_info(size, provider) for size in recorded_sizes(provider)] for provider in PROVIDERS}


def node_of(size: SizeInfo) -> Node:
    return Node(
        id=f"node-{size.id}", name=f"node-{size.id}", region="source", instance_type=size.id, vcpus=size.vcpus,
        memory_mib=size.ram_mib, image_id=None, image_name=None, architecture=size_architecture(size),
        private_ip=None, public_ip=None, user_data=None, state="running",
    )


def size(catalogue: list[SizeInfo], size_id: str) -> SizeInfo:
    return next(s for s in catalogue if s.id == size_id)


def mapped(catalogues: dict[str, list[SizeInfo]], source: str, size_id: str, target: str) -> SizeInfo:
    return choose_size(node_of(size(catalogues[source], size_id)), catalogues[target], {})[0]


def test_the_recorded_catalogues_state_vcpus_and_memory_of_every_size(catalogues: dict[str, list[SizeInfo]]) -> None:
    assert {p: len(c) for p, c in catalogues.items()} == {"digitalocean": 2, "linode": 28, "vultr": 25, "ec2": 800}
    assert all(s.vcpus and s.ram_mib for c in catalogues.values() for s in c)
    architectures = {p: sorted({size_architecture(s) for s in c}) for p, c in catalogues.items()}
    assert architectures == {"digitalocean": ["x86_64"], "linode": ["x86_64"], "vultr": ["x86_64"],
                             "ec2": ["arm64", "x86_64"]}


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(PROVIDERS, 2)))
def test_every_size_maps_onto_a_large_enough_size_of_its_architecture_or_says_why(
    catalogues: dict[str, list[SizeInfo]], source: str, target: str
) -> None:
    outcomes = {"mapped": 0, "refused": 0}
    for source_size in catalogues[source]:
        node = node_of(source_size)
        try:
            chosen, why = choose_size(node, catalogues[target], {})
        except Unmappable as exc:
            outcomes["refused"] += 1
            assert f">= {node.vcpus} vCPUs and {node.memory_mib} MiB" in str(exc)
            fits = [s for s in catalogues[target] if s.vcpus >= node.vcpus and s.ram_mib >= node.memory_mib
                     and size_architecture(s) == node.architecture]
            # Refused only when no size of the architecture is large enough, or the only ones are burstable.
            assert all(s.extra.get("burstable") or s.id[:2] in ("t2", "t3", "t4") for s in fits), (source_size.id, exc)
            continue
        outcomes["mapped"] += 1
        assert chosen.vcpus >= node.vcpus and chosen.ram_mib >= node.memory_mib, (source_size.id, chosen.id)
        assert size_architecture(chosen) == node.architecture, (source_size.id, chosen.id)
        assert why.startswith(("cheapest of", "the only size with"))
    assert outcomes["mapped"] > 0, outcomes


@pytest.mark.parametrize(
    ("source", "size_id", "target", "expected"),
    [
        ("digitalocean", "1gb", "ec2", "c6a.large"),  # 2 vCPUs, 1 GiB: the cheapest steady 2-vCPU type
        ("linode", "g6-standard-2", "ec2", "c6a.large"),
        ("vultr", "vc2-4c-8gb", "ec2", "c6a.xlarge"),
        ("ec2", "m5.large", "linode", "g6-standard-4"),  # 8 GiB needs Linode's 4-vCPU plan
        ("ec2", "t3.medium", "linode", "g6-standard-2"),
        ("ec2", "r6i.large", "linode", "g7-highmem-1"),
        ("ec2", "c5.xlarge", "vultr", "vc2-4c-8gb"),
        ("linode", "g6-nanode-1", "digitalocean", "1gb"),
        ("vultr", "vc2-2c-4gb", "linode", "g6-standard-2"),
    ],
)
def test_sizes_map_across_providers(
    catalogues: dict[str, list[SizeInfo]], source: str, size_id: str, target: str, expected: str
) -> None:
    assert mapped(catalogues, source, size_id, target).id == expected


def test_an_arm64_node_maps_only_onto_an_arm64_size(catalogues: dict[str, list[SizeInfo]]) -> None:
    graviton = node_of(size(catalogues["ec2"], "m6g.large"))
    assert graviton.architecture == "arm64"

    small_graviton = node_of(size(catalogues["ec2"], "t4g.micro"))  # 2 vCPUs, 1 GiB: DigitalOcean's "1gb" is as large
    for node, target in ((graviton, "linode"), (graviton, "vultr"), (small_graviton, "digitalocean")):
        with pytest.raises(Unmappable, match=r"for arm64 \(\d+ sizes would do but run x86_64"):
            choose_size(node, catalogues[target], {})
    # onto EC2 again (a second AWS account): an arm64 type, never a cheaper x86 one
    chosen = mapped(catalogues, "ec2", "m6g.large", "ec2")
    assert size_architecture(chosen) == "arm64" and chosen.vcpus >= 2 and chosen.ram_mib >= 8192
    assert mapped(catalogues, "ec2", "m5.large", "ec2").extra.get("architecture") is None  # x86_64


def test_a_sizes_override_moves_an_arm64_node_onto_x86_on_purpose(catalogues: dict[str, list[SizeInfo]]) -> None:
    graviton = node_of(size(catalogues["ec2"], "m6g.large"))
    chosen, why = choose_size(graviton, catalogues["linode"], {"m6g.large": "g6-standard-4"})
    assert (chosen.id, why) == ("g6-standard-4", "override sizes[m6g.large]")


def test_a_previous_generation_type_only_when_no_current_one_fits(catalogues: dict[str, list[SizeInfo]]) -> None:
    ec2 = catalogues["ec2"]
    old = size(ec2, "m1.small")
    assert old.extra.get("previous_generation") is True
    node = node_of(size(catalogues["digitalocean"], "512mb"))  # 1 vCPU, 512 MiB

    chosen = choose_size(node, ec2, {})[0]

    assert not chosen.extra.get("previous_generation")
    assert old.price_hourly < chosen.price_hourly  # cheaper, and still not chosen
    only_old = [s for s in ec2 if s.extra.get("previous_generation")]
    assert choose_size(node, only_old, {})[0].extra["previous_generation"] is True


def test_a_node_of_another_provider_never_becomes_a_burstable_ec2_type(catalogues: dict[str, list[SizeInfo]]) -> None:
    for source, size_id in (("linode", "g6-standard-2"), ("vultr", "vc2-1c-1gb"), ("digitalocean", "1gb")):
        chosen = mapped(catalogues, source, size_id, "ec2")
        assert not chosen.id.startswith(("t2.", "t3.", "t3a.", "t4g.")), (source, size_id, chosen.id)
