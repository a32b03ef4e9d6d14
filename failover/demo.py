"""``failover demo``'s world: a sample service on an embedded mock AWS account, and the
embedded clouds it fails over to, all on 127.0.0.1 and in one working directory.

- The source: a ``moto_server`` process, one simulated AWS account running the sample
  service "social-app" (beside a staging service that does not belong to it). Stopping
  the process is the account being terminated: nothing answers on its port any more.
- The targets, another "provider" per capability: compute is a second ``moto_server``
  reached through libcloud's EC2 driver (``failover.testing.ec2_shim``); storage is
  libcloud's ``local`` driver in a directory; DNS is :mod:`failover.testing.memdns`, a
  libcloud DNS driver keeping its zones in a JSON file.
- The application: moto's nodes serve nothing, so a small HTTP server on 127.0.0.1 stands
  in for the app the new nodes would run, for the health check.

Only Python packages are needed (``pip install 'failover[demo]'``). What the story does
with this world is ``failover.cli.demo``'s; what it checks afterwards is here.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

SERVICE = "social-app"
REGIONS = ["us-east-1", "eu-west-1"]
TAGS = {"service": SERVICE}
# What the sample service leaves behind (its DynamoDB table and SQS queue), accepted in its config.
ACCEPTED_UNSUPPORTED = ["AWS::DynamoDB::Table", "AWS::SQS::Queue"]
TARGET = "fallback"
SOURCES = ("aws", "libcloud")  # how `failover demo --from` reads the source
BUCKET = "social-app-media"
ZONE = "social.example."
PLAYBOOK = "standard"
# The notice the demo's provider gives; it terminates the account sooner, after the evacuation's first pass.
EVACUATION_DEADLINE = "24h"
COMPUTE_DRIVER = "failover.testing.ec2_shim:MotoEC2NodeDriver"
DNS_DRIVER = "failover.testing.memdns:FileDNSDriver"
# moto's catalogue has no Ubuntu 22.04, which database nodes are built on: its newest Ubuntu stands in.
DATABASE_IMAGE = "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721"
# libcloud warns on every listing of local disk by prefix (restore-databases lists dumps so): noise here.
LOCAL_DISK_WARNING = "Driver LocalStorageDriver does not implement native object filtering"
FAKE_DUMP = b"PGDMP demo: a pg_dump -Fc archive would be here\n"

USER_DATA = """#cloud-config
packages: [nginx]
runcmd:
  - [systemctl, enable, --now, nginx]
