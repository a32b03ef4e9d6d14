"""Mapping a snapshot's nodes onto a target: a size, an image and a location for each.

Pure functions over neutral data: manifest nodes, the target's ``SizeInfo`` and
``ImageInfo`` catalogue, the target profile and its overrides. ``plan`` shows the
result. Every node is mapped and every problem collected, never raised midway, so
one plan lists all that needs fixing.

The rules:
- size: a ``sizes:`` override (source instance type -> target size id or name) wins;
  otherwise the cheapest size with at least the node's vCPUs and memory, and its root
  disk where the size states a disk (the smallest by vCPUs, RAM, disk where the target
  gives no prices), among those offered in the location.
- image: an ``images:`` override (source image id or name -> target image id, name or
  alias) wins; otherwise the target image of the source image's OS family and release
  (Ubuntu 22.04 takes 22.04 or 22.04.3, never 20.04 or 24.04; RHEL 9.2 takes any RHEL 9),
  the exact version first, for the node's architecture where the target states one.
- architecture: a size runs the node's CPU architecture; a size that states none is x86_64
  (catalogues mark their arm sizes), so an arm64 node never lands on an x86 size nor the
  reverse, in whichever direction the mapping goes (AWS onto DigitalOcean, Linode onto EC2).
- location: the profile's ``compute.location``, checked against the target's locations
  when they are known.

Optional ``extra`` keys the catalogue converters fill (``providers/libcloud/catalog.py``):
``locations`` (ids of the locations offering a size or image; absent: all of them),
``architecture`` (a size's or an image's, in the vendor's spelling), ``previous_generation``
(a size of an older generation, chosen only where no current one fits) and ``aliases`` (other
names an override may use for an image, such as a slug).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from failover.config import TargetProfile
from failover.manifest import Node
from failover.ports import ImageInfo, SizeInfo

# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeChoice:
    id: str
    name: str
    price_hourly: float | None
    why: str


@dataclass(frozen=True)
class ImageChoice:
    id: str
    name: str
    why: str


@dataclass(frozen=True)
class NodeMapping:
    """One node's target size and image; None where it could not be mapped."""

    node_id: str
    node_name: str
    size: SizeChoice | None
    image: ImageChoice | None


@dataclass
class MappingResult:
    location: str | None
    nodes: list[NodeMapping] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def for_node(self, node_id: str) -> NodeMapping:
        return next(m for m in self.nodes if m.node_id == node_id)


class Unmappable(Exception):
    """Why one node's size or image cannot be mapped (without the node's name)."""


# -- the whole mapping -------------------------------------------------------------------


def map_nodes(
    nodes: Iterable[Node],
    sizes: Sequence[SizeInfo],
    images: Sequence[ImageInfo],
    profile: TargetProfile,
    locations: Iterable[str] | None = None,
    location_label: str | None = None,
) -> MappingResult:
    """Map every node; ``locations`` are the target's location ids, when the adapter gives them;
    ``location_label`` is how the plan names the location (its name and id)."""
    location, location_errors = resolve_location(profile, locations)
    result = MappingResult(location=location, errors=location_errors)
    for node in nodes:
        label = node_label(node)
        size_choice = image_choice = None
        try:
            size, why = choose_size(node, sizes, profile.sizes, location, profile.allow_burstable, location_label)
            size_choice = SizeChoice(size.id, size.name, size.price_hourly, why)
            if node.instance_type in profile.sizes:
                result.warnings += [f"{label}: {w}" for w in size_override_warnings(node, size, location)]
        except Unmappable as exc:
            result.errors.append(f"{label}: {exc}")
        try:
            image, why = choose_image(node, images, profile.images, location)
            image_choice = ImageChoice(image.id, image.name, why)
            if image_override_key(node, profile.images):
                result.warnings += [f"{label}: {w}" for w in image_override_warnings(node, image, location)]
        except Unmappable as exc:
            result.errors.append(f"{label}: {exc}")
        result.nodes.append(NodeMapping(node.id, node.name, size_choice, image_choice))
    return result


