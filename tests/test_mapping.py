"""Mapping rules on hand-made target catalogues (the real vendors' are in
tests/providers/libcloud/test_catalog_vendors.py)."""

from __future__ import annotations

from typing import Any

import pytest

from failover.config import TargetProfile
from failover.manifest import Node
from failover.mapping import Unmappable, choose_image, choose_size, map_nodes, normalize_architecture, os_release
from failover.ports import ImageInfo, SizeInfo

JAMMY = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20230516"
AL2023 = "al2023-ami-2023.1.20230629.0-kernel-6.1-x86_64"


def node(**fields: Any) -> Node:
    values: dict[str, Any] = dict(
        id="i-0abc", name="web-1", region="us-east-1", instance_type="t3.medium", vcpus=2, memory_mib=4096,
        image_id="ami-0jammy", image_name=JAMMY, architecture="x86_64", private_ip=None, public_ip=None,
        user_data=None, state="running",
    )
    values.update(fields)
    return Node(**values)


def profile(location: str | None = None, **overrides: Any) -> TargetProfile:
    compute = {"driver": "digitalocean", "location": location} if location else None
    return TargetProfile(compute=compute, **overrides)


SIZES = [
    SizeInfo("tiny", "Tiny", vcpus=1, ram_mib=1024, disk_gib=25, price_hourly=0.007),
    SizeInfo("std-2", "Standard 4GB", vcpus=2, ram_mib=4096, disk_gib=80, price_hourly=0.030),
    SizeInfo("ded-2", "Dedicated 4GB", vcpus=2, ram_mib=4096, disk_gib=80, price_hourly=0.045),
    SizeInfo("std-4", "Standard 8GB", vcpus=4, ram_mib=8192, disk_gib=160, price_hourly=0.060),
    SizeInfo("mem-2", "Highmem 24GB", vcpus=2, ram_mib=24576, disk_gib=20, price_hourly=0.090),
]

UBUNTU_2204 = ImageInfo("img-2204", "Ubuntu 22.04 LTS", extra={"architecture": "x64"})
IMAGES = [
    ImageInfo("img-2004", "Ubuntu 20.04 LTS", extra={"architecture": "x64"}),
    UBUNTU_2204,
    ImageInfo("img-2204-arm", "Ubuntu 22.04 LTS", extra={"architecture": "arm64"}),
    ImageInfo("img-2404", "Ubuntu 24.04 LTS"),
    ImageInfo("img-deb12", "Debian 12"),
    ImageInfo("img-deb12-k8s", "Kubernetes 1.28 on Debian 12"),
]


# -- sizes -------------------------------------------------------------------------------


def test_the_cheapest_size_with_enough_vcpus_and_memory() -> None:
    size, why = choose_size(node(), SIZES, {})
    assert size.id == "std-2"
    assert why == "cheapest of 4 sizes with >= 2 vCPUs and 4096 MiB"


def test_a_size_for_another_cpu_architecture_is_never_chosen() -> None:
    graviton = SizeInfo("t4g.medium", "t4g.medium", vcpus=2, ram_mib=4096, disk_gib=None, price_hourly=0.0336,
                        extra={"architecture": "arm64"})
    intel = SizeInfo("t3.medium", "t3.medium", vcpus=2, ram_mib=4096, disk_gib=None, price_hourly=0.0416)
    assert choose_size(node(architecture="x86_64"), [graviton, intel], {})[0].id == "t3.medium"
    assert choose_size(node(architecture="arm64"), [graviton, intel], {})[0].id == "t4g.medium"


def test_a_size_that_states_no_architecture_is_x86_64() -> None:
    plain = SizeInfo("s-2vcpu-4gb", "s-2vcpu-4gb", vcpus=2, ram_mib=4096, disk_gib=80, price_hourly=0.03)
    x86 = SizeInfo("c6a.large", "c6a.large", vcpus=2, ram_mib=4096, disk_gib=None, price_hourly=0.08,
                   extra={"architecture": "x86_64"})
    assert choose_size(node(architecture="x86_64"), [plain], {})[0].id == "s-2vcpu-4gb"
    assert choose_size(node(architecture=None), [plain], {})[0].id == "s-2vcpu-4gb"
    assert choose_size(node(architecture="i386"), [x86], {})[0].id == "c6a.large"  # 32-bit x86 runs on x86_64
    with pytest.raises(Unmappable, match=r"^no target size with >= 2 vCPUs and 4096 MiB for arm64 \(2 sizes would do "
                                         r"but run x86_64: .*a sizes override accepts one\)$"):
        choose_size(node(instance_type="m6g.large", architecture="aarch64"), [plain, x86], {})


