"""``failover replicate`` as a library: what cannot be rebuilt kept on the target ahead of time.

- :mod:`failover.replicate.buckets`: incremental, MD5-verified copies of buckets into containers;
- :mod:`failover.replicate.zones`: DNS zones mirrored onto the target DNS;
- :mod:`failover.replicate.dumps`: database dumps streamed into the target's storage, the newest kept.
"""
