"""The escrow of a service's parameters and secrets (``evacuation.escrow``), and opening it.

:func:`seal` reads the service's SSM parameters and Secrets Manager secrets from the source, puts
them in one JSON document **in memory**, encrypts it on this machine to the team's age recipients
(pyrage), and stores only the ciphertext, as ``<service>-escrow-<UTC time>.age`` in the escrow's
container on the target's storage. Nothing else is written: no value reaches the state, a log, a
message or the JSON summary (names and counts only). :func:`open_escrow` fetches an escrow (the
latest, or one by name) and decrypts it with the team's identity file, on the day.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from failover.adapters import source_secrets, storage_target
from failover.config import Config, Escrow
from failover.errors import InputError, OperationFailed, Problem
from failover.files import private_directory, read_input, write_atomic
from failover.keytext import shown
from failover.ports import SecretItem, StorageTarget

FORMAT = "failover-escrow/1"
MAX_ESCROW_BYTES = 64 * 1024 * 1024
MAX_IDENTITY_BYTES = 1024 * 1024
ESCROW_KEY = re.compile(r"^(?P<service>[a-z0-9][a-z0-9-]*)-escrow-(?P<stamp>\d{8}T\d{6}\d{6}Z)\.age$")


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise InputError([Problem(file="evacuation.escrow", message=(
            "the escrow needs pyrage: pip install 'failover[escrow]'"))]) from None
    return pyrage


@dataclass
class EscrowResult:
    """What :func:`seal` stored: names and counts, never a value."""

    service: str
    target: str
    container: str
    object: str
    bytes: int
    recipients: int
    parameters: list[dict[str, str]] = field(default_factory=list)  # {region, name}
    secrets: list[dict[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.__dict__}


def escrow_of(config: Config) -> Escrow:
    escrow = config.evacuation.escrow
    if escrow is None:
        raise InputError([config.problem(("evacuation", "escrow"), "no escrow is configured (evacuation.escrow)")])
    return escrow


def escrow_storage(config: Config, escrow: Escrow) -> StorageTarget:
    """The target's storage, holding the escrow container under its own name (no container prefix)."""
    profile = config.targets.get(escrow.target)
    if profile is None or profile.storage is None:
        raise InputError([config.problem(("evacuation", "escrow", "target"), (
            f"{escrow.target!r} is not a target profile with storage"))])
    spec = profile.storage.model_copy(update={"container_prefix": ""})
    return storage_target(spec, file=str(config.path), field=f"targets.{escrow.target}.storage")


def recipients_of(escrow: Escrow) -> list[Any]:
    pyrage = _pyrage()
    parsed = []
    for n, recipient in enumerate(escrow.recipients):
        try:
            parsed.append(pyrage.ssh.Recipient.from_str(recipient) if recipient.startswith("ssh-")
                          else pyrage.x25519.Recipient.from_str(recipient))
        except pyrage.RecipientError as exc:
            raise InputError([Problem(file="evacuation.escrow", field=f"recipients[{n}]", message=str(exc))]) from None
    return parsed


def seal(config: Config, *, now: datetime | None = None) -> EscrowResult:
    """Read, encrypt and store the escrow (see the module's docstring)."""
    escrow = escrow_of(config)
    recipients = recipients_of(escrow)
    storage = escrow_storage(config, escrow)
    read = source_secrets(config).read(escrow.ssm_paths, escrow.secrets)
    sealed_at = (now or datetime.now(UTC)).astimezone(UTC)
    ciphertext = _pyrage().encrypt(_document(config.service, sealed_at, read.items), recipients)
    key = f"{config.service}-escrow-{sealed_at.strftime('%Y%m%dT%H%M%S%fZ')}.age"
    storage.ensure_container(escrow.container)
    md5 = hashlib.md5(ciphertext).hexdigest()
    stored = storage.upload_stream(escrow.container, key, [ciphertext], content_type="application/octet-stream",
                                   size=len(ciphertext), md5=md5)
    if stored.size != len(ciphertext) or (stored.md5 is not None and stored.md5 != md5):
        raise OperationFailed(f"the escrow {key} is not stored in container {escrow.container} as it was sent")
    names = [{"region": item.region, "name": item.name} for item in read.items]
    return EscrowResult(
        service=config.service, target=escrow.target, container=escrow.container, object=key, bytes=len(ciphertext),
        recipients=len(recipients),
        parameters=[name for name, item in zip(names, read.items, strict=True) if item.kind == "parameter"],
        secrets=[name for name, item in zip(names, read.items, strict=True) if item.kind == "secret"],
        missing=read.missing,
    )