def test_memory_rules_out_cheaper_sizes() -> None:
    size, _ = choose_size(node(instance_type="r6i.large", vcpus=2, memory_mib=16384), SIZES, {})
    assert size.id == "mem-2"


def test_the_root_disk_counts_where_a_size_states_a_disk() -> None:
    sizes = [*SIZES, SizeInfo("nodisk-2", "No disk", vcpus=2, ram_mib=4096, disk_gib=None, price_hourly=0.040)]
    size, why = choose_size(node(root_volume_gib=100), sizes, {})
    assert size.id == "nodisk-2"  # std-2 and ded-2 have 80 GiB, std-4 (160 GiB) costs more
    assert why == "cheapest of 2 sizes with >= 2 vCPUs, 4096 MiB and 100 GiB of disk"


def test_without_prices_the_smallest_by_vcpus_then_ram_then_disk() -> None:
    sizes = [
        SizeInfo("big", "big", vcpus=4, ram_mib=4096, disk_gib=50),
        SizeInfo("more-ram", "more-ram", vcpus=2, ram_mib=8192, disk_gib=50),
        SizeInfo("more-disk", "more-disk", vcpus=2, ram_mib=4096, disk_gib=100),
        SizeInfo("just-right", "just-right", vcpus=2, ram_mib=4096, disk_gib=50),
    ]
    size, why = choose_size(node(), sizes, {})
    assert size.id == "just-right"
    assert why == "smallest of 4 sizes with >= 2 vCPUs and 4096 MiB (the target states no prices)"


def test_priced_sizes_come_before_unpriced_ones() -> None:
    sizes = [SizeInfo("unpriced", "u", vcpus=2, ram_mib=4096, disk_gib=10), SizeInfo("priced", "p", 8, 32768, 10, 0.5)]
    assert choose_size(node(), sizes, {})[0].id == "priced"


def test_a_size_that_does_not_state_its_vcpus_or_ram_is_never_guessed() -> None:
    sizes = [SizeInfo("mystery", "mystery", vcpus=None, ram_mib=None, disk_gib=None, price_hourly=0.001), *SIZES]
    assert choose_size(node(), sizes, {})[0].id == "std-2"


def test_sizes_not_offered_in_the_location_are_skipped() -> None:
    sizes = [
        SizeInfo("std-2", "s", 2, 4096, 80, 0.03, extra={"locations": ["nyc1"]}),
        SizeInfo("std-2b", "s", 2, 4096, 80, 0.04, extra={"locations": ["fra1", "nyc1"]}),
        SizeInfo("everywhere", "e", 2, 4096, 80, 0.05),
    ]
    assert choose_size(node(), sizes, {}, "fra1") == (sizes[1], "cheapest of 2 sizes with >= 2 vCPUs and 4096 MiB in fra1")


def test_no_size_large_enough_is_an_error_naming_the_need() -> None:
    with pytest.raises(Unmappable, match=r"^no target size with >= 64 vCPUs and 262144 MiB$"):
        choose_size(node(instance_type="m5.16xlarge", vcpus=64, memory_mib=262144), SIZES, {})


def test_a_node_of_unknown_vcpus_needs_an_override() -> None:
    with pytest.raises(Unmappable, match="no vCPU count or memory for x9.huge; add a sizes override"):
        choose_size(node(instance_type="x9.huge", vcpus=None), SIZES, {})
    assert choose_size(node(instance_type="x9.huge", vcpus=None), SIZES, {"x9.huge": "std-4"})[0].id == "std-4"


@pytest.mark.parametrize("reference", ["ded-2", "Dedicated 4GB"])
def test_a_sizes_override_by_id_or_name_wins(reference: str) -> None:
    size, why = choose_size(node(), SIZES, {"t3.medium": reference})
    assert size.id == "ded-2"
    assert why == "override sizes[t3.medium]"


def test_a_sizes_override_naming_no_target_size_is_an_error() -> None:
    with pytest.raises(Unmappable, match=r"sizes override t3.medium: 's-2vcpu-4gb' names no size the target offers"):
        choose_size(node(), SIZES, {"t3.medium": "s-2vcpu-4gb"})


def test_an_ambiguous_override_name_asks_for_an_id() -> None:
    sizes = [SizeInfo("a", "Same", 2, 4096, 10), SizeInfo("b", "Same", 2, 4096, 10)]
    with pytest.raises(Unmappable, match=r"'Same' names 2 target sizes \(a, b\); use an id"):
        choose_size(node(), sizes, {"t3.medium": "Same"})