"""


def _tags(name: str, **extra: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in {"Name": name, **TAGS, **extra}.items()]


def seed_sample_service(clients: Any) -> dict[str, Any]:
    """Build the sample service. ``clients(service, region)`` returns a boto3 client."""
    ec2 = clients("ec2", "us-east-1")
    image_id = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["*ubuntu*"]}])["Images"][0]["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags("social-vpc")}])["Vpc"]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    web_sg = ec2.create_security_group(
        GroupName="social-web", Description="web tier", VpcId=vpc["VpcId"],
        TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags("social-web")}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]},
    ])
    db_sg = ec2.create_security_group(
        GroupName="social-db", Description="database", VpcId=vpc["VpcId"],
        TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags("social-db")}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web_sg}]},
    ])
    nodes = {}
    for name, role, itype in (("web-1", "web", "t3.medium"), ("web-2", "web", "t3.medium"), ("worker-1", "worker", "t3.large")):
        nodes[name] = ec2.run_instances(
            ImageId=image_id, InstanceType=itype, MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"],
            SecurityGroupIds=[web_sg], UserData=USER_DATA,
            TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(name, role=role)}],
        )["Instances"][0]["InstanceId"]
    eip = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": _tags("web-ip")}])
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=nodes["web-1"])
    volume = ec2.create_volume(
        AvailabilityZone="us-east-1a", Size=50, VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": _tags("uploads")}],
    )["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=nodes["worker-1"], Device="/dev/sdf")

    # A neighbour that must never appear: another service in the same account.
    ec2.run_instances(
        ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "service", "Value": "social-app-staging"}]}],
    )
    # A reporting node in the second region.
    ec2_eu = clients("ec2", "eu-west-1")
    eu_image = ec2_eu.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2_eu.run_instances(
        ImageId=eu_image, InstanceType="t3.small", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags("reports-1", role="reports")}],
    )

    s3 = clients("s3", "us-east-1")
    s3.create_bucket(Bucket="social-app-media")
    s3.put_bucket_tagging(Bucket="social-app-media", Tagging={"TagSet": _tags("media")})
    s3.put_bucket_versioning(Bucket="social-app-media", VersioningConfiguration={"Status": "Enabled"})
    for i in range(12):
        s3.put_object(Bucket="social-app-media", Key=f"avatars/user-{i}.png", Body=b"\x89PNG" + bytes(100 * i),
                      ContentType="image/png")
    s3.put_object(Bucket="social-app-media", Key="posts/café menu.txt", Body=b"bonjour", ContentType="text/plain")

    route53 = clients("route53", "us-east-1")
    zone_id = route53.create_hosted_zone(Name="social.example.", CallerReference="demo")["HostedZone"]["Id"]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id.split("/")[-1], AddTags=_tags("social.example"))
    changes = [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": 300, "ResourceRecords": [{"Value": v}]}}
        for name, rtype, v in (
            ("social.example.", "A", eip["PublicIp"]),
            ("www.social.example.", "CNAME", "social.example."),
            ("social.example.", "MX", "10 mail.provider.example."),
            ("social.example.", "TXT", '"v=spf1 -all"'),
        )
    ]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})

    rds = clients("rds", "us-east-1")
    rds.create_db_instance(
        DBInstanceIdentifier="orders-db", Engine="postgres", EngineVersion="15.4", DBInstanceClass="db.t3.medium",
        AllocatedStorage=20, MasterUsername="app", MasterUserPassword="demo-password-1", Tags=_tags("orders-db"),
    )

    elb = clients("elbv2", "us-east-1")
    subnet_b = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.20.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    lb = elb.create_load_balancer(Name="social-web", Subnets=[subnet["SubnetId"], subnet_b["SubnetId"]],
                                  Scheme="internet-facing", Tags=_tags("social-web"))["LoadBalancers"][0]
    tg = elb.create_target_group(Name="social-web", Protocol="HTTP", Port=80, VpcId=vpc["VpcId"])["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": nodes["web-1"]}, {"Id": nodes["web-2"]}])
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])

    acm = clients("acm", "us-east-1")
    acm.request_certificate(DomainName="social.example", SubjectAlternativeNames=["www.social.example"],
                            ValidationMethod="DNS", Tags=_tags("social-cert"))

    sqs = clients("sqs", "us-east-1")
    sqs.create_queue(QueueName="social-app-jobs", tags={**TAGS})
    ddb = clients("dynamodb", "us-east-1")
    ddb.create_table(TableName="social-app-sessions", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], Tags=_tags("sessions"))
    return {"nodes": nodes, "zone_id": zone_id, "eip": eip["PublicIp"], "bucket": "social-app-media"}


FRONT_DOOR_NAME = "app.social.example."  # an alias to the load balancer, served over HTTPS


def seed_https_front_door(clients: Any) -> dict[str, Any]:
    """The demo's front door: an HTTPS listener (the ACM certificate, whose key cannot leave
    AWS) on the sample service's load balancer, and ``app.social.example`` aliased to it."""
    elb = clients("elbv2", "us-east-1")
    [lb] = [lb for lb in elb.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"] == "social-web"]
    [group] = elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]
    certificates = clients("acm", "us-east-1").list_certificates()["CertificateSummaryList"]
    certificate = next(c["CertificateArn"] for c in certificates if c["DomainName"] == "social.example")
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443,
                        Certificates=[{"CertificateArn": certificate}],
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}])
    route53 = clients("route53", "us-east-1")
    zone_id = next(z["Id"] for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == ZONE)
    alias = {"HostedZoneId": lb["CanonicalHostedZoneId"], "DNSName": f"dualstack.{lb['DNSName']}",
             "EvaluateTargetHealth": False}
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": FRONT_DOOR_NAME, "Type": "A", "AliasTarget": alias}}]})
    return {"load_balancer": lb["LoadBalancerArn"], "dns_name": lb["DNSName"], "certificate": certificate}


