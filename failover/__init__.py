"""failover: get a service off a cloud provider that terminated its account, and back online elsewhere."""

__version__ = "0.1.0"
