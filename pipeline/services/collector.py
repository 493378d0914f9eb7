"""The garbage collector, set for a process that scores micro-batches for hours.

Two settings, both measured on the scoring loop (README, Performance):
- freeze: imports, the model and the clients are hundreds of thousands of objects that live as
  long as the process; left to the collector, each full pass rescans them all and stalls the
  loop.
- a larger young generation: CPython collects it after 700 more container objects, which a
  micro-batch of 500 events leaves alive until it is published (a tuple or two an event), so a
  collection ran about once a batch and took 0.3-0.7 us an event of the loop's CPU (measured
  with `gc.callbacks` over 20,000 events in-process, 4-5 % of scoring and watching). At 10,000,
  a batch's objects are freed by reference counting before a collection comes due; reference
  cycles are still collected, a little later.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION = 10_000


def settle_collector() -> None:
    """Once the long-lived objects exist (models loaded, clients made), before the loop."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)
