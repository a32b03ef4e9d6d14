"""``failover evacuate`` as a library: everything that cannot be rebuilt off the source before a
deadline, in order of importance, with an estimate against the deadline all along.

- :mod:`failover.evacuate.evacuation`: the orchestration, :func:`evacuate` (order, passes, events, ``then``);
- :mod:`failover.evacuate.order`: the buckets' order from ``evacuation.priority``;
- :mod:`failover.evacuate.listing`: listings compared page by page by ``replicate``'s ``diff_pages``, what to copy
  spilled and read newest first;
- :mod:`failover.evacuate.batches`: the executor seam (batches of keys in, per-key ``CopyResult`` s out, each copied
  by ``replicate``'s copy layer) and local threads;
- :mod:`failover.evacuate.deadline`: ``--deadline`` parsing, the measured rate and the estimate.
"""

from failover.evacuate.deadline import parse_deadline
from failover.evacuate.evacuation import EvacuateOptions, EvacuationEvents, EvacuationResult, evacuate

__all__ = ["EvacuateOptions", "EvacuationEvents", "EvacuationResult", "evacuate", "parse_deadline"]
