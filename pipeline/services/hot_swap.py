"""Following `@champion`: announcements make a swap fast, the alias decides what is served.

Every Predictor reads `retrain_topic` on its own (no consumer group), so with K instances all K
hear every announcement. An announcement is only a hint to look at the alias now; the alias is
also re-read every `--alias-poll-s`, so a Predictor that missed an announcement, a Trainer killed
between moving the alias and announcing, or an operator who moved the alias in the MLflow UI
(a rollback is just a move) all converge. Models are loaded on this thread, checked, and offered
to the scoring loop, which swaps one reference between two micro-batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings
from pipeline.core.batching import ServingModel
from pipeline.core.compiled import compile_booster
from pipeline.core.messages import MessageError, ModelReady, parse_retrain_message
from pipeline.core.model_checks import golden_rows
from pipeline.errors import ModelError, RegistryError
from pipeline.registry import artifacts, tracking

log = logging.getLogger(__name__)
COMPILED_DIR = "compiled-trees"  # under --home: compiled models, by the hash of their text

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 30.0


def champion_version(settings: Settings) -> int:
    version = tracking.champion_version(settings)
    if version is None:
        raise ModelError(
            f"no version of {settings.model_name} has the alias @champion; run initialize.py first"
        )
    return version


def load_version(settings: Settings, version: int) -> ServingModel:
    """Loaded, checked and (unless --no-compile-trees) compiled: on the watcher's thread for a
    swap, so compiling never holds up scoring. The optimized build if an earlier load left it
    in the cache, else the quick one (`services/tree_optimizer.py` makes the other later)."""
    model = artifacts.load_scoring_model(
        settings.model_name, version, settings.pipeline_spec.schema
    )
    if settings.compile_trees:
        cache = compiled_cache(settings)
        optimized = compile_booster(model.booster, cache, optimized=True, cached_only=True)
        compiled = optimized or compile_booster(model.booster, cache)
        rows = golden_rows(model)
        if compiled is not None and not model.use_compiled(compiled, rows, optimized is not None):
            log.warning("compiled trees of version %d disagree with LightGBM: not used", version)
    return ServingModel(model, settings.model_name, version)


def compiled_cache(settings: Settings) -> Path:
    return settings.home / COMPILED_DIR


def load_champion(settings: Settings) -> ServingModel:
    return load_version(settings, champion_version(settings))


class ModelSlot:
    """The references the hot path reads (the champion, and the challenger in its shadow);
    swapped only between two micro-batches."""

    def __init__(self, serving: ServingModel) -> None:
        self.current = serving
        self.challenger: ServingModel | None = None
        self._pending: ServingModel | None = None
        # (the challenger to take, or None to drop it), when a change waits for the next batch
        self._pending_challenger: tuple[ServingModel | None] | None = None
        self._lock = threading.Lock()

    def offer(self, serving: ServingModel) -> None:
        with self._lock:
            self._pending = serving

    def offer_challenger(self, serving: ServingModel | None) -> None:
        with self._lock:
            self._pending_challenger = (serving,)

    @property
    def target_version(self) -> int:
        """The version that will serve once the pending swap (if any) is done."""
        pending = self._pending
        return pending.version if pending is not None else self.current.version

    @property
    def challenger_target(self) -> int | None:
        """The challenger's version once the pending change (if any) is done; None: none."""
        pending = self._pending_challenger
        shadow = pending[0] if pending is not None else self.challenger
        return shadow.version if shadow is not None else None

    def swap_if_pending(self) -> bool:
        """True when the champion changed."""
        if self._pending is None and self._pending_challenger is None:
            return False  # the common case costs two attribute reads
        with self._lock:
            pending, self._pending = self._pending, None
            shadow, self._pending_challenger = self._pending_challenger, None
        if shadow is not None:
            self._take_challenger(shadow[0])
        if pending is None:
            return False
        previous, self.current = self.current, pending
        log.info(
            "swapped model %s version %d -> %d", pending.name, previous.version, pending.version
        )
        return True

    def _take_challenger(self, shadow: ServingModel | None) -> None:
        before = self.challenger.version if self.challenger is not None else None
        self.challenger = shadow
        if shadow is None:
            log.info("challenger version %s left the shadow", before)
        else:
            log.info("challenger version %d scores in the shadow (was %s)", shadow.version, before)


