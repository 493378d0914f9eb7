"""One retrain, from merged requests to a decision: dataset, training, checks, gate, alias.

The candidate is registered, loaded back the way a Predictor will load it (verified text
artifacts, model checks), compared with the champion on the same holdout rows, and only then
may it move `@champion`. Every version is tagged with its metrics, the gate's decision and the
ids of the requests it answers, which is also how a restarted Trainer recognises its own work.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd

from pipeline.config.settings import Settings
from pipeline.core.data import TabularData
from pipeline.core.datasets import build_retrain_dataset, merge_end_offsets
from pipeline.core.messages import ModelReady, RetrainRequest
from pipeline.core.scoring import ScoringModel
from pipeline.core.search_space import warm_start_from_params
from pipeline.core.tuning import TuningConfig
from pipeline.errors import ModelError
from pipeline.kafka_io.event_reader import read_events, scored_offsets
from pipeline.registry import artifacts, lifecycle, tracking
from pipeline.registry.challenger import challenger_version, set_challenger
from pipeline.registry.train_job import run_training
from pipeline.services.gatekeeper import Decision, decide

log = logging.getLogger(__name__)


def request_ids(requests: list[RetrainRequest]) -> list[str]:
    return sorted({r.request_id for r in requests})


def reasons(requests: list[RetrainRequest]) -> dict[str, int]:
    return dict(Counter(r.reason for r in requests))


def retrain(
    settings: Settings,
    requests: list[RetrainRequest],
    data: TabularData,
    attempt: int,
    settle_shadow: Callable[[], None] = lambda: None,
) -> ModelReady:
    """`settle_shadow`: judges the challenger in the shadow on the evidence it gathered while
    this training ran, before a new candidate may take its alias."""
    requested = {
        **scored_offsets(settings),
        **merge_end_offsets(r.end_offsets for r in requests),
    }
    log.info("training for %d merged request(s) up to offsets %s", len(requests), requested)
    events = read_events(settings, requested, settings.retrain_window_events)
    # what was read, cut to the log end where a request asked for more
    end_offsets = {p: bounds[1] for p, bounds in events.offset_ranges.items()}
    holdout = data.holdout
    dataset = build_retrain_dataset(
        data.train, events.events, holdout, settings.pipeline_spec.schema, events.offset_ranges
    )
    lineage = {
        **dataset.lineage,
        "invalid_events_skipped": events.invalid,
        "requests_merged": len(requests),
        "window_events": settings.retrain_window_events,
    }
    config = TuningConfig(
        max_evals=settings.retrain_evals,
        folds=settings.retrain_folds,
        seed=settings.seed + attempt,
        num_threads=settings.threads,
    )
    result = run_training(
        settings,
        dataset.frame,
        holdout,
        config,
        run_name=f"retrain-{dataset.lineage['dataset_sha256'][:8]}",
        tags={
            "pipeline.stage": "retrain",
            "pipeline.retrain_reasons": ",".join(f"{k}={v}" for k, v in reasons(requests).items()),
        },
        lineage=lineage,
        warm_start=champion_point(settings),
    )
    version = result.registered.version
    ids = request_ids(requests)
    # Tagged first, so a Trainer killed from here on finds this version instead of retraining.
    lifecycle.annotate_version(
        settings,
        version,
        {
            **lifecycle.requests_tag(ids),
            "pipeline.dataset_sha256": dataset.lineage["dataset_sha256"],
        },
        f"retrain for {len(ids)} request(s); decision pending",
    )
    decision = judge(settings, version, holdout)
    record(settings, version, result.registered.run_id, result.metrics, decision, requests)
    served = decision.promoted and settings.candidates_to == "champion"
    if decision.promoted:
        settle_shadow()
    if served:
        tracking.set_champion(settings, version, by="trainer", reason=decision.reason)
    elif decision.promoted:  # passed the gate; the live traffic judges it in the shadow first
        pending = challenger_version(settings)
        if pending is not None:
            log.warning(
                "version %d replaces challenger %d before its verdict (fewer than %d labelled "
                "shadow events since it was set)",
                version,
                pending,
                settings.shadow_min_labelled,
            )
        set_challenger(settings, version, by="trainer", reason=decision.reason)
        lifecycle.annotate_version(
            settings, version, {"gate.alias": "challenger"}, f"@challenger; {decision.reason}"
        )
    log.info("version %d: %s", version, decision.reason)
    return ModelReady(
        model_name=settings.model_name,
        version=version,
        uri=result.registered.uri,
        metrics=result.metrics,
        champion_metrics=decision.champion_metrics,
        promoted=served,
        requests=len(requests),
        end_offsets=end_offsets,
        request_ids=ids,
        gate={**decision.summary(), "alias": settings.candidates_to if decision.promoted else ""},
    )


def champion_point(settings: Settings) -> dict[str, float] | None:
    """The champion's hyperparameters as Hyperopt's first trial: a small retrain budget is never
    worse-tuned than the model it must beat."""
    version = tracking.champion_version(settings)
    if version is None:
        return None
    point = warm_start_from_params(tracking.version_params(settings, version))
    log.info("warm start from the champion (version %d): %s", version, point)
    return point


def judge(settings: Settings, version: int, holdout: pd.DataFrame) -> Decision:
    """The candidate as a Predictor would load it, against the champion on the same rows."""
    try:
        candidate = artifacts.load_scoring_model(
            settings.model_name, version, settings.pipeline_spec.schema
        )
    except ModelError as exc:
        return Decision.refused(f"kept the champion: the candidate failed its checks: {exc}")
    champion = _champion(settings)
    return decide(settings, candidate, champion, holdout)


def _champion(settings: Settings) -> tuple[int, ScoringModel] | None:
    version = tracking.champion_version(settings)
    if version is None:
        return None
    try:
        return version, artifacts.load_scoring_model(
            settings.model_name, version, settings.pipeline_spec.schema
        )
    except ModelError as exc:  # a champion that fails verification is no yardstick
        log.warning("the champion (version %d) cannot be used for the gate: %s", version, exc)
        return None


def record(
    settings: Settings,
    version: int,
    run_id: str,
    metrics: dict[str, float],
    decision: Decision,
    requests: list[RetrainRequest],
) -> None:
    tags: dict[str, Any] = {f"holdout.{k}": f"{v:.6g}" for k, v in metrics.items()}
    tags.update(decision.tags())
    tags["pipeline.retrain_reasons"] = ",".join(f"{k}={v}" for k, v in reasons(requests).items())
    lifecycle.annotate_version(
        settings,
        version,
        tags,
        f"holdout AUC {metrics['auc']:.4f}; {decision.reason}",
    )
    tracking.record_decision(run_id, decision.tags(), decision.metrics())