def write_demo_certificate(directory: Path) -> dict[str, dict[str, str]]:
    """A self-signed certificate for social.example and its names, standing in for the one a team
    keeps for the day (ACM's key cannot be exported): the profile's ``tls:``, by file (0600)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from failover.files import write_atomic

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "social.example")])
    now = datetime.datetime.now(datetime.UTC)
    names = x509.SubjectAlternativeName([x509.DNSName("social.example"), x509.DNSName("*.social.example")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=30)).add_extension(names, critical=False)
                   .sign(key, hashes.SHA256()))
    write_atomic(directory / "social.example.crt", certificate.public_bytes(serialization.Encoding.PEM))
    write_atomic(directory / "social.example.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files = {"certificate": str(directory / "social.example.crt"), "key": str(directory / "social.example.key")}
    return {"social.example": files, "*.social.example": dict(files)}  # two dicts: YAML aliases are refused


def fake_credentials() -> None:
    """moto needs some credentials; the demo never uses real ones (nor a real endpoint)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(key, None)


# -- the embedded clouds -----------------------------------------------------------------------


class HealthServer:
    """The application the new nodes would serve, answering ``GET /healthz`` with 200 "ok"
    (anything else: 404), in a thread of this process."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _HealthHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-app", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/healthz"

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


class _HealthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        healthy = self.path.split("?")[0] == "/healthz"
        body = b"ok\n" if healthy else b"not found\n"
        self.send_response(200 if healthy else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def answers(url: str, timeout: float = 0.2) -> bool:
    """Whether anything accepts a TCP connection at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False