def node_label(node: Node) -> str:
    return node.id if node.name == node.id else f"{node.name} ({node.id})"


# -- location ----------------------------------------------------------------------------


def resolve_location(profile: TargetProfile, locations: Iterable[str] | None) -> tuple[str | None, list[str]]:
    """The profile's location and the errors found; an unknown location maps as none, so
    that it is reported once rather than as every size and image missing from it."""
    location = profile.compute.location if profile.compute else None
    if location is None or locations is None:
        return location, []
    known = sorted(locations)
    if location in known:
        return location, []
    return None, [f"compute.location: {location!r} is not a location of the target (it has: {', '.join(known)})"]


def offered_in(item: SizeInfo | ImageInfo, location: str | None) -> bool:
    offered = item.extra.get("locations")
    return location is None or offered is None or location in offered


# -- sizes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    vcpus: int
    memory_mib: int
    disk_gib: int | None

    def met_by(self, size: SizeInfo) -> bool:
        if size.vcpus is None or size.ram_mib is None:
            return False
        disk_ok = self.disk_gib is None or size.disk_gib is None or size.disk_gib >= self.disk_gib
        return size.vcpus >= self.vcpus and size.ram_mib >= self.memory_mib and disk_ok

    def __str__(self) -> str:
        if self.disk_gib is None:
            return f">= {self.vcpus} vCPUs and {self.memory_mib} MiB"
        return f">= {self.vcpus} vCPUs, {self.memory_mib} MiB and {self.disk_gib} GiB of disk"


# AWS's burstable families (t2, t3, t3a, t4g; db.t3 for RDS): CPU credits, not a steady core.
BURSTABLE = re.compile(r"^(db\.)?t\d[a-z]*\.", re.IGNORECASE)


def is_burstable(name: str | None) -> bool:
    return bool(name and BURSTABLE.match(name))


def _size_is_burstable(size: SizeInfo) -> bool:
    stated = size.extra.get("burstable")
    if isinstance(stated, bool):
        return stated
    return is_burstable(size.id) or is_burstable(size.name)


def choose_size(
    node: Node, sizes: Sequence[SizeInfo], overrides: dict[str, str], location: str | None = None,
    allow_burstable: bool = False, location_label: str | None = None,
) -> tuple[SizeInfo, str]:
    """The target size for ``node`` and why it was chosen; raises :class:`Unmappable`."""
    if node.instance_type in overrides:
        wanted = overrides[node.instance_type]
        size = find_by_reference(sizes, wanted, what="size")
        if size is None:
            raise Unmappable(f"sizes override {node.instance_type}: {wanted!r} names no size the target offers")
        return size, f"override sizes[{node.instance_type}]"
    if node.vcpus is None or node.memory_mib is None:
        raise Unmappable(
            f"the snapshot records no vCPU count or memory for {node.instance_type}; add a sizes override for it"
        )
    need = Requirement(node.vcpus, node.memory_mib, node.root_volume_gib)
    architecture = normalize_architecture(node.architecture)
    large_enough = [s for s in sizes if need.met_by(s) and offered_in(s, location)]
    fitting = [s for s in large_enough if _size_runs(s, architecture)]
    where = f" in {location_label or location}" if location else ""
    if large_enough and not fitting:
        others = sorted({size_architecture(s) for s in large_enough})
        raise Unmappable(f"no target size with {need} for {architecture}{where} ({len(large_enough)} sizes would do "
                         f"but run {', '.join(others)}: the node's images and binaries would not; a sizes override "
                         "accepts one)")
    steady = not is_burstable(node.instance_type) and not allow_burstable
    if steady:
        # A steady core (m7i, c6i, r5 ...) never becomes a burstable size: it would run out of CPU credits.
        burstable = [s for s in fitting if _size_is_burstable(s)]
        fitting = [s for s in fitting if not _size_is_burstable(s)]
        if not fitting and burstable:
            raise Unmappable(f"no non-burstable target size with {need}{where} (only burstable ones: "
                             f"{', '.join(s.id for s in burstable[:3])}; allow_burstable: true in the target "
                             "profile accepts them)")
    if not fitting:
        raise Unmappable(f"no target size with {need}{where}")
    best = min(fitting, key=_cheapest_then_smallest)
    if len(fitting) == 1:
        return best, f"the only size with {need}{where}"
    if best.price_hourly is None:
        return best, f"smallest of {len(fitting)} sizes with {need}{where} (the target states no prices)"
    return best, f"cheapest of {len(fitting)} sizes with {need}{where}"


