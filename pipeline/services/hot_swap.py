"""Model announcements and the swap: loading happens on a worker thread, never the polling one.

Every Predictor reads `retrain_topic` on its own (no consumer group), so with K instances all K
hear every announcement. A model is loaded only by the configured name from the configured
registry, whatever URI the announcement carries, and must pass its checks before it is offered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition

from pipeline.config.settings import Settings
from pipeline.core.batching import ServingModel
from pipeline.core.messages import MessageError, ModelReady, parse_retrain_message
from pipeline.errors import ModelError, RegistryError
from pipeline.registry import tracking

log = logging.getLogger(__name__)


def champion_version(settings: Settings) -> int:
    version = tracking.champion_version(settings)
    if version is None:
        raise ModelError(
            f"no version of {settings.model_name} has the alias @champion; run initialize.py first"
        )
    return version


def load_version(settings: Settings, version: int) -> ServingModel:
    model = tracking.load_scoring_model(tracking.model_uri(settings.model_name, version))
    return ServingModel(model, settings.model_name, version)


def load_champion(settings: Settings) -> ServingModel:
    return load_version(settings, champion_version(settings))


class ModelSlot:
    """The one reference the hot path reads; swapped only between two micro-batches."""

    def __init__(self, serving: ServingModel) -> None:
        self.current = serving
        self._pending: ServingModel | None = None
        self._lock = threading.Lock()

    def offer(self, serving: ServingModel) -> None:
        with self._lock:
            self._pending = serving

    def swap_if_pending(self) -> bool:
        if self._pending is None:  # the common case costs one attribute read
            return False
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return False
        previous, self.current = self.current, pending
        log.info(
            "swapped model %s version %d -> %d", pending.name, previous.version, pending.version
        )
        return True


def announcement_reader(consumer_factory: Callable[[], KafkaConsumer], topic: str) -> KafkaConsumer:
    """Positioned at the end before the champion is loaded, so no announcement falls between."""
    consumer = consumer_factory()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_end(partition)
    consumer.position(partition)  # resolve the lazy seek now
    return consumer


class ModelWatcher(threading.Thread):
    def __init__(self, consumer: KafkaConsumer, slot: ModelSlot, model_name: str) -> None:
        super().__init__(name="model-watcher", daemon=True)
        self.consumer = consumer
        self.slot = slot
        self.model_name = model_name
        self.refused = 0
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
        if isinstance(message, ModelReady):
            self.consider(message)

    def consider(self, ready: ModelReady) -> None:
        current = self.slot.current
        if ready.model_name != self.model_name:
            self._refuse(ready, f"model name {ready.model_name!r} is not {self.model_name!r}")
        elif not ready.promoted:
            log.info(
                "version %d was not promoted; keeping version %d", ready.version, current.version
            )
        elif ready.version == current.version:
            log.info("version %d is already serving", ready.version)
        else:
            uri = tracking.model_uri(self.model_name, ready.version)
            try:
                model = tracking.load_scoring_model(uri)
            except (ModelError, RegistryError) as exc:
                self._refuse(ready, str(exc))
                return
            log.info("loaded and checked %s; swapping at the next batch boundary", uri)
            self.slot.offer(ServingModel(model, self.model_name, ready.version))

    def _refuse(self, ready: ModelReady, reason: str) -> None:
        self.refused += 1
        log.warning(
            "refused announced model %s version %s: %s", ready.model_name, ready.version, reason
        )