class SourceWatch:
    """Knocks on the source's endpoint every ``interval`` seconds from a thread, for as
    long as it is used as a context: how often, and how often something answered."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        self.url = url
        self.interval = interval
        self.probes = 0
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="demo-source-watch", daemon=True)

    def __enter__(self) -> SourceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while True:
            self.probes += 1
            self.answered += answers(self.url)
            if self._stop.wait(self.interval):
                return

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.url, "probes_during_run": self.probes, "answers_during_run": self.answered,
                "reachable_during_run": self.answered > 0}


@dataclass
class EmbeddedClouds:
    """The demo's processes and files; see the module's docstring."""

    workdir: Path
    source: Any  # MotoServer: the AWS account
    compute: Any  # MotoServer: the target's compute provider
    app: HealthServer
    storage: dict[str, Any] | None = None  # the profile's storage spec; None: local disk in workdir
    dns: dict[str, Any] | None = None  # the profile's DNS spec; None: the file DNS driver in workdir
    # "aws": the source is read as an AWS account; "libcloud": through libcloud drivers (see SOURCES)
    source_kind: str = "aws"
    tls: dict[str, Any] | None = None  # the profile's tls: (the demo's own certificate); None: none

    @property
    def config_file(self) -> Path:
        return self.workdir / "failover.yaml"

    @property
    def storage_dir(self) -> Path:
        return self.workdir / "target-storage"

    @property
    def dns_file(self) -> Path:
        return self.workdir / "target-dns.json"

    @property
    def source_storage_dir(self) -> Path:
        return self.workdir / "source-storage"

    @property
    def source_dns_file(self) -> Path:
        return self.workdir / "source-dns.json"

    def libcloud_source(self, service: str) -> dict[str, Any]:
        """``source.provider: libcloud``: compute through libcloud's EC2 driver on the first moto_server
        (an EC2-compatible cloud), objects on local disk, DNS in a zone file."""
        credentials = {"key": "demo", "secret": "demo", "host": "127.0.0.1", "port": self.source.port, "secure": False}
        return {
            "provider": "libcloud",
            "compute": {"driver": COMPUTE_DRIVER, "options": credentials},
            "storage": {"driver": "local", "options": {"key": str(self.source_storage_dir)}},
            "dns": {"driver": DNS_DRIVER, "options": {"path": str(self.source_dns_file)}},
            "select": {"tags": {"service": service}, "containers": [BUCKET], "zones": [ZONE]},
        }

    def target_profile(self) -> dict[str, Any]:
        from failover.databases.node import DB_IMAGE_NAME

        credentials = {"key": "demo", "secret": "demo", "host": "127.0.0.1", "port": self.compute.port, "secure": False}
        return {
            "compute": {"driver": COMPUTE_DRIVER, "options": credentials},
            "storage": self.storage or {"driver": "local", "options": {"key": str(self.storage_dir)}},
            "dns": self.dns or {"driver": DNS_DRIVER, "options": {"path": str(self.dns_file)}},
            "images": {DB_IMAGE_NAME: DATABASE_IMAGE},
            **({"tls": self.tls} if self.tls else {}),
        }

    def write_config(self, service: str = SERVICE, regions: list[str] | None = None) -> Path:
        """``failover.yaml``: the source at the first moto_server (resources tagged ``service``),
        the profile ``fallback`` on the embedded targets."""
        self.storage_dir.mkdir(exist_ok=True)
        source = {"provider": "aws", "regions": regions or REGIONS, "select": {"tags": {"service": service}},
                  "endpoint_url": self.source.url}
        if self.source_kind == "libcloud":
            self.source_storage_dir.mkdir(exist_ok=True)
            source = self.libcloud_source(service)
        config = {"service": service, "state": str(self.workdir / "state"), "source": source}
        config["targets"] = {TARGET: self.target_profile()}
        config["readiness"] = {"accept_unsupported": list(ACCEPTED_UNSUPPORTED)}
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return self.config_file

    def source_client(self, service: str, region: str = "us-east-1") -> Any:
        import boto3

        return boto3.session.Session().client(service, region_name=region, endpoint_url=self.source.url)

    def terminate_source(self) -> None:
        """The account is gone: its server stops, and nothing answers on its port any more."""
        self.source.stop()
        if answers(self.source.url):
            raise RuntimeError(f"the source at {self.source.url} still answers after it was stopped")
        if self.source_kind == "libcloud":  # its storage and DNS are gone with it
            for path in (self.source_storage_dir, self.source_dns_file):
                if path.exists():
                    path.rename(path.with_name(path.name + ".terminated"))

    def copy_to_libcloud_source(self) -> None:
        """The sample service's bucket and zone, as seeded on the mock AWS account, onto the libcloud
        source's storage and DNS (written through failover's own libcloud adapters): the service then
        lives on a cloud that failover reads only through libcloud."""
        from failover.config import DnsSpec, StorageSpec
        from providers.libcloud.dns import LibcloudDns
        from providers.libcloud.storage import LibcloudStorage

        s3 = self.source_client("s3")
        storage = LibcloudStorage(StorageSpec(driver="local", options={"key": str(self.source_storage_dir)}))
        storage.ensure_container(BUCKET)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                answer = s3.get_object(Bucket=BUCKET, Key=item["Key"])
                storage.upload_stream(BUCKET, item["Key"], [answer["Body"].read()], answer.get("ContentType"))
        route53 = self.source_client("route53")
        zone_id = next(zone["Id"] for zone in route53.list_hosted_zones()["HostedZones"] if zone["Name"] == ZONE)
        dns = LibcloudDns(DnsSpec(driver=DNS_DRIVER, options={"path": str(self.source_dns_file)}))
        zone = dns.create_zone(ZONE)
        for record in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]:
            values = [value["Value"] for value in record.get("ResourceRecords", [])]
            # the zone file has its own SOA and NS; an alias (to the load balancer, which a libcloud
            # source does not read) has no values a zone file could hold
            if record["Type"] not in ("SOA", "NS") and values:
                dns.set_record(zone, record["Name"], record["Type"], record.get("TTL", 300), values)


@contextmanager
def embedded_clouds(workdir: Path, source_kind: str = "aws") -> Iterator[EmbeddedClouds]:
    """Start the source, the compute target and the app; stop every one of them on the way
    out, however it is left (an error, Ctrl-C)."""
    from failover.testing.servers import MotoServer

    with ExitStack() as stack:
        servers = []
        for name in ("source", "compute"):
            server = MotoServer(log=workdir / f"{name}-moto.log")
            stack.callback(server.stop)  # registered first: a start cut short still stops its process
            servers.append(server.start())
        app = HealthServer()
        stack.callback(app.stop)
        yield EmbeddedClouds(workdir, servers[0], servers[1], app.start(), source_kind=source_kind)


@contextmanager
def temporary_files_in(directory: Path) -> Iterator[None]:
    """This process's temporary files go in ``directory`` meanwhile: libcloud's local disk
    driver leaves a lock file per object written in the temporary directory, for good."""
    directory.mkdir(exist_ok=True)
    previous, tempfile.tempdir = tempfile.tempdir, str(directory)
    try:
        yield
    finally:
        tempfile.tempdir = previous


def warm_up(server: Any) -> threading.Thread:
    """moto loads its catalogue of images on the first EC2 call (seconds): make that call now,
    in a thread, so that it is not counted in the failover. Join the thread before relying on it."""
    import boto3

    def call() -> None:
        client = boto3.session.Session().client("ec2", region_name="us-east-1", endpoint_url=server.url)
        with suppress(Exception):  # the server may be stopping; the run will tell
            client.describe_images(Owners=["amazon"], MaxResults=5)

    thread = threading.Thread(target=call, name="demo-warm-up", daemon=True)
    thread.start()
    return thread


# -- what replication keeps on the target ahead of time ------------------------------------------


def stored_snapshot(config_file: Path, snapshot_id: str) -> dict[str, Any]:
    """A stored snapshot's id, time and counts per kind (as ``failover inventory --json`` shows them)."""
    from failover.config import load_config
    from failover.state import StateStore

    config = load_config(config_file)
    with StateStore(config.state_dir) as store:
        info = store.resolve_snapshot(config.service, snapshot_id)
    return info.to_dict()


