"""Benchmark: the inventory of a libcloud source against a plain sequential libcloud walk.

Both read the same account, a ``moto_server`` seeded with a service's instances (tagged, with
user data, in one security group, beside untagged noise), through libcloud's EC2 driver
(``failover.testing.ec2_shim``) and the same local proxy, which holds every request for
``--latency-ms`` as a real cloud API would and counts them. failover's inventory
(``providers.libcloud.source``) reads each node's user data and image with a reader per
thread; the reference makes the same requests one after the other.

    python -m benchmarks.libcloud_source                  # 200 instances, 50 ms per request
    python -m benchmarks.libcloud_source --instances 20 --latency-ms 5 --json

Exit status: 0 counts as seeded and failover no slower than the reference, 1 counts differ,
2 slower.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
import time
from typing import Any

import boto3

from failover.config import Selector, SourceComputeSpec
from failover.testing.proxy import LatencyProxy
from failover.testing.servers import MotoServer
from failover.testing.world import EC2_SHIM
from providers.libcloud.source.inventory import LibcloudInventory

SERVICE = "shop"
IMAGE = "ami-1e749f67"  # Ubuntu 14.04 in moto's catalogue
BATCH = 50  # instances per run_instances request while seeding
NOISE_SHARE = 0.1  # untagged instances per tagged one
USER_DATA = "#!/bin/sh\nsystemctl enable --now shop\n"


def seed(url: str, instances: int) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    group = ec2.create_security_group(GroupName="shop-web", Description="web")["GroupId"]
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "service", "Value": SERVICE}]}]
    for start in range(0, instances, BATCH):
        count = min(BATCH, instances - start)
        ec2.run_instances(ImageId=IMAGE, InstanceType="t3.small", MinCount=count, MaxCount=count, UserData=USER_DATA,
                          SecurityGroupIds=[group], TagSpecifications=tags)
    noise = max(1, int(instances * NOISE_SHARE))
    ec2.run_instances(ImageId=IMAGE, InstanceType="t3.micro", MinCount=noise, MaxCount=noise)


def options(proxy: LatencyProxy) -> dict[str, Any]:
    port = int(proxy.url.rsplit(":", 1)[1])
    return {"key": "testing", "secret": "testing", "host": "127.0.0.1", "port": port, "secure": False}


def failover_inventory(proxy: LatencyProxy) -> int:
    spec = SourceComputeSpec(driver=EC2_SHIM, options=options(proxy))
    manifest = LibcloudInventory(SERVICE, Selector(tags={"service": SERVICE}), compute=spec).inventory()
    return len([node for node in manifest.of_kind("node") if node.user_data == USER_DATA])


def sequential_walk(proxy: LatencyProxy) -> int:
    """The same reads, one request after the other, with libcloud alone."""
    from libcloud.compute.drivers.ec2 import NAMESPACE
    from libcloud.utils.xml import findtext

    from failover.adapters import load_object

    driver = load_object(EC2_SHIM)(**options(proxy))
    nodes = [node for node in driver.list_nodes() if (node.extra.get("tags") or {}).get("service") == SERVICE
             and str(node.state) != "terminated"]
    driver.ex_get_security_groups(group_ids=sorted({g["group_id"] for n in nodes for g in n.extra["groups"]}))
    images: dict[str, Any] = {}
    found = 0
    for node in nodes:
        params = {"Action": "DescribeInstanceAttribute", "InstanceId": node.id, "Attribute": "userData"}
        answer = driver.connection.request(driver.path, params=params).object
        encoded = findtext(element=answer, xpath="userData/value", namespace=NAMESPACE)
        image_id = node.extra["image_id"]
        if image_id not in images:
            images[image_id] = driver.get_image(image_id)
        found += base64.b64decode(encoded or "").decode() == USER_DATA
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with MotoServer() as server, LatencyProxy(server.url, args.latency_ms / 1000) as proxy:
        seed(server.url, args.instances)
        sequential_walk(proxy)  # warms moto's image catalogue up, so neither side pays for it
        results = {}
        for name, read in (("failover", failover_inventory), ("reference", sequential_walk)):
            proxy.reset_stats()
            started = time.monotonic()
            count = read(proxy)
            results[name] = {"seconds": round(time.monotonic() - started, 3), "nodes": count,
                             "requests": proxy.requests}
    speedup = results["reference"]["seconds"] / max(results["failover"]["seconds"], 1e-9)
    result = {"instances": args.instances, "latency_ms": args.latency_ms, **results, "speedup": round(speedup, 2),
              "counts_match": results["failover"]["nodes"] == results["reference"]["nodes"] == args.instances}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.instances} instances, {args.latency_ms:g} ms per request: failover "
              f"{results['failover']['seconds']:.2f}s ({results['failover']['requests']} requests), sequential "
              f"libcloud {results['reference']['seconds']:.2f}s ({results['reference']['requests']} requests): "
              f"{speedup:.1f}x; counts match: {result['counts_match']}")
    return result


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if outcome["counts_match"] and outcome["speedup"] >= 1 else 1 if not outcome["counts_match"] else 2)