# A size that states no architecture is x86_64: catalogues mark their arm sizes (Graviton,
# Ampere) and leave the default unsaid, so an arm64 node maps only onto a size said to be arm64.
DEFAULT_SIZE_ARCHITECTURE = "x86_64"
# Architectures a node of another one runs on: 32-bit x86 systems run on x86_64 machines.
_ALSO_RUNS_ON = {"i386": frozenset({"x86_64"})}


def size_architecture(size: SizeInfo) -> str:
    return normalize_architecture(size.extra.get("architecture")) or DEFAULT_SIZE_ARCHITECTURE


def _size_runs(size: SizeInfo, architecture: str | None) -> bool:
    """A size runs the node's architecture (an x86 image won't boot on arm64, nor an arm64 one on x86);
    a node of unknown architecture runs anywhere."""
    if architecture is None:
        return True
    stated = size_architecture(size)
    return stated == architecture or stated in _ALSO_RUNS_ON.get(architecture, ())


def _cheapest_then_smallest(size: SizeInfo) -> tuple:
    # A previous generation (EC2's m1, c4 ...) only where no current one fits: older, slower, not offered everywhere.
    previous = bool(size.extra.get("previous_generation"))
    unpriced = size.price_hourly is None
    return (previous, unpriced, size.price_hourly or 0.0, size.vcpus, size.ram_mib, size.disk_gib or 0, size.id)


def size_override_warnings(node: Node, size: SizeInfo, location: str | None) -> list[str]:
    """An override is obeyed even where it looks wrong; say so."""
    warnings = []
    if node.vcpus is not None and size.vcpus is not None and size.vcpus < node.vcpus:
        warnings.append(f"size {size.id} has fewer vCPUs ({size.vcpus}) than {node.instance_type} ({node.vcpus})")
    if node.memory_mib is not None and size.ram_mib is not None and size.ram_mib < node.memory_mib:
        warnings.append(f"size {size.id} has less memory ({size.ram_mib} MiB) than {node.instance_type} ({node.memory_mib} MiB)")
    if not offered_in(size, location):
        warnings.append(f"size {size.id} is not offered in {location}")
    return warnings


# -- references in overrides -------------------------------------------------------------


Item = TypeVar("Item", SizeInfo, ImageInfo)


def find_by_reference(items: Sequence[Item], wanted: str, *, what: str) -> Item | None:
    """The item whose id is ``wanted``, else the one whose name (or alias) is; None if none."""
    by_id = [item for item in items if item.id == wanted]
    if by_id:
        return by_id[0]
    by_name = [item for item in items if item.name == wanted or wanted in item.extra.get("aliases", ())]
    if len(by_name) > 1:
        ids = ", ".join(item.id for item in by_name)
        raise Unmappable(f"{wanted!r} names {len(by_name)} target {what}s ({ids}); use an id")
    return by_name[0] if by_name else None


# -- operating systems -------------------------------------------------------------------

