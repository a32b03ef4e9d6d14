"""The ``failover`` command line: one module per command noun, composed in ``main``."""
