"""An emulated world for end-to-end tests, benchmarks and demos of a whole failover: an
AWS account running the sample service, a target provider to fail over to, and the
service's application, all local processes on 127.0.0.1.

- the source: a ``moto_server`` process seeded with :func:`failover.demo.seed_sample_service`;
- the target's compute: a second ``moto_server`` (another account) through the EC2 shim;
- the target's storage, by ``storage``: ``"azurite"`` (libcloud ``azure_blobs``), ``"s3"``
  (libcloud ``minio`` against the target's ``moto_server``), ``"aws-s3"`` (libcloud's AWS
  ``s3`` driver, with its region, against the same) or ``"local"`` (a directory);
- the target's DNS, by ``dns``: ``"powerdns"``, PowerDNS with its HTTP API answering queries
  on ``dns_port``; or ``"route53"``, libcloud's Route53 driver (through
  :mod:`failover.testing.route53_shim`) against the target's ``moto_server``. With
  ``storage="aws-s3", dns="route53"`` the whole target is AWS through libcloud;
- with ``fail_ratio`` or ``latency_s``: a :class:`LatencyProxy` in front of each HTTP
  target (compute, storage, the DNS API) answering that share of requests with a 503;
- the application: an HTTP server whose ``/healthz`` answers 200 (moto's nodes serve
  nothing, so runs are given ``--var health_url=...``, see :attr:`EmulatedWorld.run_vars`);
- a database dump in target storage, where replication puts one (``naming.DUMPS_BUCKET``),
  stored and recorded in the state store by :func:`failover.replicate.dumps.store_dump`;
- with ``postgres=True``, real databases instead of that dump: two throwaway PostgreSQL
  servers (:class:`failover.testing.postgres.LocalPostgres`). The source server's database
  ``orders``, seeded with rows, stands in for the RDS instance ``orders-db``: the config's
  ``databases.orders-db.dsn`` is ``${env:FAILOVER_WORLD_SOURCE_DSN}`` (what ``replicate``
  dumps from). The target server has an empty database ``orders`` whose DSN is in
  ``FAILOVER_WORLD_TARGET_DSN`` (for ``--var database_dsn_env=FAILOVER_WORLD_TARGET_DSN``,
  a restore in mode dsn). No dump is planted: ``replicate`` makes one;
- a ready ``failover.yaml`` (target profile ``fallback``, secrets as ``${env:...}``) in
  ``workdir``, and :attr:`EmulatedWorld.env` with what the CLI needs to use it.

The API, kept stable for the tests, ``benchmarks/failover.py`` and the demo::

    with EmulatedWorld(storage="azurite", fail_ratio=0.0) as world:
        world.failover("inventory")                  # CliResult(code, stdout, stderr); .json()
        world.failover("run", "standard", "--target", world.target, "--yes", "--json", *world.run_vars)
        world.start_failover("resume", run_id)       # a Popen, to kill
        world.target_nodes()                         # {name: TargetNode} live on the target
        world.target_objects("social-app-media")     # {key: Blob(size, sha256, content_type)}
        world.source_objects["social-app-media"]     # the same, as seeded on the source
        world.containers(), world.zones()            # names in target storage and DNS
        world.dns("social.example.", "A")            # sorted answers, over DNS (UDP)
        world.source.stop()                          # the AWS account is gone

    with EmulatedWorld(postgres=True) as world:      # real databases, see above
        world.source_rows, world.target_tables()     # {table: [row as text, ...]} as seeded / on the target now
        world.source_database.stop()                 # the source database is gone too

A missing emulator raises :class:`failover.testing.emulators.EmulatorMissing`, naming
``scripts/install-test-deps``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import boto3
import yaml

from failover import naming
from failover.databases.node import DB_IMAGE_NAME
from failover.demo import ACCEPTED_UNSUPPORTED, REGIONS, SERVICE, TAGS, seed_sample_service
from failover.testing.emulators import Azurite, EmulatorMissing, PowerDns
from failover.testing.proxy import LatencyProxy
from failover.testing.servers import MotoServer

STORAGES = ("azurite", "s3", "aws-s3", "local")
DNS_TARGETS = ("powerdns", "route53")
TARGET = "fallback"
REGION = "us-east-1"
CONTAINER_PREFIX = "replica-"
DATABASE = ("orders-db", "postgres")  # the sample service's database: name, engine
DUMP_BODY = b"PGDMP\x01\x0e\x00 a pg_dump -Fc archive, as replication stores one\n"
UBUNTU_IMAGE = "ami-1e749f67"  # Ubuntu 14.04 in moto's catalogue (every account has it)
EC2_SHIM = "failover.testing.ec2_shim:MotoEC2NodeDriver"
ROUTE53_SHIM = "failover.testing.route53_shim:MotoRoute53DNSDriver"
# The variables the config's ${env:...} references name, and what the CLI needs for AWS.
SECRET_VARIABLES = {"compute": "FAILOVER_E2E_COMPUTE_SECRET", "storage": "FAILOVER_E2E_STORAGE_SECRET",
                    "dns": "FAILOVER_E2E_PDNS_KEY"}
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
MOTO_SECRET = "failover-world-moto-secret"
UNSET_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "FAILOVER_CONFIG")
# With postgres=True: the variables holding the DSNs of the source and the target database.
SOURCE_DSN_VARIABLE = "FAILOVER_WORLD_SOURCE_DSN"
TARGET_DSN_VARIABLE = "FAILOVER_WORLD_TARGET_DSN"
PG_DATABASE = "orders"  # the database's name on both servers
# The source database: customers, their orders (a foreign key, a sequence), 200 rows in all.
SOURCE_SCHEMA = (
    "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)",
    ("CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, "
     "item text NOT NULL, cents int NOT NULL, placed_at timestamptz NOT NULL)"),
    "INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 50) g",
    ("INSERT INTO orders (customer_id, item, cents, placed_at) SELECT 1 + g % 50, 'item ' || g, g * 125, "
     "timestamptz '2024-01-15 10:00:00+00' + g * interval '1 minute' FROM generate_series(1, 150) g"),
)
TABLES = ("customers", "orders")


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass(frozen=True)
class Blob:
    """A stored object as the tests compare it: its content's size and SHA-256, its content type."""

    size: int
    sha256: str
    content_type: str | None


