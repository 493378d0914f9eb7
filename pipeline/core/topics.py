"""Every topic the pipeline uses, spelled once, with its partition count."""

from dataclasses import dataclass, field
from typing import Final

INPUT_TOPIC: Final = "app_messages"
PREDICTIONS_TOPIC: Final = "app_predictions"
DLQ_TOPIC: Final = "app_messages_dlq"
RETRAIN_TOPIC: Final = "retrain_topic"
# One record per Predictor instance, compacted: `ops status` reads the latest of each.
HEARTBEAT_TOPIC: Final = "predictor_heartbeats"
# Labels that arrive after their event ({"request_id", "label"}), joined to predictions.
LABELS_TOPIC: Final = "app_labels"
# The challenger's scores of a share of the events, beside the champion's; never served.
SHADOW_TOPIC: Final = "app_predictions_shadow"

PREDICTOR_GROUP: Final = "predictor"
TRAINER_GROUP: Final = "trainer"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(
    input_topic: str = INPUT_TOPIC,
    predictions_topic: str = PREDICTIONS_TOPIC,
    dlq_topic: str = DLQ_TOPIC,
    retrain_topic: str = RETRAIN_TOPIC,
    input_partitions: int = 4,
    heartbeat_topic: str = HEARTBEAT_TOPIC,
    labels_topic: str = LABELS_TOPIC,
    shadow_topic: str = SHADOW_TOPIC,
) -> list[TopicSpec]:
    """The retrain topic keeps one partition so announcements stay in order for every reader."""
    return [
        TopicSpec(input_topic, input_partitions),
        TopicSpec(predictions_topic, input_partitions),
        TopicSpec(dlq_topic, 1),
        TopicSpec(retrain_topic, 1),
        TopicSpec(heartbeat_topic, 1, {"cleanup.policy": "compact", "segment.ms": "600000"}),
        TopicSpec(labels_topic, input_partitions),
        TopicSpec(shadow_topic, input_partitions),
    ]