def announcement_reader(consumer_factory: Callable[[], KafkaConsumer], topic: str) -> KafkaConsumer:
    """Positioned at the end before the alias is read, so no promotion falls between the two."""
    consumer = consumer_factory()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_end(partition)
    consumer.position(partition)  # resolve the lazy seek now
    return consumer


AliasReader = Callable[[], int | None]
Loader = Callable[[int], ServingModel]


class ModelWatcher(threading.Thread):
    """Reconciles the slot with the alias on each announcement and every `poll_s`."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        slot: ModelSlot,
        model_name: str,
        read_alias: AliasReader,
        load: Loader,
        poll_s: float = 10.0,
        read_challenger: AliasReader | None = None,
    ) -> None:
        super().__init__(name="model-watcher", daemon=True)
        self.consumer = consumer
        self.slot = slot
        self.model_name = model_name
        self.read_alias = read_alias
        self.read_challenger = read_challenger or (lambda: None)
        self.load = load
        self.poll_s = poll_s
        self.refused = 0
        self.refused_versions: set[int] = set()
        self.registry_errors = 0
        self._due = time.monotonic() + poll_s
        self._retry_s = 0.0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def finish(self, timeout_s: float) -> None:
        self.join(timeout_s)
        if self.is_alive():
            log.warning("model watcher still busy %.0f s after stop; leaving it", timeout_s)

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                for records in self.consumer.poll(timeout_ms=300).values():
                    for record in records:
                        self.handle(record.value)
                if time.monotonic() >= self._due:
                    self.reconcile()
        except Exception:  # the thread must say why it died; scoring goes on with the old model
            log.exception("model watcher stopped")
        finally:
            self.consumer.close()

    def handle(self, raw: bytes | None) -> None:
        try:
            message = parse_retrain_message(raw)
        except MessageError as exc:
            log.warning("ignored a message on the retrain topic: %s", exc)
            return
        if not isinstance(message, ModelReady):
            return
        if message.model_name != self.model_name:
            self.refused += 1
            log.warning(
                "refused an announcement of model %r version %s: this Predictor serves %r",
                message.model_name,
                message.version,
                self.model_name,
            )
            return
        log.info("version %d announced; reconciling with the aliases", message.version)
        self.reconcile()

    def reconcile(self) -> None:
        """Serve what the alias names; registry trouble is retried, a bad model is refused."""
        try:
            self._reconcile()
        except RegistryError as exc:
            self.registry_errors += 1
            self._retry_s = min(max(self._retry_s * 2, FIRST_RETRY_S), MAX_RETRY_S)
            self._due = time.monotonic() + min(self._retry_s, self.poll_s)
            log.warning(
                "registry unavailable (%s); version %d keeps serving, retry in %.1fs",
                exc,
                self.slot.current.version,
                self._retry_s,
            )
            return
        self._retry_s = 0.0
        self._due = time.monotonic() + self.poll_s

    def _reconcile(self) -> None:
        self._reconcile_champion()
        self._reconcile_challenger()

    def reconcile_challenger(self) -> None:
        """At start-up, so a restarted Predictor shadows again from its first batch; registry
        trouble here only delays the shadow until the timer's next try."""
        try:
            self._reconcile_challenger()
        except RegistryError as exc:
            log.warning("@challenger not read at start-up (%s); retried on the timer", exc)

    def _reconcile_challenger(self) -> None:
        """The challenger is loaded and checked as a champion is; a refused one stays out."""
        wanted = self.read_challenger()
        if wanted == self.slot.challenger_target or wanted in self.refused_versions:
            return
        if wanted is None:
            self.slot.offer_challenger(None)
            return
        try:
            shadow = self.load(wanted)
        except ModelError as exc:
            self._refuse(wanted, f"as @challenger: {exc}")
            return
        log.info("@challenger names version %d; checked, shadowing from the next batch", wanted)
        self.slot.offer_challenger(shadow)

    def _reconcile_champion(self) -> None:
        wanted = self.read_alias()
        if wanted is None or wanted == self.slot.target_version:
            return
        if wanted in self.refused_versions:
            return  # refused once with a reason already logged; the alias must move on
        try:
            serving = self.load(wanted)
        except ModelError as exc:
            self._refuse(wanted, str(exc))
            return
        log.info(
            "@champion names version %d (serving %d); checked, swapping at the next batch",
            wanted,
            self.slot.current.version,
        )
        self.slot.offer(serving)

    def _refuse(self, version: int, reason: str) -> None:
        self.refused += 1
        self.refused_versions.add(version)
        log.warning("refused model %s version %s: %s", self.model_name, version, reason)
