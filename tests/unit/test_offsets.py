"""The OffsetKeeper's bookkeeping, without a broker (the rebalances are in tests/integration)."""

from __future__ import annotations

import asyncio

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.services.offsets import OffsetKeeper


class Untouchable:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"a lost partition must not touch the consumer ({name})")


def test_lost_partitions_are_forgotten_without_a_commit() -> None:
    """Expelled from the group, the member may not commit: what it owed is dropped."""
    keeper = OffsetKeeper()
    keeper.bind(Untouchable())
    kept, lost = TopicPartition("t", 0), TopicPartition("t", 1)
    asyncio.run(keeper.on_partitions_assigned({kept, lost}))
    keeper.owe({kept: OffsetAndMetadata(3, "", -1), lost: OffsetAndMetadata(7, "", -1)})
    asyncio.run(keeper.on_partitions_lost({lost}))
    assert keeper.owed == {kept: OffsetAndMetadata(3, "", -1)}
    assert keeper.partitions == frozenset({0}) and keeper.dropped_on_loss == 1