def replicate_ahead(config_file: Path, progress: Any = None) -> Any:
    """``failover replicate --target fallback``'s pass, through the library
    (:func:`failover.replicate.replicate`); its ``ReplicateResult``. ``progress``: a
    ``ReplicateProgress``. The ``--from libcloud`` story replicates ahead; the AWS one evacuates."""
    from failover.config import load_config
    from failover.replicate import replicate

    return replicate(load_config(config_file), TARGET, progress=progress)


def place_dump(config_file: Path, database: str, engine: str) -> str:
    """A database dump where ``failover replicate`` keeps them, stored, verified and recorded
    as it stores one (:func:`failover.replicate.dumps.store_dump`): the demo's databases are
    moto's, which hold no data to dump, so a stand-in archive. Its container and key."""
    from failover.config import load_config
    from failover.replicate.dumps import store_dump
    from failover.state import StateStore
    from failover.targets import Targets

    config = load_config(config_file)
    with StateStore(config.state_dir) as store:
        dump = store_dump(Targets(config, TARGET).storage, store, service=config.service, target_name=TARGET,
                          database=database, engine=engine, chunks=[FAKE_DUMP])
    return f"{dump.container}/{dump.key}"


# -- checking the outcome ---------------------------------------------------------------------


@dataclass(frozen=True)
class SourceObject:
    key: str
    size: int
    md5: str


