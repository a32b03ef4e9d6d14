"""SSM Parameter Store parameters and Secrets Manager secrets, read with their values for the escrow.

Values are decrypted by AWS (``WithDecryption``) and handed to the caller, which encrypts them at
once; nothing here logs, stores or formats a value. Requests go through one ``AwsSession`` (retried
when transient; unreachable or refused credentials raise ProviderError, exit 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from failover.ports import SecretItem, SecretsRead
from providers.aws.session import AwsSession


class AwsSecrets:
    """The ``secrets`` capability of the ``aws`` source provider, over every configured region."""

    def __init__(self, session: AwsSession, regions: Sequence[str]) -> None:
        self.session = session
        self.regions = list(regions)

    @classmethod
    def from_config(cls, config: Any) -> AwsSecrets:
        source = config.source
        return cls(AwsSession(endpoint_url=source.endpoint_url, profile=source.profile, pool_size=4), source.regions)

    def read(self, ssm_paths: Sequence[str], secrets: Sequence[str]) -> SecretsRead:
        items: dict[tuple[str, str, str], SecretItem] = {}
        found_names: set[str] = set()
        for region in self.regions:
            for path in ssm_paths:
                for item in self._parameters(region, path):
                    items[(item.kind, region, item.name)] = item
                    found_names.add(path)
            for wanted in secrets:
                for item in self._secrets(region, wanted):
                    items[(item.kind, region, item.name)] = item
                    found_names.add(wanted)
        missing = [name for name in [*ssm_paths, *secrets] if name not in found_names and not name.endswith(("/", "*"))]
        return SecretsRead(items=[items[key] for key in sorted(items)], missing=missing)

    def _parameters(self, region: str, path: str) -> list[SecretItem]:
        found = []
        pages = self.session.pages("ssm", region, "get_parameters_by_path", Path=path.rstrip("/") or "/",
                                   Recursive=True, WithDecryption=True)
        for page in pages:
            found += [_parameter(region, parameter) for parameter in page.get("Parameters", [])]
        if not path.endswith("/"):
            answer = self.session.call("ssm", region, "get_parameter", absent=("ParameterNotFound",),
                                       Name=path, WithDecryption=True)
            if answer is not None:
                found.append(_parameter(region, answer["Parameter"]))
        return found

    def _secrets(self, region: str, wanted: str) -> list[SecretItem]:
        if wanted.endswith("*"):
            prefix = wanted[:-1]
            pages = self.session.pages("secretsmanager", region, "list_secrets",
                                       Filters=[{"Key": "name", "Values": [prefix]}] if prefix else [])
            names = [entry["Name"] for page in pages for entry in page.get("SecretList", [])
                     if entry["Name"].startswith(prefix)]
        else:
            names = [wanted]
        found = []
        for name in names:
            answer = self.session.call("secretsmanager", region, "get_secret_value",
                                       absent=("ResourceNotFoundException",), SecretId=name)
            if answer is not None:
                found.append(SecretItem(
                    kind="secret", region=region, name=answer["Name"], text=answer.get("SecretString"),
                    binary=answer.get("SecretBinary"), version=answer.get("VersionId"),
                ))
        return found


def _parameter(region: str, parameter: dict[str, Any]) -> SecretItem:
    return SecretItem(
        kind="parameter", region=region, name=parameter["Name"], text=parameter.get("Value"),
        type=parameter.get("Type"), version=str(parameter["Version"]) if "Version" in parameter else None,
    )
