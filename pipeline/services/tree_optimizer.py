"""The optimized build of each served model's trees, made off the serving path.

A load compiles the quick build (or finds either build in the cache) so a Predictor starts and
swaps without waiting; this thread then builds the inlined code (3-4 times the compile time,
8-19 % faster scoring: `core/compiled.py`), checks it scores the golden rows as LightGBM does,
and switches the model to it between two batches.

A compiler is heavy company for a scoring loop on a small machine: in `make demo` (models
replaced every half minute, two Predictors and a Trainer on 2 cores) building every model at
once took 20-68 s of compiling per model and Predictor, and the stream's p99 went from 209 to
928 ms. So a model is built only once it has served `after_s` (one replaced before then is
never built: the optimizer holds it by a weak reference), models wait their turn one at a time,
the thread runs at the lowest CPU priority (Linux: a thread's own nice value), and Predictors
sharing a cache build each model once (`compiled.py` locks the file it writes).
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from pipeline.core.compiled import compile_booster
from pipeline.core.model_checks import golden_rows
from pipeline.core.scoring import ScoringModel

log = logging.getLogger(__name__)
# Models waiting for their optimized build; past it a new one keeps its quick build.
QUEUE_LIMIT = 16
# How long a model serves on its quick build before its optimized one is made.
OPTIMIZE_AFTER_S = 60.0
LOWEST_PRIORITY = 19


def optimize(model: ScoringModel, cache_dir: Path) -> bool:
    """Switches `model` to its optimized build (built now unless cached); False when it keeps
    what it has: no compiled trees to improve on, no build, or a build that disagrees."""
    if model.compiled is None or model.optimized:
        return model.optimized
    compiled = compile_booster(model.booster, cache_dir, optimized=True)
    if compiled is None:
        return False
    if not model.use_compiled(compiled, golden_rows(model), optimized=True):
        log.warning("the optimized build of the trees disagrees with LightGBM: not used")
        return False
    log.info("scoring with the optimized build of the trees (%d trees)", model.booster.num_trees())
    return True


class TreeOptimizer(threading.Thread):
    def __init__(
        self,
        cache_dir: Path,
        after_s: float = OPTIMIZE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name="tree-optimizer", daemon=True)
        self.cache_dir = cache_dir
        self.after_s = after_s
        self.clock = clock
        self.optimized = 0
        self.skipped = 0  # models gone before their turn came
        self._models: queue.Queue[tuple[float, weakref.ref[ScoringModel]]] = queue.Queue(
            QUEUE_LIMIT
        )
        self._stop_event = threading.Event()

    def offer(self, model: ScoringModel) -> None:
        if model.compiled is None or model.optimized:
            return
        try:
            self._models.put_nowait((self.clock() + self.after_s, weakref.ref(model)))
        except queue.Full:
            log.warning(
                "%d models wait for optimized trees; one keeps its quick build", QUEUE_LIMIT
            )

    def stop(self) -> None:
        """Ends after the build in progress (a compiler cannot be interrupted)."""
        self._stop_event.set()

    def finish(self, timeout_s: float) -> None:
        self.join(timeout_s)
        if self.is_alive():
            log.warning("tree optimizer still compiling %.0f s after stop; leaving it", timeout_s)

    def run(self) -> None:
        _lowest_priority()
        while not self._stop_event.is_set():
            try:
                due, held = self._models.get(timeout=0.2)
            except queue.Empty:
                continue
            if self._stop_event.wait(max(0.0, due - self.clock())):
                return
            model = held()
            if model is None:  # replaced and dropped before its turn: not worth a compiler
                self.skipped += 1
                continue
            try:
                if optimize(model, self.cache_dir):
                    self.optimized += 1
            except Exception:  # a speed-up that failed: the model serves on its quick build
                log.exception("optimizing the compiled trees failed")
            del model


def _lowest_priority() -> None:
    """This thread only: on Linux a thread has a nice value of its own (setpriority with its
    thread id); elsewhere the id is not a process's, so nothing is changed."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except OSError as exc:
        log.debug("tree optimizer keeps its priority: %s", exc)