# (family, label, pattern); the more specific first: "CentOS Stream" before "CentOS".
_FAMILIES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (family, label, re.compile(pattern, re.IGNORECASE))
    for family, label, pattern in (
        ("amazon-linux", "Amazon Linux", r"\bamzn|\bal20\d\d|amazon[\s_-]*linux"),
        ("ubuntu", "Ubuntu", r"ubuntu"),
        ("debian", "Debian", r"debian"),
        ("centos-stream", "CentOS Stream", r"centos[\s_-]*(?:\d+[\s_-]*)?stream"),
        ("centos", "CentOS", r"centos"),
        ("rhel", "Red Hat Enterprise Linux", r"\brhel|red[\s_-]*hat"),
        ("rocky", "Rocky Linux", r"rocky"),
        ("almalinux", "AlmaLinux", r"alma[\s_-]*linux"),
        ("fedora", "Fedora", r"fedora"),
        ("opensuse", "openSUSE", r"opensuse"),
        ("sles", "SUSE Linux Enterprise Server", r"\bsles|suse[\s_-]*linux[\s_-]*enterprise"),
        ("windows-server", "Windows Server", r"windows"),
        ("freebsd", "FreeBSD", r"freebsd"),
        ("alpine", "Alpine Linux", r"alpine"),
    )
)
FAMILY_LABELS = {family: label for family, label, _ in _FAMILIES}

# Families no other provider offers: there is no equivalent to fall back on.
AWS_ONLY_FAMILIES = frozenset({"amazon-linux"})

CODENAMES = {
    "ubuntu": {"trusty": "14.04", "xenial": "16.04", "bionic": "18.04", "focal": "20.04", "jammy": "22.04", "noble": "24.04"},
    "debian": {"jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13"},
}

_VERSIONS = {
    # "22.04", "22.04.3", and DigitalOcean's slug spelling "22-04"
    "ubuntu": re.compile(r"(?<![\d.])(\d\d)[.-](\d\d)(?:\.(\d+))?(?!\d)"),
    "windows-server": re.compile(r"(\d{4})(?:[\s_-]*(R2)(?![A-Za-z0-9]))?", re.IGNORECASE),
    "sles": re.compile(r"(?<!\d)(\d+)(?:[\s_-]*(SP\d+))?", re.IGNORECASE),
    "amazon-linux": re.compile(r"(?:\bal|amzn|amazon[\s_-]*linux[\s_-]*)(\d+)", re.IGNORECASE),
}
# A free-standing version number: not the 64 of "amd64" or "x86_64".
_GENERIC_VERSION = re.compile(r"(?<![A-Za-z0-9._])(\d+(?:\.\d+)*)(?![A-Za-z0-9])")


@dataclass(frozen=True)
class OsRelease:
    """An OS family and version, e.g. ("ubuntu", ("22", "04", "3")) or ("windows-server", ("2012", "R2"))."""

    family: str
    version: tuple[str, ...] | None

    @property
    def release(self) -> tuple[str, ...] | None:
        """The part of the version naming the release; versions of one release differ only in
        point updates (Ubuntu 22.04 and 22.04.3, RHEL 9.0 and 9.2, SLES 15 SP4 and SP5)."""
        if self.version is None:
            return None
        if self.family in ("ubuntu", "alpine"):
            return self.version[:2]  # Ubuntu 22.10 is another release than 22.04; Alpine 3.18 than 3.17
        if self.family == "windows-server":
            return self.version  # 2012 R2 is another release than 2012
        return self.version[:1]

    def describe(self, parts: tuple[str, ...] | None = None) -> str:
        parts = self.version if parts is None else parts
        label = FAMILY_LABELS[self.family]
        return f"{label} {version_text(parts)}" if parts else label


def version_text(parts: tuple[str, ...]) -> str:
    """("22", "04", "3") -> "22.04.3"; ("15", "SP5") -> "15 SP5"."""
    numbers = ".".join(p for p in parts if p.isdigit())
    return " ".join([numbers, *(p for p in parts if not p.isdigit())])


def os_release(name: str | None, description: str | None = None) -> OsRelease | None:
    """The OS family and version an image's name or description tells, or None.

    The name is read first, then the description, then both together (a name may give
    the family and its description the version)."""
    texts = [t for t in (name, description) if t]
    if len(texts) == 2:
        texts.append(" ".join(texts))
    family_only = None
    for text in texts:
        found = _release_in(text)
        if found is not None and found.version is not None:
            return found
        family_only = family_only or found
    return family_only


