"""The local broker's KRaft cluster id: an id starting with '-' once broke a CI run."""

from __future__ import annotations

import uuid

from pipeline.kafka_io import broker


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch) -> None:
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # url-safe base64 of 0xF8... starts with '-'
    plain = uuid.UUID(bytes=bytes(16))
    queue = [dashed, plain]
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: queue.pop(0))
    cluster_id = broker.new_cluster_id()
    assert cluster_id == "AAAAAAAAAAAAAAAAAAAAAA" and not queue