# -- reading an image's OS ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family", "version"),
    [
        (JAMMY, "ubuntu", ("22", "04")),
        ("ubuntu-minimal/images/hvm-ssd/ubuntu-focal-daily-amd64-minimal-20230614", "ubuntu", ("20", "04")),
        ("ubuntu/images/hvm-ssd/ubuntu-noble-24.04-arm64-server-20240423", "ubuntu", ("24", "04")),
        ("ubuntu-22-04-x64", "ubuntu", ("22", "04")),
        (AL2023, "amazon-linux", ("2023",)),
        ("amzn2-ami-hvm-2.0.20230612.0-x86_64-gp2", "amazon-linux", ("2",)),
        ("debian-12-amd64-20230711-1438", "debian", ("12",)),
        ("debian-stretch-hvm-x86_64-gp2-2022-07-01-66430", "debian", ("9",)),
        ("Debian 10 x64 (buster)", "debian", ("10",)),
        ("RHEL-9.2.0_HVM-20230503-x86_64-41-Hourly2-GP2", "rhel", ("9", "2", "0")),
        ("Rocky-9-EC2-Base-9.2-20230513.0.x86_64", "rocky", ("9",)),
        ("CentOS-7-2111-20220825_1.x86_64-d9a3032a-921c", "centos", ("7",)),
        ("CentOS Stream 9 x86_64 20230501", "centos-stream", ("9",)),
        ("CentOS 8 Stream x64", "centos-stream", ("8",)),
        ("Windows_Server-2022-English-Full-Base-2023.06.14", "windows-server", ("2022",)),
        ("Windows_Server-2012-R2_RTM-English-64Bit-Base-2023.06.14", "windows-server", ("2012", "R2")),
        ("suse-sles-15-sp5-v20230620-hvm-ssd-x86_64", "sles", ("15", "SP5")),
        ("Fedora-Cloud-Base-38-1.6.x86_64-hvm-us-east-1-gp2-0", "fedora", ("38",)),
        ("almalinux-9.2-x86_64", "almalinux", ("9", "2")),
    ],
)
def test_os_family_and_version_from_an_image_name(name: str, family: str, version: tuple[str, ...]) -> None:
    found = os_release(name)
    assert (found.family, found.version) == (family, version)


def test_the_description_tells_what_the_name_does_not() -> None:
    found = os_release("golden-web", "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image build on 2023-05-16")
    assert (found.family, found.version) == ("ubuntu", ("22", "04"))
    assert os_release("golden-web", None) is None


def test_releases_group_point_versions_only() -> None:
    assert os_release("Ubuntu 22.04.3").release == ("22", "04")
    assert os_release("Ubuntu 22.10").release == ("22", "10")
    assert os_release("RHEL-9.2.0").release == ("9",)
    assert os_release("Windows 2012 R2 x64").release != os_release("Windows_Server-2012-RTM").release


@pytest.mark.parametrize(
    ("text", "architecture"),
    [("x86_64", "x86_64"), ("x64", "x86_64"), ("amd64", "x86_64"), ("arm64", "arm64"), ("aarch64", "arm64"),
     ("i386", "i386"), ("14.04 x32", "i386"), ("Ubuntu 20.04 LTS", None), (None, None)],
)
def test_architecture_spellings(text: str | None, architecture: str | None) -> None:
    assert normalize_architecture(text) == architecture


# -- images ------------------------------------------------------------------------------


def test_the_same_family_and_version() -> None:
    assert choose_image(node(), IMAGES, {}) == (UBUNTU_2204, "Ubuntu 22.04, exact version")


def test_the_exact_version_first_then_the_newest_of_the_release() -> None:
    images = [ImageInfo("p3", "Ubuntu 22.04.3 LTS"), ImageInfo("p1", "Ubuntu 22.04.1 LTS"), ImageInfo("exact", "Ubuntu 22.04")]
    assert choose_image(node(), images, {})[0].id == "exact"
    image, why = choose_image(node(), images[:2], {})
    assert image.id == "p3"
    assert why == "Ubuntu 22.04.3 for Ubuntu 22.04, same release"


def test_never_another_major_version() -> None:
    images = [ImageInfo("u20", "Ubuntu 20.04 LTS"), ImageInfo("u24", "Ubuntu 24.04 LTS"), ImageInfo("u2210", "Ubuntu 22.10")]
    with pytest.raises(Unmappable) as caught:
        choose_image(node(), images, {})
    assert str(caught.value) == (
        "no target image of Ubuntu 22.04 for x86_64 (its Ubuntu images: 20.04, 22.10, 24.04); "
        "add an images override for ami-0jammy"
    )


