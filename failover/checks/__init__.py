"""Readiness checks for ``failover check``: one module per check (or a few related ones),
each registering its classes in :data:`failover.checks.base.CHECKS`."""
