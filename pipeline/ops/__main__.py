"""See and steer the model lifecycle (status, promote, rollback, retrain); size it (capacity)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from pipeline.config.logs import setup_logging
from pipeline.config.settings import Settings, build_parser, settings_from
from pipeline.errors import ConfigError, PipelineError
from pipeline.ops import capacity, commands
from pipeline.ops.report import format_status


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m pipeline.ops", description=__doc__)
    verbs = root.add_subparsers(
        dest="verb", metavar="{status,promote,rollback,challenger,retrain,capacity}"
    )
    # Every verb takes the pipeline's settings (flags or PIPELINE_* variables) after its name.
    common = [build_parser("ops", "", add_help=False)]

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, help=help, parents=common)

    show = verb("status", "champion, alias history, versions, live Predictors")
    show.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    promote = verb("promote", "check VERSION, make it @champion, announce")
    promote.add_argument("version", help="the registry version to promote")
    verb("rollback", "@champion back to the previous champion, announce")
    shadow = verb(
        "challenger", "check VERSION, make it @challenger (scored in the shadow), announce"
    )
    shadow.add_argument("version", nargs="?", help="the registry version to shadow")
    shadow.add_argument("--clear", action="store_true", help="no challenger any more")
    shadow.add_argument("--reason", default="", help="why, recorded in the alias history")
    retrain = verb("retrain", "send a retrain request by hand")
    retrain.add_argument("--reason", default="", help="why, recorded with the training")
    size = verb("capacity", "Predictors, partitions, broker and Trainer load for an event rate")
    size.add_argument("--events-per-s", type=float, required=True, help="the rate to plan for")
    size.add_argument(
        "--retention-s",
        type=float,
        default=3600.0,
        help="retention of the input topic: a retrain reads at most what it still holds",
    )
    size.add_argument(
        "--retrain-window-events",
        type=int,
        default=Settings().retrain_window_events,
        help="the Trainer's --retrain-window-events: the most recent events a retrain reads",
    )
    size.add_argument(
        "--labelled-fraction", type=float, default=1.0, help="share of events carrying a label"
    )
    size.add_argument(
        "--broker-cores", type=float, default=6.0, help="Kafka cores this pipeline may use"
    )
    size.add_argument("--replication-factor", type=int, default=3, help="of the topics")
    size.add_argument("--json", action="store_true", help="one JSON object instead of text")
    return root


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    setup_logging(settings.log_level)
    if args.verb == "status":
        report: dict[str, Any] = commands.status(settings)
        print(json.dumps(report) if args.json else format_status(report))
    elif args.verb == "promote":
        version = _version(args.version)
        commands.promote(settings, version)
        print(f"version {version} of {settings.model_name} is @champion; announced")
    elif args.verb == "rollback":
        version = commands.rollback(settings)
        print(f"rolled back: version {version} of {settings.model_name} is @champion; announced")
    elif args.verb == "challenger":
        print(_challenger(settings, args))
    elif args.verb == "capacity":
        print(_capacity(args, settings.alias_poll_s))
    elif args.verb == "retrain":
        request = commands.request_retrain(settings, args.reason)
        print(f"retrain requested ({request.reason}), id {request.request_id}")
    else:
        raise ConfigError(
            "name a command: status, promote VERSION, rollback, challenger VERSION|--clear, "
            "retrain or capacity"
        )
    return 0


def _challenger(settings: Settings, args: argparse.Namespace) -> str:
    if args.clear == (args.version is not None):
        raise ConfigError("challenger takes a VERSION or --clear, one of the two")
    name = settings.model_name
    if args.clear:
        cleared = commands.clear_challenger(settings, args.reason or "cleared by hand")
        if cleared is None:
            return f"{name} has no @challenger; nothing to clear"
        return f"@challenger of {name} cleared (was version {cleared}); announced"
    version = _version(args.version)
    commands.set_challenger(settings, version, args.reason or "set by hand")
    return f"version {version} of {name} is @challenger, scored in the shadow; announced"


def _capacity(args: argparse.Namespace, alias_poll_s: float) -> str:
    """No broker, no registry: arithmetic on the measured figures in pipeline/ops/capacity.py."""
    if args.events_per_s <= 0 or args.retention_s < 0 or not 0 <= args.labelled_fraction <= 1:
        raise ConfigError(
            "--events-per-s must be positive, --retention-s not negative and "
            "--labelled-fraction between 0 and 1"
        )
    if args.retrain_window_events < 0:
        raise ConfigError("--retrain-window-events must not be negative")
    if args.broker_cores <= 0 or args.replication_factor < 1:
        raise ConfigError("--broker-cores must be positive and --replication-factor at least 1")
    plan = capacity.plan(
        args.events_per_s,
        retention_s=args.retention_s,
        labelled_fraction=args.labelled_fraction,
        broker_cores=args.broker_cores,
        replication_factor=args.replication_factor,
        alias_poll_s=alias_poll_s,
        retrain_window_events=args.retrain_window_events,
    )
    return json.dumps(plan.as_dict()) if args.json else capacity.format_plan(plan)


def _version(raw: str) -> int:
    try:
        version = int(raw)
    except ValueError:
        raise ConfigError(f"VERSION must be a whole number, not {raw!r}") from None
    if version < 1:
        raise ConfigError(f"VERSION must be 1 or more, not {version}")
    return version


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse's own usage errors already exit 2
        return int(exc.code or 0)
    try:
        return run(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
