"""The classic ELB collector against moto: listeners, instances, health check, stickiness."""

from __future__ import annotations


def test_classic_balancer_with_its_listeners_instances_health_check_and_stickiness(aws, inventory):
    ec2 = aws("ec2")
    instances = ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2, InstanceType="t3.micro")["Instances"]
    node_ids = sorted(instance["InstanceId"] for instance in instances)
    certificate = aws("acm").request_certificate(DomainName="front.example")["CertificateArn"]
    elb = aws("elb")
    elb.create_load_balancer(
        LoadBalancerName="front", AvailabilityZones=["us-east-1a"],
        Listeners=[
            {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 8080},
            {"Protocol": "HTTPS", "LoadBalancerPort": 443, "InstanceProtocol": "HTTP", "InstancePort": 8080,
             "SSLCertificateId": certificate},
        ],
        Tags=[{"Key": "service", "Value": "svc"}],
    )
    elb.create_load_balancer(LoadBalancerName="other", AvailabilityZones=["us-east-1a"],
                             Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 22, "InstancePort": 22}])
    elb.register_instances_with_load_balancer(LoadBalancerName="front", Instances=[{"InstanceId": i} for i in node_ids])
    elb.configure_health_check(LoadBalancerName="front", HealthCheck={
        "Target": "HTTP:8080/healthz", "Interval": 10, "Timeout": 5, "UnhealthyThreshold": 3, "HealthyThreshold": 2})
    elb.create_lb_cookie_stickiness_policy(LoadBalancerName="front", PolicyName="sticky", CookieExpirationPeriod=600)

    [balancer] = [r for r in inventory().to_dict()["resources"] if r["kind"] == "load_balancer"]

    assert balancer["id"] == "front" and balancer["type"] == "classic" and balancer["targets"] == node_ids
    assert balancer["dns_name"].startswith("front")
    assert balancer["listeners"] == [
        {"protocol": "HTTP", "port": 80, "instance_protocol": "HTTP", "instance_port": 8080},
        # moto answers the listener's protocol as the instance protocol (AWS: HTTP, as created)
        {"protocol": "HTTPS", "port": 443, "instance_protocol": balancer["listeners"][1]["instance_protocol"],
         "instance_port": 8080, "certificate": certificate},
    ]
    assert balancer["health_check"] == {"protocol": "HTTP", "port": 8080, "path": "/healthz", "interval_s": 10,
                                        "timeout_s": 5, "healthy_threshold": 2, "unhealthy_threshold": 3}
    assert balancer["stickiness"] == {"type": "lb_cookie", "duration_s": 600, "cookie_name": None}
