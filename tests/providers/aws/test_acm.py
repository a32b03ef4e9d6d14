"""The ACM collector against moto: pending and imported certificates, every key type."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE = {"Key": "service", "Value": "svc"}


def certificates(manifest) -> list[dict]:
    return [r for r in manifest.to_dict()["resources"] if r["kind"] == "certificate"]


def request(aws, domain: str, alternatives: list[str], tags: list[dict[str, str]] | None = None) -> str:
    kwargs = {"Tags": tags} if tags else {}
    return aws("acm").request_certificate(DomainName=domain, SubjectAlternativeNames=alternatives, **kwargs)[
        "CertificateArn"
    ]


def self_signed_ec_certificate(domain: str, not_after: datetime) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain), x509.DNSName(f"www.{domain}")]), False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pem_key


def test_pending_certificate_with_deduplicated_domains(aws, inventory):
    arn = request(aws, "example.com", ["example.com", "www.example.com", "api.example.com"], [SERVICE])
    # moto gives a pending certificate a NotAfter (real ACM has none until issued)
    expected_not_after = aws("acm").describe_certificate(CertificateArn=arn)["Certificate"]["NotAfter"]

    assert certificates(inventory()) == [
        {
            "kind": "certificate",
            "id": arn,
            "name": "example.com",
            "region": "us-east-1",
            "tags": {"service": "svc"},
            "domains": ["api.example.com", "example.com", "www.example.com"],
            "status": "PENDING_VALIDATION",
            "not_after": expected_not_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    ]


def test_imported_elliptic_curve_certificate_with_exact_expiry(aws, inventory):
    body, key = self_signed_ec_certificate("shop.example", datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC))
    arn = aws("acm").import_certificate(
        Certificate=body, PrivateKey=key, Tags=[SERVICE, {"Key": "Name", "Value": "shop tls"}]
    )["CertificateArn"]

    assert certificates(inventory()) == [
        {
            "kind": "certificate",
            "id": arn,
            "name": "shop tls",
            "region": "us-east-1",
            "tags": {"Name": "shop tls", "service": "svc"},
            "domains": ["shop.example", "www.shop.example"],
            "status": "ISSUED",
            "not_after": "2031-02-03T04:05:06Z",
        }
    ]


def test_only_selected_certificates_in_configured_regions(aws, inventory):
    mine = request(aws, "mine.example", ["mine.example"], [SERVICE])
    request(aws, "untagged.example", ["untagged.example"])
    request(aws, "staging.example", ["staging.example"], [{"Key": "service", "Value": "svc-staging"}])
    dublin = aws("acm", "eu-west-1").request_certificate(DomainName="eu.example", Tags=[SERVICE])["CertificateArn"]

    assert [c["id"] for c in certificates(inventory())] == [mine]
    both = inventory(regions=["us-east-1", "eu-west-1"])
    assert [(c["id"], c["region"]) for c in certificates(both)] == [(dublin, "eu-west-1"), (mine, "us-east-1")]
