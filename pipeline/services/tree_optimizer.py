"""The optimized build of each served model's trees, made off the serving path.

A load compiles the quick build (or finds either build in the cache) so a Predictor starts and
swaps without waiting; this thread then builds the inlined code (3-4 times the compile time,
8-19 % faster scoring: `core/compiled.py`), checks it scores the golden rows as LightGBM does,
and switches the model to it between two batches. Models wait their turn one at a time, so a
burst of promotions never runs several compilers beside the scoring loop.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from pipeline.core.compiled import compile_booster
from pipeline.core.model_checks import golden_rows
from pipeline.core.scoring import ScoringModel

log = logging.getLogger(__name__)
# Models waiting for their optimized build; past it a new one keeps its quick build.
QUEUE_LIMIT = 16


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
    def __init__(self, cache_dir: Path) -> None:
        super().__init__(name="tree-optimizer", daemon=True)
        self.cache_dir = cache_dir
        self.optimized = 0
        self._models: queue.Queue[ScoringModel] = queue.Queue(QUEUE_LIMIT)
        self._stop_event = threading.Event()

    def offer(self, model: ScoringModel) -> None:
        if model.compiled is None or model.optimized:
            return
        try:
            self._models.put_nowait(model)
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
        while not self._stop_event.is_set():
            try:
                model = self._models.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                if optimize(model, self.cache_dir):
                    self.optimized += 1
            except Exception:  # a speed-up that failed: the model serves on its quick build
                log.exception("optimizing the compiled trees failed")