def test_a_point_release_maps_to_its_major_version() -> None:
    rhel = node(image_id="ami-rhel", image_name="RHEL-9.2.0_HVM-20230503-x86_64-41-Hourly2-GP2")
    images = [ImageInfo("r8", "RHEL 8.8"), ImageInfo("r90", "RHEL 9.0"), ImageInfo("r93", "Red Hat Enterprise Linux 9.3")]
    assert choose_image(rhel, images, {}) == (images[2], "Red Hat Enterprise Linux 9.3 for Red Hat Enterprise Linux 9.2.0, same release")


def test_the_nodes_architecture_where_the_target_states_one() -> None:
    graviton = node(architecture="arm64", image_name="ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20230516")
    assert choose_image(graviton, IMAGES, {})[0].id == "img-2204-arm"
    no_arm = [image for image in IMAGES if image.id != "img-2204-arm"]
    with pytest.raises(Unmappable, match="no target image of Ubuntu 22.04 for arm64"):
        choose_image(graviton, no_arm, {})


def test_an_image_of_unstated_architecture_is_acceptable() -> None:
    noble = node(image_name="ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-20240423")
    assert choose_image(noble, IMAGES, {})[0].id == "img-2404"


def test_the_plain_os_image_before_its_variants() -> None:
    bookworm = node(image_id="ami-deb", image_name="debian-12-amd64-20230711-1438")
    assert choose_image(bookworm, list(reversed(IMAGES)), {})[0].id == "img-deb12"


def test_images_not_offered_in_the_location_are_skipped() -> None:
    images = [ImageInfo("nyc-only", "Ubuntu 22.04", extra={"locations": ["nyc1"]})]
    assert choose_image(node(), images, {}, "nyc1")[0].id == "nyc-only"
    with pytest.raises(Unmappable, match="no target image of Ubuntu 22.04 for x86_64 in sfo1"):
        choose_image(node(), images, {}, "sfo1")


def test_amazon_linux_has_no_equivalent() -> None:
    amazon = node(image_id="ami-0al", image_name=AL2023)
    with pytest.raises(Unmappable) as caught:
        choose_image(amazon, IMAGES, {})
    assert str(caught.value) == (
        f"image ami-0al ({AL2023}) is Amazon Linux 2023, which only AWS offers; add an images override for ami-0al"
    )


@pytest.mark.parametrize("key", ["ami-0al", AL2023])
@pytest.mark.parametrize("reference", ["img-deb12", "Debian 12"])
def test_an_images_override_by_source_id_or_name_wins(key: str, reference: str) -> None:
    amazon = node(image_id="ami-0al", image_name=AL2023)
    image, why = choose_image(amazon, IMAGES, {key: reference})
    assert image.id == "img-deb12"
    assert why == f"override images[{key}]"


def test_an_images_override_may_use_an_alias() -> None:
    images = [ImageInfo("119192817", "22.04 x64", "Ubuntu 22.04 x64", extra={"aliases": ["ubuntu-22-04-x64"]})]
    assert choose_image(node(), images, {"ami-0jammy": "ubuntu-22-04-x64"})[0].id == "119192817"


def test_an_images_override_naming_no_target_image_is_an_error() -> None:
    with pytest.raises(Unmappable, match=r"images override ami-0jammy: 'ubuntu-22-04-x64' names no image the target offers"):
        choose_image(node(), IMAGES, {"ami-0jammy": "ubuntu-22-04-x64"})


def test_an_unknown_os_is_an_error() -> None:
    with pytest.raises(Unmappable, match=r"cannot tell the OS of image ami-0gold \(golden-web-v42\); add an images override for ami-0gold"):
        choose_image(node(image_id="ami-0gold", image_name="golden-web-v42"), IMAGES, {})
    with pytest.raises(Unmappable, match="the snapshot records no image"):
        choose_image(node(image_id=None, image_name=None), IMAGES, {})


# -- location and the whole mapping ------------------------------------------------------


def test_map_nodes_collects_every_error_and_maps_the_rest() -> None:
    nodes = [
        node(),
        node(id="i-0big", name="batch-1", instance_type="m5.16xlarge", vcpus=64, memory_mib=262144),
        node(id="i-0al", name="legacy-1", image_id="ami-0al", image_name=AL2023),
    ]
    result = map_nodes(nodes, SIZES, IMAGES, profile())
    assert not result.ok
    assert result.errors == [
        "batch-1 (i-0big): no target size with >= 64 vCPUs and 262144 MiB",
        f"legacy-1 (i-0al): image ami-0al ({AL2023}) is Amazon Linux 2023, which only AWS offers; "
        "add an images override for ami-0al",
    ]
    web, batch, legacy = result.nodes
    assert (web.size.id, web.size.price_hourly, web.image.id) == ("std-2", 0.03, "img-2204")
    assert (batch.size, batch.image.id) == (None, "img-2204")
    assert (legacy.size.id, legacy.image) == ("std-2", None)
    assert result.for_node("i-0al") is legacy