def _document(service: str, sealed_at: datetime, items: list[SecretItem]) -> bytes:
    def entry(item: SecretItem) -> dict[str, Any]:
        value: dict[str, Any] = {"region": item.region, "name": item.name, "version": item.version}
        if item.type is not None:
            value["type"] = item.type
        if item.binary is not None:
            value["binary_base64"] = base64.b64encode(item.binary).decode("ascii")
        else:
            value["value"] = item.text
        return value

    return json.dumps({
        "format": FORMAT, "service": service, "sealed_at": sealed_at.isoformat().replace("+00:00", "Z"),
        "parameters": [entry(item) for item in items if item.kind == "parameter"],
        "secrets": [entry(item) for item in items if item.kind == "secret"],
    }, ensure_ascii=False, indent=1).encode("utf-8")


def list_escrows(config: Config) -> list[dict[str, Any]]:
    """The service's escrows in the container, oldest first: ``{object, bytes}``."""
    escrow = escrow_of(config)
    storage = escrow_storage(config, escrow)
    if not storage.container_exists(escrow.container):
        return []
    found = [
        {"object": item.key, "bytes": item.size} for item in storage.iter_objects(escrow.container)
        if (match := ESCROW_KEY.match(item.key)) and match["service"] == config.service
    ]
    return sorted(found, key=lambda entry: entry["object"])


def open_escrow(config: Config, which: str, identity_file: Path) -> tuple[str, dict[str, Any]]:
    """The escrow ``which`` (an object name, or ``latest``) decrypted with the identities of
    ``identity_file``: its name and its document. InputError when no identity in the file can."""
    pyrage = _pyrage()
    identities = identities_of(identity_file)
    escrow = escrow_of(config)
    escrows = [entry["object"] for entry in list_escrows(config)]
    if which == "latest":
        if not escrows:
            raise OperationFailed(f"no escrow of {config.service} in container {escrow.container}")
        key = escrows[-1]
    elif which in escrows:
        key = which
    else:
        raise InputError([Problem(file="arguments", field="ESCROW", message=(
            f"no escrow {shown(which)} in container {escrow.container} (`failover escrow list` names them)"))])
    storage = escrow_storage(config, escrow)
    ciphertext = bytearray()
    for chunk in storage.download_stream(escrow.container, key):
        ciphertext += chunk
        if len(ciphertext) > MAX_ESCROW_BYTES:
            raise OperationFailed(f"the escrow {key} is larger than {MAX_ESCROW_BYTES // (1024 * 1024)} MiB; refused")
    try:
        plaintext = pyrage.decrypt(bytes(ciphertext), identities)
    except pyrage.DecryptError as exc:
        raise InputError([Problem(file=str(identity_file), message=f"no identity in it can open the escrow {key}: {exc}")]) from None
    try:
        document = json.loads(plaintext)
    except ValueError:
        raise OperationFailed(f"the escrow {key} decrypts to something that is not an escrow document") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise OperationFailed(f"the escrow {key} decrypts to something that is not an escrow document")
    return key, document


def identities_of(path: Path) -> list[Any]:
    """The age identities (``AGE-SECRET-KEY-1...`` lines) or the OpenSSH private key in ``path``."""
    pyrage = _pyrage()
    text = read_input(path, max_bytes=MAX_IDENTITY_BYTES, what="identity file")
    try:
        if "-----BEGIN OPENSSH PRIVATE KEY-----" in text:
            return [pyrage.ssh.Identity.from_buffer(text.encode())]
        lines = [line.strip() for line in text.splitlines()]
        identities = [pyrage.x25519.Identity.from_str(line) for line in lines if line.startswith("AGE-SECRET-KEY-")]
    except pyrage.IdentityError:
        raise InputError([Problem(file=str(path), message="not a valid age identity file")]) from None
    if not identities:
        raise InputError([Problem(file=str(path), message="holds no age identity (AGE-SECRET-KEY-1...)")])
    return identities


def write_opened(directory: Path, key: str, document: dict[str, Any]) -> Path:
    """The opened escrow as ``DIRECTORY/<escrow>.json``, owner-only (0600 in a 0700 directory)."""
    folder = private_directory(directory, what="output directory")
    path = folder / (key.removesuffix(".age") + ".json")
    write_atomic(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n", what="opened escrow")
    return path