def _release_in(text: str) -> OsRelease | None:
    for family, _, pattern in _FAMILIES:
        match = pattern.search(text)
        if match:
            # from the family's name on: "CentOS 8 Stream" has its version inside the match
            return OsRelease(family, _version_in(family, text[match.start():]))
    return None


def _version_in(family: str, text: str) -> tuple[str, ...] | None:
    """The version the text states; a codename wins over a number of another release,
    which is then a date or a build ("debian-stretch-hvm-x86_64-gp2-2022-07-01")."""
    number = _numbered_version(family, text)
    codename = _codename_version(family, text)
    if codename and (number is None or number[: len(codename)] != codename):
        return codename
    return number


def _numbered_version(family: str, text: str) -> tuple[str, ...] | None:
    match = _VERSIONS.get(family, _GENERIC_VERSION).search(text)
    if match is None:
        return None
    groups = [g for g in match.groups() if g]
    return tuple(piece for g in groups for piece in (g.split(".") if g[0].isdigit() else [g.upper()]))


def _codename_version(family: str, text: str) -> tuple[str, ...] | None:
    for codename, version in CODENAMES.get(family, {}).items():
        if re.search(rf"\b{codename}\b", text, re.IGNORECASE):
            return tuple(version.split("."))
    return None


def version_numbers(version: tuple[str, ...]) -> tuple[int, ...]:
    """For ordering: ("15", "SP5") -> (15, 5)."""
    return tuple(int(re.sub(r"\D", "", part) or 0) for part in version)


