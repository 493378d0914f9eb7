"""Watches a consumer group's committed offsets while a scenario runs: they must never go back.

A committed offset lower than the one before it means the group will replay events (and the
Trainer, which reads the Predictors' committed offsets as "scored so far", sees time go
backwards). The watch asks the broker for the group's offsets every `period_s` (100 ms) with an
admin client and counts each sample of a partition lower than the sample before it. A move
back that a newer commit hides again within one period can escape it; one that lasts (a stale
commit at close, which nothing overwrites until the partition is owned again) cannot.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kafka.errors import KafkaError

from pipeline.config.settings import Settings
from pipeline.kafka_io.admin import admin_client
from pipeline.kafka_io.clients import kafka_security

log = logging.getLogger(__name__)


class OffsetWatch(threading.Thread):
    def __init__(self, settings: Settings, period_s: float = 0.1) -> None:
        super().__init__(name="chaos-offset-watch", daemon=True)
        self.settings = settings
        self.period_s = period_s
        self.samples = 0
        self.moved_back = 0
        self.last: dict[int, int] = {}
        self._stop_event = threading.Event()

    def __enter__(self) -> OffsetWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)

    def run(self) -> None:
        s = self.settings
        admin = admin_client(s.bootstrap_servers, security=kafka_security(s))
        try:
            while not self._stop_event.wait(self.period_s):
                try:
                    offsets = admin.list_group_offsets(s.predictor_group)[s.predictor_group]
                except KafkaError:  # a broker fault under way; the next sample will tell
                    continue
                self.check(offsets)
        finally:
            admin.close()

    def check(self, offsets: dict[Any, Any]) -> None:
        self.samples += 1
        for tp, meta in offsets.items():
            if tp.topic != self.settings.input_topic or meta.offset < 0:
                continue
            before = self.last.get(tp.partition, -1)
            if meta.offset < before:
                self.moved_back += 1
                log.error(
                    "committed offset of %s partition %d moved back: %d -> %d",
                    tp.topic,
                    tp.partition,
                    before,
                    meta.offset,
                )
            self.last[tp.partition] = meta.offset
