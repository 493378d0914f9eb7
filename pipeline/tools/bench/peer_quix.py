"""The Predictor's job written as a Quix Streams application: the benchmark's peer row.

Same broker, same events, same model (the registry version @champion names, loaded, checked and
compiled exactly as a Predictor loads it), same validation, same prediction records and the
same DLQ; what differs is the engine: Quix Streams (librdkafka underneath) hands the function
one message at a time, the way its StreamingDataFrame is meant to be used, where the Predictor
scores micro-batches. Run by `make bench` as a process of its own:

    python -m pipeline.tools.bench.peer_quix --events N [the Predictor's settings]

It stops after N input messages (Quix's `run(count=N)`), so the benchmark times it the way it
times the Predictor: from the first prediction's `scored_at_ms` to the last.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from pipeline.config.logs import setup_logging
from pipeline.config.settings import Settings, build_parser, settings_from
from pipeline.core.batching import columns_of
from pipeline.core.events import EventDecoder
from pipeline.core.messages import DLQ_REASON, dlq_headers, now_ms, prediction_record
from pipeline.errors import PipelineError, ValidationError
from pipeline.registry import tracking
from pipeline.services.hot_swap import load_champion

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install -e '.[peer]' (make bench does it)"


def build_app(settings: Settings) -> tuple[Any, Any]:
    """The Quix application and its dataframe; raises ImportError without Quix Streams."""
    from quixstreams import Application, message_context

    serving = load_champion(settings)
    model, fields = serving.model, settings.pipeline_spec.schema.feature_fields
    negative, positive = model.identity.labels
    decoder = EventDecoder(settings.pipeline_spec.schema, settings.max_event_bytes)
    app = Application(
        broker_address=settings.bootstrap_servers,
        consumer_group=settings.predictor_group,
        auto_offset_reset="earliest",
        auto_create_topics=False,
        use_changelog_topics=False,
        loglevel="WARNING",
        state_dir=str(settings.home / "peer-quix-state"),
    )
    source = app.topic(settings.input_topic, value_deserializer="bytes", key_deserializer="bytes")
    predictions, dead_letters = (
        app.topic(name, value_serializer="bytes", key_serializer="bytes")
        for name in (settings.predictions_topic, settings.dlq_topic)
    )

    def score(value: bytes, key: Any, timestamp: int, headers: Any) -> tuple[bytes, list]:
        """One message: validated, scored alone, answered (or dead-lettered with the reason)."""
        where = message_context()
        try:
            event = decoder.parse(value)
        except ValidationError as exc:
            reason = dlq_headers(
                exc.reason, exc.field, where.topic, where.partition, where.offset, "peer-quix"
            )
            return value, reason
        probability = float(model.predict_proba(columns_of([event], fields))[0])
        label = positive if probability >= model.threshold else negative
        record = prediction_record(
            event.request_id,
            probability,
            label,
            serving.name,
            serving.version,
            where.topic,
            where.partition,
            where.offset,
            now_ms(),
        )
        return record, []

    def route(value: Any, key: Any, timestamp: int, headers: Any) -> Any:
        return dead_letters if any(name == DLQ_REASON for name, _ in headers or ()) else predictions

    sdf = app.dataframe(source)
    sdf = sdf.apply(score, metadata=True)
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: value[1])
    sdf = sdf.apply(lambda value: value[0])
    sdf = sdf.to_topic(route)
    return app, sdf


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("predictor", __doc__ or "")
    parser.add_argument("--events", type=int, required=True, help="stop after this many inputs")
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
        setup_logging(settings.log_level)
        tracking.connect(settings)
        app, _ = build_app(settings)
    except ImportError as exc:
        log.error("Quix Streams is not installed (%s): %s", exc, INSTALL_HINT)
        return 2
    except PipelineError as exc:
        log.error("%s", exc)
        return exc.exit_code
    app.run(count=args.events, collect=False)  # the dataframe registered itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
