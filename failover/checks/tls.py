"""``tls-certificates``: every HTTPS (TLS, SSL) listener of the snapshot's load balancers has a
way to a certificate on the target: the profile's ``tls:`` (its certificate and key readable
now: the variable set, or the file there) or ACME (``acme:``, and DNS names pointing at the
balancer). ACM's keys cannot be exported: without one of these ways, clients of the service
would be refused on 443 after a "successful" failover."""

from __future__ import annotations

import os
from pathlib import Path

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed, plural, some
from failover.config import ENV_REF
from failover.frontdoor import TLS_ACME, TLS_PROFILE, plan_balancer, profile_certificate


@CHECKS.register("tls-certificates")
class TlsCertificates(Check):
    summary = "Every HTTPS listener of the snapshot's load balancers gets a certificate on the target (tls: or acme:)."
    order = 55
    needs_snapshot = True

    def run(self, ctx: CheckContext) -> Outcome:
        listeners, problems = [], []
        for lb in ctx.manifest.of_kind("load_balancer"):
            plan = plan_balancer(ctx.manifest, lb, ctx.profile, lb.name)
            problems += [f"{lb.name} {why}" for why in plan.refused if "no way to a certificate" in why]
            for lp in plan.listeners:
                if lp.tls is None:
                    continue
                listeners.append({"load_balancer": lb.name, "listener": lp.label, "way": lp.tls,
                                  "domains": list(lp.domains)})
                if lp.tls == TLS_PROFILE:
                    problems += [f"{lb.name} {lp.label}: {p}" for p in self._unreadable(ctx, lp.domains)]
        data = {"listeners": listeners, "problems": problems}
        if problems:
            return failed(f"{plural(len(problems), 'HTTPS listener problem')}: {some(problems, 3)}", **data)
        if not listeners:
            return passed("no HTTPS listener in the snapshot's load balancers", **data)
        ways = {way: sum(1 for item in listeners if item["way"] == way) for way in (TLS_PROFILE, TLS_ACME)}
        return passed(f"{plural(len(listeners), 'HTTPS listener')}: {ways[TLS_PROFILE]} from the profile's tls:, "
                      f"{ways[TLS_ACME]} by ACME", **data)

    @staticmethod
    def _unreadable(ctx: CheckContext, domains: tuple[str, ...]) -> list[str]:
        """Why a profile certificate could not be read now (never reading or showing its text)."""
        out = []
        keys = {key for domain in domains if (key := profile_certificate(ctx.profile, domain))}
        for key in sorted(keys):
            spec = ctx.profile.tls[key]
            for field in ("certificate", "key"):
                value = getattr(spec, field)
                where = ctx.field("tls", key, field)
                ref = ENV_REF.fullmatch(value)
                if ref is not None:
                    if not os.environ.get(ref.group(1)):
                        out.append(f"{where}: environment variable {ref.group(1)} is not set")
                else:
                    path = Path(value) if Path(value).is_absolute() else ctx.config.path.parent / value
                    if not path.is_file():
                        out.append(f"{where}: no file {value}")
        return out
