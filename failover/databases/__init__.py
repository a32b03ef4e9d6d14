"""Database engines, one module each (``postgres``, ``mysql``), found by the registry in
:mod:`failover.databases.base`; :mod:`failover.databases.node` builds the database nodes
that ``restore-databases`` creates."""