@dataclass(frozen=True)
class TargetNode:
    id: str
    name: str
    instance_type: str
    public_ip: str | None
    private_ip: str | None
    security_groups: tuple[str, ...]
    tags: dict[str, str] = field(compare=False)


class HealthServer:
    """The service's application on the target: ``/healthz`` answers 200, anything else 404."""

    def __init__(self) -> None:
        self.requests = 0
        world = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                world.requests += 1
                status, body = (200, b"ok\n") if self.path.split("?")[0] == "/healthz" else (404, b"not found\n")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/healthz"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class EmulatedWorld:
    """The source, the target and the application; a context manager (see the module's docstring)."""

    service = SERVICE
    target = TARGET

    def __init__(
        self, storage: str = "azurite", *, fail_ratio: float = 0.0, latency_s: float = 0.0, seed: int = 0,
        workdir: Path | None = None, postgres: bool = False, dns: str = "powerdns",
    ) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, not {storage!r}")
        if dns not in DNS_TARGETS:
            raise ValueError(f"dns must be one of {', '.join(DNS_TARGETS)}, not {dns!r}")
        self.storage = storage
        self.dns_target = dns
        self.fail_ratio = fail_ratio
        self.latency_s = latency_s
        self.seed = seed
        self._workdir_arg = workdir
        self._stack = ExitStack()
        self.proxies: dict[str, LatencyProxy] = {}  # compute, storage, dns (with faults or latency)
        self.seeded: dict[str, Any] = {}  # what seed_sample_service returned
        self.source_objects: dict[str, dict[str, Blob]] = {}
        self.dump_key = ""
        self.postgres = postgres
        self.source_database: Any = None  # LocalPostgres, with postgres=True
        self.target_database: Any = None
        self.source_rows: dict[str, list[str]] = {}  # table -> rows as seeded (see table_rows)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if self._workdir_arg is None:
            self.workdir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="failover-world-")))
        else:
            self.workdir = Path(self._workdir_arg)
            self.workdir.mkdir(parents=True, exist_ok=True)
        # Emulators first: a missing one fails before anything slow starts.
        self.azurite = self._stack.enter_context(Azurite()) if self.storage == "azurite" else None
        self.pdns = self._stack.enter_context(PowerDns()) if self.dns_target == "powerdns" else None
        if self.postgres:
            self._start_postgres()
        self.source = self._moto("source")
        self.compute = self._moto("target")
        self.app = HealthServer()
        self._stack.callback(self.app.stop)
        self.local_path = self.workdir / "target-storage"
        if self.storage == "local":
            self.local_path.mkdir(exist_ok=True)
        self._start_proxies()
        self.seeded = seed_sample_service(lambda service, region=REGION: self.source_client(service, region))
        self.source_objects = {self.seeded["bucket"]: self._source_blobs(self.seeded["bucket"])}
        self.config_path = self._write_config()
        self.env = self._environment()
        if self.postgres:
            self._ensure_rds_instance()
            self._seed_databases()
        else:
            self._seed_dump()

    def stop(self) -> None:
        self._stack.close()
        self.proxies.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _moto(self, name: str) -> MotoServer:
        server = MotoServer(log=self.workdir / f"moto-{name}.log").start()
        self._stack.callback(server.stop)
        return server

    def _start_postgres(self) -> None:
        """The source's and the target's PostgreSQL servers, started side by side."""
        from concurrent.futures import ThreadPoolExecutor
        from secrets import token_hex

        from failover.testing.postgres import LocalPostgres, PostgresMissing

        try:
            # Passwords of this world only (a quote in each: found where it is not escaped).
            servers = [LocalPostgres(password=f"{side}'{token_hex(8)}") for side in ("src", "tgt")]
        except PostgresMissing as exc:
            raise EmulatorMissing(f"{exc} (scripts/install-test-deps installs it)") from None
        for server in servers:
            self._stack.callback(server.stop)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda server: server.start(), servers))
        self.source_database, self.target_database = servers

    def _upstreams(self) -> dict[str, str]:
        """The URL of each target's HTTP API (local disk has none)."""
        dns_url = f"http://127.0.0.1:{self.pdns.api_port}" if self.pdns else self.compute.url  # Route53: the target account
        urls = {"compute": self.compute.url, "dns": dns_url}
        if self.storage == "azurite":
            urls["storage"] = f"http://127.0.0.1:{self.azurite.port}"
        elif self.storage in ("s3", "aws-s3"):
            urls["storage"] = self.compute.url  # the target account's S3
        return urls

    def _start_proxies(self) -> None:
        if not self.fail_ratio and not self.latency_s:
            return
        for offset, (name, upstream) in enumerate(self._upstreams().items()):
            proxy = LatencyProxy(upstream, self.latency_s, fail_ratio=self.fail_ratio, seed=self.seed + offset)
            self.proxies[name] = self._stack.enter_context(proxy)

    # -- what the CLI sees -------------------------------------------------------------------
    @property
    def health_url(self) -> str:
        return self.app.url

    @property
    def run_vars(self) -> tuple[str, ...]:
        """The ``--var`` arguments a run of the standard playbook needs here."""
        return ("--var", f"health_url={self.health_url}")

    @property
    def state_dir(self) -> Path:
        """The config's state directory (the journal of every run)."""
        return self.workdir / ".failover"

    @property
    def keeps_metadata(self) -> bool:
        """Whether target storage keeps content types (local disk does not)."""
        return self.storage != "local"

    def failover(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> CliResult:
        """Run the real ``failover`` executable in ``workdir``, with the world's config and secrets."""
        proc = subprocess.run(
            [*failover_command(), *args], cwd=self.workdir, capture_output=True, text=True, timeout=timeout,
            env=self._child_env(env), check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def start_failover(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``failover ARGS`` without waiting (stdout and stderr piped, as text)."""
        return subprocess.Popen(
            [*failover_command(), *args], cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=self._child_env(env),
        )

    def _child_env(self, extra: dict[str, str] | None) -> dict[str, str]:
        inherited = {key: value for key, value in os.environ.items() if key not in UNSET_VARIABLES}
        return {**inherited, **self.env, **(extra or {})}

    def _environment(self) -> dict[str, str]:
        # moto takes any secret; a long one, so that masking it never touches a word it is part of
        secrets = {"compute": MOTO_SECRET, "dns": self.pdns.api_key if self.pdns else MOTO_SECRET}
        if self.storage != "local":
            secrets["storage"] = self.azurite.driver_options["secret"] if self.azurite else MOTO_SECRET
        env = {SECRET_VARIABLES[name]: value for name, value in secrets.items()}
        if self.postgres:
            env[SOURCE_DSN_VARIABLE] = self.source_database.dsn(PG_DATABASE)
            env[TARGET_DSN_VARIABLE] = self.target_database.dsn(PG_DATABASE)
        return {**AWS_CREDENTIALS, **env, "FAILOVER_CONFIG": str(self.config_path)}

    @property
    def database_passwords(self) -> tuple[str, ...]:
        """The databases' passwords, as they are and as a DSN writes them: what must never be
        found in what failover writes or prints."""
        from urllib.parse import quote

        servers = [server for server in (self.source_database, self.target_database) if server is not None]
        return tuple({form for server in servers for form in (server.password, quote(server.password, safe=""))})

    def _write_config(self) -> Path:
        profile = {"compute": {"driver": EC2_SHIM, "options": self._http_options("compute", {"key": "testing"})},
                   "storage": {**self._storage_spec(), "container_prefix": CONTAINER_PREFIX},
                   "dns": self._dns_spec(),
                   # moto's catalogue has no Ubuntu 22.04, which restore-databases asks for.
                   "images": {DB_IMAGE_NAME: UBUNTU_IMAGE}}
        config = {
            "service": SERVICE,
            "state": ".failover",
            "source": {"provider": "aws", "regions": REGIONS, "select": {"tags": dict(TAGS)},
                       "endpoint_url": self.source.url},
            "targets": {TARGET: profile},
            "readiness": {"accept_unsupported": list(ACCEPTED_UNSUPPORTED)},
        }
        if self.postgres:
            config["databases"] = {DATABASE[0]: {"dsn": f"${{env:{SOURCE_DSN_VARIABLE}}}"}}
        path = self.workdir / "failover.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _dns_spec(self) -> dict[str, Any]:
        if self.dns_target == "route53":
            return {"driver": ROUTE53_SHIM, "options": self._http_options("dns", {"key": "testing"})}
        return {"driver": "powerdns", "options": self._http_options("dns", {"api_version": "v1"})}

    def _http_options(self, target: str, options: dict[str, Any]) -> dict[str, Any]:
        """A driver's options: where it connects (through the proxy, if any) and its secret as ``${env:...}``."""
        secret = "key" if target == "dns" and self.dns_target == "powerdns" else "secret"
        host, port = self._endpoint(target)
        return {**options, secret: f"${{env:{SECRET_VARIABLES[target]}}}", "host": host, "port": port, "secure": False}

    def _endpoint(self, target: str) -> tuple[str, int]:
        url = urlsplit(self.proxies[target].url if target in self.proxies else self._upstreams()[target])
        return url.hostname, url.port

    def _storage_spec(self) -> dict[str, Any]:
        if self.storage == "local":
            return {"driver": "local", "options": {"key": str(self.local_path)}}
        if self.storage == "azurite":
            return {"driver": "azure_blobs", "options": self._http_options("storage", {"key": self.azurite.driver_options["key"]})}
        if self.storage == "aws-s3":
            return {"driver": "s3", "options": self._http_options("storage", {"key": "testing", "region": REGION})}
        return {"driver": "minio", "options": self._http_options("storage", {"key": "testing"})}

    # -- the source ----------------------------------------------------------------------------
    def source_client(self, service: str, region: str = REGION) -> Any:
        return _client(self.source.url, service, region)

    def _source_blobs(self, bucket: str) -> dict[str, Blob]:
        s3 = self.source_client("s3")
        blobs = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                got = s3.get_object(Bucket=bucket, Key=item["Key"])
                blobs[item["Key"]] = _blob(got["Body"].read(), got.get("ContentType"))
        return blobs

    # -- the target, seen directly (never through the proxies) ----------------------------------
    def compute_client(self, service: str = "ec2") -> Any:
        return _client(self.compute.url, service, REGION)

    def target_nodes(self) -> dict[str, TargetNode]:
        """The target's live (not terminated) nodes by name; ValueError when a name is there twice."""
        nodes: dict[str, TargetNode] = {}
        for node in self.target_instances():
            tags = {tag["Key"]: tag["Value"] for tag in node.get("Tags", [])}
            name = tags.get("Name", node["InstanceId"])
            if name in nodes:
                raise ValueError(f"two live nodes named {name} on the target: {nodes[name].id}, {node['InstanceId']}")
            nodes[name] = TargetNode(
                id=node["InstanceId"], name=name, instance_type=node["InstanceType"],
                public_ip=node.get("PublicIpAddress"), private_ip=node.get("PrivateIpAddress"),
                security_groups=tuple(sorted(group["GroupName"] for group in node.get("SecurityGroups", []))), tags=tags,
            )
        return nodes

    def target_instances(self) -> list[dict[str, Any]]:
        """Every live instance on the target, as EC2 describes it (to count duplicates)."""
        reservations = self.compute_client().describe_instances()["Reservations"]
        return [node for reservation in reservations for node in reservation["Instances"]
                if node["State"]["Name"] not in ("terminated", "shutting-down")]

    def security_groups(self) -> dict[str, dict[str, Any]]:
        """The target's security groups by name, but the default one."""
        groups = self.compute_client().describe_security_groups()["SecurityGroups"]
        return {group["GroupName"]: group for group in groups if group["GroupName"] != "default"}

    def storage_driver(self) -> Any:
        from libcloud.storage.providers import get_driver

        if self.storage == "local":
            return get_driver("local")(str(self.local_path))
        if self.storage == "azurite":
            return get_driver("azure_blobs")(**self.azurite.driver_options)
        return get_driver("minio")("testing", "testing", secure=False, host="127.0.0.1", port=self.compute.port)  # either S3

    def container_name(self, bucket: str) -> str:
        return CONTAINER_PREFIX + bucket

    def containers(self) -> list[str]:
        return sorted(container.name for container in self.storage_driver().list_containers())

    def target_objects(self, bucket: str) -> dict[str, Blob]:
        """Every object in the bucket's container, its content read back; {} when there is no container."""
        from libcloud.storage.types import ContainerDoesNotExistError

        driver = self.storage_driver()
        try:
            container = driver.get_container(self.container_name(bucket))
        except ContainerDoesNotExistError:
            return {}
        blobs = {}
        for listed in driver.list_container_objects(container):
            item = driver.get_object(container.name, listed.name)  # S3 listings lack the content type
            content = b"".join(driver.download_object_as_stream(item))
            blobs[item.name] = _blob(content, (item.extra or {}).get("content_type"))
        return blobs

    def zones(self) -> list[str]:
        """The zones the target DNS serves, fully qualified."""
        if self.dns_target == "route53":
            return sorted(zone["Name"] for zone in self.compute_client("route53").list_hosted_zones()["HostedZones"])
        return sorted(zone["name"] for zone in self._pdns_api("GET", "zones"))

    def dns(self, name: str, type: str = "A") -> list[str]:
        """The target DNS's answers for a name and type, sorted; [] for no such name or record:
        PowerDNS asked over DNS (UDP); Route53 (moto serves no DNS) through its API."""
        if self.dns_target == "route53":
            return self._route53_values(name, type)
        import dns.message
        import dns.query
        import dns.rdatatype

        query = dns.message.make_query(name, type)
        answer = dns.query.udp(query, "127.0.0.1", port=self.pdns.dns_port, timeout=5)
        wanted = dns.rdatatype.from_text(type)
        return sorted(rdata.to_text() for rrset in answer.answer if rrset.rdtype == wanted for rdata in rrset)

    def _route53_values(self, name: str, type: str) -> list[str]:
        route53 = self.compute_client("route53")
        wanted = name.lower().rstrip(".") + "."
        zones = [z for z in route53.list_hosted_zones()["HostedZones"]
                 if wanted == z["Name"] or wanted.endswith("." + z["Name"])]
        if not zones:
            return []
        zone = max(zones, key=lambda z: len(z["Name"]))  # the closest enclosing zone
        sets = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
        return sorted(v["Value"] for s in sets if s["Name"] == wanted and s["Type"] == type
                      for v in s.get("ResourceRecords", []))

    def _pdns_api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.pdns.api_port}/api/v1/servers/localhost/{path}", method=method,
            headers={"X-API-Key": self.pdns.api_key},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    # -- the databases (postgres=True) ----------------------------------------------------------------
    def table_rows(self, side: str, table: str) -> list[str]:
        """A table's rows on the ``"source"`` or ``"target"`` server, each as PostgreSQL writes
        a row as text (``(1,"customer 1")``), in id order."""
        server = {"source": self.source_database, "target": self.target_database}[side]
        return server.sql(PG_DATABASE, f"SELECT t::text FROM {table} t ORDER BY id").splitlines()

    def target_tables(self) -> dict[str, list[str]]:
        """Every table of the source, as the target database has it now ([] where it has none)."""
        names = set(self.target_database.sql(
            PG_DATABASE, "SELECT string_agg(tablename, ' ') FROM pg_tables WHERE schemaname = 'public'").split())
        return {table: self.table_rows("target", table) if table in names else [] for table in TABLES}

    def dump_keys(self) -> list[str]:
        """The keys of the sample database's dumps in target storage, oldest first."""
        from libcloud.storage.types import ContainerDoesNotExistError

        driver = self.storage_driver()
        try:
            container = driver.get_container(self.container_name(naming.DUMPS_BUCKET))
        except ContainerDoesNotExistError:
            return []
        prefix = naming.dump_prefix(DATABASE[0])
        return sorted(item.name for item in driver.list_container_objects(container) if item.name.startswith(prefix))

    def _ensure_rds_instance(self) -> None:
        """The RDS instance the source database stands for (the sample service has it)."""
        rds = self.source_client("rds")
        if any(db["DBInstanceIdentifier"] == DATABASE[0] for db in rds.describe_db_instances()["DBInstances"]):
            return
        rds.create_db_instance(
            DBInstanceIdentifier=DATABASE[0], Engine=DATABASE[1], EngineVersion="15.4", DBInstanceClass="db.t3.medium",
            AllocatedStorage=20, MasterUsername="app", MasterUserPassword="world-password-1",
            Tags=[{"Key": key, "Value": value} for key, value in {**TAGS, "Name": DATABASE[0]}.items()],
        )

    def _seed_databases(self) -> None:
        """The source database with its rows; an empty one of the same name on the target."""
        for server in (self.source_database, self.target_database):
            server.recreate(PG_DATABASE)
        for statement in SOURCE_SCHEMA:
            self.source_database.sql(PG_DATABASE, statement)
        self.source_rows = {table: self.table_rows("source", table) for table in TABLES}

    # -- seeding the target -------------------------------------------------------------------------
    def _seed_dump(self) -> None:
        """A dump of the sample database taken now, stored, verified and recorded as replication
        stores one (:func:`failover.replicate.dumps.store_dump`): the sample's RDS instance is
        moto's, with no data to dump, so a stand-in archive."""
        from failover.adapters import storage_target
        from failover.config import StorageSpec
        from failover.replicate.dumps import store_dump
        from failover.state import StateStore

        storage = storage_target(StorageSpec(**self._direct_storage_spec(), container_prefix=CONTAINER_PREFIX))
        with StateStore(self.state_dir) as store:
            dump = store_dump(storage, store, service=SERVICE, target_name=TARGET, database=DATABASE[0],
                              engine=DATABASE[1], chunks=[DUMP_BODY])
        self.dump_key = dump.key

    def _direct_storage_spec(self) -> dict[str, Any]:
        """The target storage's driver and options, as :meth:`storage_driver` reaches it (never
        through a proxy), its secret written out."""
        if self.storage == "local":
            return {"driver": "local", "options": {"key": str(self.local_path)}}
        if self.storage == "azurite":
            return {"driver": "azure_blobs", "options": dict(self.azurite.driver_options)}
        driver, region = ("s3", {"region": REGION}) if self.storage == "aws-s3" else ("minio", {})
        return {"driver": driver, "options": {"key": "testing", "secret": "testing", "secure": False,
                                              "host": "127.0.0.1", "port": self.compute.port, **region}}


def failover_command() -> list[str]:
    """The installed ``failover`` executable beside this Python, else the module."""
    script = Path(sys.executable).with_name("failover")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "failover.cli.main"]


def _client(url: str, service: str, region: str) -> Any:
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, region_name=region, endpoint_url=url, **credentials)


def _blob(content: bytes, content_type: str | None) -> Blob:
    return Blob(len(content), hashlib.sha256(content).hexdigest(), content_type)