def test_an_obeyed_override_that_looks_wrong_is_a_warning() -> None:
    overrides = profile(sizes={"t3.medium": "tiny"}, images={"ami-0jammy": "img-2204-arm"})
    result = map_nodes([node()], SIZES, IMAGES, overrides)
    assert result.ok
    assert result.warnings == [
        "web-1 (i-0abc): size tiny has fewer vCPUs (1) than t3.medium (2)",
        "web-1 (i-0abc): size tiny has less memory (1024 MiB) than t3.medium (4096 MiB)",
        "web-1 (i-0abc): image img-2204-arm is for arm64, the node ran on x86_64",
    ]


def test_the_location_is_checked_against_the_targets() -> None:
    assert map_nodes([], SIZES, IMAGES, profile("fra1"), locations=["nyc1", "fra1"]).location == "fra1"
    assert map_nodes([], SIZES, IMAGES, profile("fra1")).location == "fra1"  # the adapter could not tell
    assert map_nodes([], SIZES, IMAGES, profile()).location is None
    result = map_nodes([node()], SIZES, IMAGES, profile("fra9"), locations=["nyc1", "fra1"])
    assert result.errors == ["compute.location: 'fra9' is not a location of the target (it has: fra1, nyc1)"]
    assert result.location is None  # reported once, not as every size missing from it


def test_a_node_named_by_its_id_is_named_once() -> None:
    result = map_nodes([node(name="i-0abc", vcpus=99)], SIZES, IMAGES, profile())
    assert result.errors == ["i-0abc: no target size with >= 99 vCPUs and 4096 MiB"]


def test_an_override_outside_the_location_is_a_warning() -> None:
    sizes = [SizeInfo("nyc-only", "n", 2, 4096, 80, 0.03, extra={"locations": ["nyc1"]})]
    images = [ImageInfo("img-nyc", "Ubuntu 22.04", extra={"locations": ["nyc1"]})]
    overrides = profile("fra1", sizes={"t3.medium": "nyc-only"}, images={JAMMY: "img-nyc"})
    result = map_nodes([node()], sizes, images, overrides)
    assert result.warnings == [
        "web-1 (i-0abc): size nyc-only is not offered in fra1",
        "web-1 (i-0abc): image img-nyc is not offered in fra1",
    ]
    assert result.nodes[0].image.why == f"override images[{JAMMY}]"


def test_a_steady_core_family_never_maps_onto_a_burstable_size_unless_the_profile_allows_it() -> None:
    node = Node(id="i-m7i", name="worker", region="us-east-1", instance_type="m7i.xlarge", vcpus=4, memory_mib=16384,
                image_id=None, image_name=None, architecture="x86_64", private_ip=None, public_ip=None,
                user_data=None, state="running")
    burstable = SizeInfo(id="t3a.xlarge", name="t3a.xlarge", vcpus=4, ram_mib=16384, disk_gib=None, price_hourly=0.15)
    steady = SizeInfo(id="m6i.xlarge", name="m6i.xlarge", vcpus=4, ram_mib=16384, disk_gib=None, price_hourly=0.19)

    assert choose_size(node, [burstable, steady], {})[0].id == "m6i.xlarge"
    assert choose_size(node, [burstable, steady], {}, allow_burstable=True)[0].id == "t3a.xlarge"
    with pytest.raises(Unmappable, match=r"no non-burstable target size .* \(only burstable ones: t3a.xlarge; "
                                         r"allow_burstable: true"):
        choose_size(node, [burstable], {})
    small = node.model_copy(update={"instance_type": "t3.xlarge"})  # burstable stays burstable: the cheapest
    assert choose_size(small, [burstable, steady], {})[0].id == "t3a.xlarge"


def test_the_plan_names_a_location_by_its_name() -> None:
    node = Node(id="i-1", name="web", region="us-east-1", instance_type="t3.small", vcpus=2, memory_mib=2048,
                image_id=None, image_name=None, architecture=None, private_ip=None, public_ip=None, user_data=None,
                state="running")
    size = SizeInfo(id="s-2", name="s-2", vcpus=2, ram_mib=2048, disk_gib=None)
    assert choose_size(node, [size], {}, "0", location_label="Amsterdam 3 (0)")[1] == "the only size with >= 2 vCPUs " \
        "and 2048 MiB in Amsterdam 3 (0)"