def _newest_first(version: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(-n for n in version_numbers(version))


# Words an image name may carry without being a variant of the plain OS image.
_PLAIN_WORDS = frozenset(
    {"linux", "lts", "server", "gnu", "x64", "x86", "x32", "amd64", "arm64", "aarch64", "i386", "i686", "r2", "64", "bit"}
)


def variant_words(image: ImageInfo, family: str) -> int:
    """How many words mark ``image`` as a variant ("Kubernetes 1.18 on Debian 9",
    "CentOS 7 SELinux") rather than the plain OS image ("Debian 9", "CentOS 7 x64")."""
    family_words = set(re.split(r"[^a-z]+", f"{family} {FAMILY_LABELS[family]}".lower()))
    known = _PLAIN_WORDS | family_words | set(CODENAMES.get(family, {}))
    words = [w for w in re.split(r"[^a-z0-9]+", image.name.lower()) if w and not w.isdigit()]
    return sum(1 for w in words if w not in known and not re.fullmatch(r"sp\d+", w))


# -- architectures -----------------------------------------------------------------------

_ARCHITECTURES = (
    ("arm64", re.compile(r"arm64|aarch64", re.IGNORECASE)),
    ("x86_64", re.compile(r"x86[_-]64|amd64|\bx64\b", re.IGNORECASE)),
    ("i386", re.compile(r"\bi[36]86\b|\bx32\b|\bx86\b", re.IGNORECASE)),
)


def normalize_architecture(text: str | None) -> str | None:
    """"x64", "amd64", "x86_64" -> "x86_64"; "aarch64" -> "arm64"; "x32", "i686" -> "i386"."""
    if not text:
        return None
    return next((arch for arch, pattern in _ARCHITECTURES if pattern.search(text)), None)


def image_architecture(image: ImageInfo) -> str | None:
    stated = normalize_architecture(image.extra.get("architecture"))
    return stated or normalize_architecture(f"{image.name} {image.description or ''}")


# -- images ------------------------------------------------------------------------------


def choose_image(
    node: Node, images: Sequence[ImageInfo], overrides: dict[str, str], location: str | None = None
) -> tuple[ImageInfo, str]:
    """The target image for ``node`` and why it was chosen; raises :class:`Unmappable`."""
    override_key = image_override_key(node, overrides)
    if override_key is not None:
        wanted = overrides[override_key]
        image = find_by_reference(images, wanted, what="image")
        if image is None:
            raise Unmappable(f"images override {override_key}: {wanted!r} names no image the target offers")
        return image, f"override images[{override_key}]"
    source_ref = image_reference(node)
    if source_ref is None:
        raise Unmappable("the snapshot records no image; add an images override")
    source = os_release(node.image_name, node.image_description)
    hint = f"add an images override for {node.image_id or node.image_name}"
    if source is None:
        raise Unmappable(f"cannot tell the OS of image {source_ref}; {hint}")
    if source.family in AWS_ONLY_FAMILIES:
        raise Unmappable(f"image {source_ref} is {source.describe()}, which only AWS offers; {hint}")
    if source.version is None:
        raise Unmappable(f"cannot tell the {source.describe()} version of image {source_ref}; {hint}")
    return _same_release(node, source, images, location, hint)


def _same_release(
    node: Node, source: OsRelease, images: Sequence[ImageInfo], location: str | None, hint: str
) -> tuple[ImageInfo, str]:
    architecture = normalize_architecture(node.architecture)
    of_family = [(image, found) for image in images if (found := os_release(image.name, image.description)) and found.family == source.family]
    of_release = [(image, found) for image, found in of_family if found.release == source.release]
    candidates = [(image, found) for image, found in of_release if offered_in(image, location) and _runs_on(image, architecture)]
    if not candidates:
        wanted = source.describe(source.release)
        constraints = "".join([f" for {architecture}" if architecture else "", f" in {location}" if location else ""])
        reason = _why_none_fits(wanted, [image for image, _ in of_release], location) if of_release else _family_inventory(source, of_family)
        raise Unmappable(f"no target image of {wanted}{constraints} ({reason}); {hint}")
    image, found = min(
        candidates,
        key=lambda c: (c[1].version != source.version, variant_words(c[0], source.family), _newest_first(c[1].version), c[0].id),
    )
    if found.version == source.version:
        return image, f"{source.describe()}, exact version"
    return image, f"{found.describe()} for {source.describe()}, same release"


def _runs_on(image: ImageInfo, architecture: str | None) -> bool:
    image_arch = image_architecture(image)
    return architecture is None or image_arch is None or image_arch == architecture


def _why_none_fits(wanted: str, of_release: list[ImageInfo], location: str | None) -> str:
    """The target has the release, but elsewhere or for another architecture."""
    here = [image for image in of_release if offered_in(image, location)]
    if not here:
        elsewhere = sorted({loc for image in of_release for loc in image.extra.get("locations", ())})
        return f"its {wanted} images are offered in {', '.join(elsewhere) or 'no location'}"
    architectures = sorted({image_architecture(image) or "?" for image in here})
    return f"its {wanted} images are for {', '.join(architectures)}"


def _family_inventory(source: OsRelease, of_family: list[tuple[ImageInfo, OsRelease]]) -> str:
    label = FAMILY_LABELS[source.family]
    releases = sorted({found.release for _, found in of_family if found.release}, key=version_numbers)
    if not releases:
        return f"it has no {label} images"
    return f"its {label} images: {', '.join(version_text(r) for r in releases)}"


def image_override_key(node: Node, overrides: dict[str, str]) -> str | None:
    """The ``images:`` key naming the node's image, by id or by name."""
    return next((key for key in (node.image_id, node.image_name) if key and key in overrides), None)


def image_reference(node: Node) -> str | None:
    if node.image_id and node.image_name:
        return f"{node.image_id} ({node.image_name})"
    return node.image_id or node.image_name


def image_override_warnings(node: Node, image: ImageInfo, location: str | None) -> list[str]:
    """An override is obeyed even where it looks wrong; say so."""
    warnings = []
    node_arch, image_arch = normalize_architecture(node.architecture), image_architecture(image)
    if node_arch and image_arch and node_arch != image_arch:
        warnings.append(f"image {image.id} is for {image_arch}, the node ran on {node_arch}")
    if not offered_in(image, location):
        warnings.append(f"image {image.id} is not offered in {location}")
    return warnings