def source_objects(s3: Any, bucket: str) -> dict[str, SourceObject]:
    """The bucket's objects as the source lists them (ETags are MD5s for single-part uploads)."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = SourceObject(item["Key"], int(item["Size"]), item["ETag"].strip('"'))
    return found


def verify_objects(storage: Any, bucket: str, expected: dict[str, SourceObject]) -> dict[str, Any]:
    """Every object of the source bucket is in its target container with the same bytes
    (MD5 of the content read back), and nothing else is."""
    stored = {item.key: item for item in storage.iter_objects(bucket)} if storage.container_exists(bucket) else {}
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    differing = sorted(key for key in set(expected) & set(stored) if _md5(storage, bucket, key) != expected[key].md5)
    verified = len(expected) - len(missing) - len(differing)
    return {
        "bucket": bucket, "container": storage.container_name(bucket), "expected": len(expected),
        "verified": verified, "missing": missing, "differing": differing, "extra": extra,
        "ok": verified == len(expected) and not extra,
    }


def _md5(storage: Any, bucket: str, key: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in storage.download_stream(bucket, key):
        digest.update(chunk)
    return digest.hexdigest()


def dns_answers(dns: Any, zone: str) -> dict[str, list[str]]:
    """``"name TYPE" -> values`` of every record set of a target zone, as its DNS serves them now."""
    found = dns.find_zone(zone)
    if found is None:
        return {}
    return {f"{rs.name} {rs.type}": sorted(rs.values) for rs in dns.list_records(found)}


def check_cutover(changed: list[dict[str, Any]], served: dict[str, list[str]], new_ips: set[str]) -> bool:
    """Every record set the cutover changed now answers with new nodes' addresses only, and
    the DNS serves exactly what the cutover wrote."""
    if not changed:
        return False
    for change in changed:
        after = sorted(change["after"])
        if change["type"] in ("A", "AAAA") and not set(after) <= new_ips:
            return False
        if served.get(f"{change['name']} {change['type']}", []) != after:
            return False
    return True


# -- the run's timeline, from its journal -------------------------------------------------------


@dataclass(frozen=True)
class StepTime:
    """One step of a run: when it started and ended, in seconds after the run started."""

    id: str
    action: str
    status: str
    attempts: int
    needs: tuple[str, ...] = ()
    start_s: float | None = None
    end_s: float | None = None

    @property
    def duration_s(self) -> float:
        return (self.end_s - self.start_s) if self.start_s is not None and self.end_s is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "status": self.status, "attempts": self.attempts,
                "needs": list(self.needs), "start_s": _rounded(self.start_s), "end_s": _rounded(self.end_s),
                "duration_s": round(self.duration_s, 3)}


@dataclass(frozen=True)
class Timeline:
    started_at: str
    ended_at: str | None
    steps: list[StepTime] = field(default_factory=list)

    @property
    def makespan_s(self) -> float:
        """From the run's start to its end (the journal's times)."""
        return _seconds_between(self.started_at, self.ended_at) if self.ended_at else 0.0

    def ended(self, step_id: str) -> float | None:
        return next((step.end_s for step in self.steps if step.id == step_id), None)


def timeline(document: dict[str, Any], definition: dict[str, Any] | None = None) -> Timeline:
    """A run's steps on one time axis, from its journal document (``failover status --json``);
    ``definition`` (the playbook the run ran, as journaled) adds each step's ``needs``."""
    needs = {step["id"]: tuple(step.get("needs") or ()) for step in (definition or {}).get("steps", [])}
    started = document["started_at"]
    steps = [
        StepTime(
            id=step["id"], action=step["action"], status=step["status"], attempts=step["attempts"],
            needs=needs.get(step["id"], ()),
            start_s=_seconds_between(started, step["started_at"]) if step["started_at"] else None,
            end_s=_seconds_between(started, step["ended_at"]) if step["ended_at"] else None,
        )
        for step in document["steps"]
    ]
    return Timeline(started, document.get("ended_at"), steps)


def critical_path(steps: list[StepTime]) -> tuple[float, list[str]]:
    """The longest path through the steps' DAG, each step weighted by its duration: the
    shortest the run could have taken with unlimited parallelism and no overhead between steps."""
    by_id = {step.id: step for step in steps}
    longest: dict[str, tuple[float, list[str]]] = {}

    def through(step_id: str) -> tuple[float, list[str]]:
        if step_id not in longest:
            step = by_id[step_id]
            before = max((through(need) for need in step.needs if need in by_id), default=(0.0, []), key=lambda p: p[0])
            longest[step_id] = (before[0] + step.duration_s, [*before[1], step_id])
        return longest[step_id]

    return max((through(step.id) for step in steps), default=(0.0, []), key=lambda p: p[0])


def _seconds_between(start: str, end: str) -> float:
    return (_parsed(end) - _parsed(start)).total_seconds()


def _parsed(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
