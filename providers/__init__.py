"""Adapters: the AWS source (boto3) and libcloud targets, behind the protocols of ``failover.ports``."""
