"""Benchmark scripts: run each as ``python -m benchmarks.NAME`` from the repository root
(run as a file, ``benchmarks/failover.py`` would shadow the ``failover`` package)."""
