"""A load balancer as HAProxy runs it: the configuration rendered from a ``BalancerPlan``, and
the cloud-init of the load-balancer node (HAProxy from the distribution's packages).

Only checked values reach the configuration (:mod:`failover.frontdoor` checked them): ports
as integers, addresses as parsed, health-check paths and cookie names in a plain charset.
Frontends, backends and servers are named by port and position (``fe_443``, ``be_443``,
``s1``), never by a source name; a source name appears only in a comment, in the comment
charset of :mod:`failover.cloudinit`.

TLS: HAProxy reads every PEM (certificate then key) in ``CERTS_DIR`` and picks one by SNI.
A certificate from the profile's ``tls:`` is written there (0600) by cloud-init. ACME: until a
certificate is issued, a self-signed placeholder per name lets HAProxy start; certbot (from
the distribution's packages) answers HTTP-01 behind HAProxy's port-80 frontend (the path
``/.well-known/acme-challenge/`` goes to certbot's standalone server on 127.0.0.1:8402), a
systemd timer retries every five minutes until DNS points at the node, and certbot's deploy
hook writes the issued chain and key into ``CERTS_DIR`` and reloads HAProxy (certbot's own
timer renews it the same way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from failover.cloudinit import comment_text
from failover.frontdoor import BalancerPlan, Health, ListenerPlan, Sticky

CONFIG_PATH = "/etc/haproxy/haproxy.cfg"
CERTS_DIR = "/etc/haproxy/certs"
ACME_PORT = 8402
ACME_SCRIPT = "/usr/local/sbin/failover-acme"
ACME_HOOK = "/usr/local/sbin/failover-acme-deploy"
ACME_UNIT = "failover-acme"
ACME_PATH = "/.well-known/acme-challenge/"
STICKY_COOKIE = "FAILOVERLB"


def render(plan: BalancerPlan, *, bind: str = "", certs_dir: str = CERTS_DIR, log: str = "/dev/log local0",
           runtime: bool = True) -> str:
    """The whole ``haproxy.cfg`` of one balancer. ``bind`` is the address the frontends listen
    on (empty: every address); ``runtime`` adds the node's daemon settings (user, chroot, socket)."""
    acme = bool(plan.acme_domains)
    lines = [
        f"# Written by failover for load balancer {comment_text(plan.lb.name)} ({comment_text(plan.lb.id)}).",
        "global",
        f"    log {log}",
        "    maxconn 4096",
    ]
    if runtime:
        lines += ["    user haproxy", "    group haproxy", "    daemon", "    stats socket /run/haproxy/admin.sock mode 660 level admin"]
    lines += [
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        "",
        "defaults",
        "    log global",
        "    option dontlognull",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout check 5s",
        "",
    ]
    ports = {listener.port for listener in plan.listeners}
    for listener in plan.listeners:
        lines += _frontend(listener, bind, certs_dir, acme) + [""] + _backend(listener) + [""]
    if acme:
        if 80 not in ports:
            lines += _acme_frontend(bind) + [""]
        lines += ["backend be_acme", "    mode http", f"    server certbot 127.0.0.1:{ACME_PORT}", ""]
    for refused in plan.refused:
        lines.append(f"# not carried: {comment_text(refused)}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _bind(bind: str, port: int) -> str:
    return f"{bind}:{port}" if bind else f":::{port} v4v6"


def _frontend(listener: ListenerPlan, bind: str, certs_dir: str, acme: bool) -> list[str]:
    tls = f" ssl crt {certs_dir}/" if listener.terminate_tls else ""
    lines = [
        f"frontend fe_{listener.port}",
        f"    bind {_bind(bind, listener.port)}{tls}",
        f"    mode {listener.mode}",
    ]
    if listener.mode == "http":
        lines += ["    option httplog", "    option forwardfor"]
        if listener.terminate_tls:
            lines.append("    http-request set-header X-Forwarded-Proto https")
        if acme and listener.port == 80 and not listener.terminate_tls:
            lines += [f"    acl acme_challenge path_beg {ACME_PATH}", "    use_backend be_acme if acme_challenge"]
    else:
        lines.append("    option tcplog")
    lines.append(f"    default_backend be_{listener.port}")
    return lines


def _acme_frontend(bind: str) -> list[str]:
    """Port 80 for ACME's HTTP-01 challenge when the balancer has no HTTP listener there; every
    other request is redirected to HTTPS."""
    return [
        "frontend fe_acme",
        f"    bind {_bind(bind, 80)}",
        "    mode http",
        f"    acl acme_challenge path_beg {ACME_PATH}",
        "    use_backend be_acme if acme_challenge",
        "    http-request redirect scheme https code 301 unless acme_challenge",
    ]


def _backend(listener: ListenerPlan) -> list[str]:
    lines = [f"backend be_{listener.port}", f"    mode {listener.mode}", "    balance roundrobin"]
    health, sticky = listener.health, listener.sticky
    if health is not None and health.path is not None:
        lines += ["    option httpchk", f"    http-check send meth GET uri {health.path}",
                  "    http-check expect status 200-399"]
    lines += _stickiness(sticky)
    for number, server in enumerate(listener.servers, start=1):
        lines.append(f"    # s{number}: the new node of {comment_text(server.source_id)}")
        lines.append(f"    server s{number} {server.address}:{server.port}{_server_options(listener, health, sticky, number)}")
    if not listener.servers:
        lines.append("    # no backend node: requests are answered 503")
    return lines


def _stickiness(sticky: Sticky | None) -> list[str]:
    if sticky is None:
        return []
    if sticky.type == "source_ip":
        return ["    stick-table type ip size 200k expire 30m", "    stick on src"]
    if sticky.type == "app_cookie":
        return [f"    cookie {sticky.cookie_name} prefix nocache"]
    maxlife = f" maxlife {sticky.duration_s}s" if sticky.duration_s else ""
    return [f"    cookie {STICKY_COOKIE} insert indirect nocache{maxlife}"]


def _server_options(listener: ListenerPlan, health: Health | None, sticky: Sticky | None, number: int) -> str:
    options = []
    if health is not None:
        options += ["check", f"inter {health.interval_s}s", f"rise {health.rise}", f"fall {health.fall}"]
        if health.port is not None and health.port != listener.backend_port:
            options.append(f"port {health.port}")
    if listener.backend_tls:
        options += ["ssl", "verify none"]  # the new nodes' own certificates are not known here
        if health is not None:
            options.append("check-ssl")
    if sticky is not None and sticky.type in ("lb_cookie", "app_cookie"):
        options.append(f"cookie s{number}")
    return "".join(f" {option}" for option in options)


# -- the load-balancer node's cloud-init ---------------------------------------------------------


def cloud_config(plan: BalancerPlan, certificates: Mapping[str, str], acme_email: str | None,
                 acme_directory: str) -> dict[str, Any]:
    """The cloud-config of the load-balancer node: HAProxy installed and configured, each
    profile certificate (``{file name: PEM of certificate and key}``) in ``CERTS_DIR``, and for
    ACME the placeholders, certbot and the retry timer."""
    acme = plan.acme_domains
    files = [{"path": CONFIG_PATH, "permissions": "0644", "content": render(plan)}]
    files += [
        {"path": f"{CERTS_DIR}/{name}.pem", "permissions": "0600", "content": pem}
        for name, pem in sorted(certificates.items())
    ]
    commands: list[list[str]] = [["mkdir", "-p", "-m", "0700", CERTS_DIR]]
    packages = ["haproxy"]
    if acme:
        packages += ["certbot", "openssl"]
        files += _acme_files(acme, acme_email, acme_directory)
        for domain in acme:
            commands.append([ACME_HOOK, "--placeholder", domain])
    commands += [["systemctl", "enable", "haproxy"], ["systemctl", "restart", "haproxy"]]
    if acme:
        commands += [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", f"{ACME_UNIT}.timer"]]
    return {"packages": packages, "write_files": files, "runcmd": commands}


def certificate_file_name(domain: str) -> str:
    """``*.example.com`` -> ``wildcard.example.com`` (domains were checked: letters, digits, dots, dashes)."""
    return domain.replace("*", "wildcard")


def _acme_files(domains: Sequence[str], email: str | None, directory: str) -> list[dict[str, str]]:
    account = f"--email {email}" if email else "--register-unsafely-without-email"
    names = " ".join(f"-d {domain}" for domain in domains)
    script = f"""#!/bin/sh
# Obtains the certificate of {comment_text(', '.join(domains))} by ACME (HTTP-01 behind HAProxy's port 80).
# Retried by {ACME_UNIT}.timer until DNS points at this node; certbot.timer renews it afterwards.
set -eu
if [ -e /etc/letsencrypt/live/{domains[0]}/fullchain.pem ]; then
  systemctl disable --now {ACME_UNIT}.timer
  exit 0
fi
certbot certonly --standalone --non-interactive --agree-tos {account} \\
  --server {directory} --http-01-address 127.0.0.1 --http-01-port {ACME_PORT} \\
  --cert-name {domains[0]} {names} --deploy-hook {ACME_HOOK}
"""
    hook = f"""#!/bin/sh
# certbot's deploy hook: the issued chain and key as one PEM for HAProxy, then a reload.
# With --placeholder NAME: a self-signed certificate so that HAProxy starts before one is issued.
set -eu
umask 077
mkdir -p {CERTS_DIR}
if [ "${{1:-}}" = "--placeholder" ]; then
  file="{CERTS_DIR}/placeholder-$2.pem"
  [ -e "$file" ] && exit 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$2" -keyout "$file.key" -out "$file.crt"
  cat "$file.crt" "$file.key" > "$file" && rm -f "$file.crt" "$file.key"
  exit 0
fi
name=$(basename "$RENEWED_LINEAGE")
cat "$RENEWED_LINEAGE/fullchain.pem" "$RENEWED_LINEAGE/privkey.pem" > "{CERTS_DIR}/$name.pem.new"
mv "{CERTS_DIR}/$name.pem.new" "{CERTS_DIR}/$name.pem"
rm -f {CERTS_DIR}/placeholder-*.pem
systemctl reload haproxy
"""
    service = f"""[Unit]
Description=Certificate by ACME for the load balancer failover built
After=network-online.target haproxy.service

[Service]
Type=oneshot
ExecStart={ACME_SCRIPT}
"""
    timer = """[Unit]
Description=Retry the ACME certificate until DNS points at this node

[Timer]
OnBootSec=1min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
"""
    return [
        {"path": ACME_SCRIPT, "permissions": "0755", "content": script},
        {"path": ACME_HOOK, "permissions": "0755", "content": hook},
        {"path": f"/etc/systemd/system/{ACME_UNIT}.service", "permissions": "0644", "content": service},
        {"path": f"/etc/systemd/system/{ACME_UNIT}.timer", "permissions": "0644", "content": timer},
    ]
