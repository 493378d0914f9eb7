"""See and steer the model lifecycle: status, promote, rollback, retrain."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from pipeline.config.logs import setup_logging
from pipeline.config.settings import build_parser, settings_from
from pipeline.errors import ConfigError, PipelineError
from pipeline.ops import commands
from pipeline.ops.report import format_status


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m pipeline.ops", description=__doc__)
    verbs = root.add_subparsers(dest="verb", metavar="{status,promote,rollback,retrain}")
    # Every verb takes the pipeline's settings (flags or PIPELINE_* variables) after its name.
    common = [build_parser("ops", "", add_help=False)]

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, help=help, parents=common)

    show = verb("status", "champion, alias history, versions, live Predictors")
    show.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    promote = verb("promote", "check VERSION, make it @champion, announce")
    promote.add_argument("version", help="the registry version to promote")
    verb("rollback", "@champion back to the previous champion, announce")
    retrain = verb("retrain", "send a retrain request by hand")
    retrain.add_argument("--reason", default="", help="why, recorded with the training")
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
    elif args.verb == "retrain":
        request = commands.request_retrain(settings, args.reason)
        print(f"retrain requested ({request.reason}), id {request.request_id}")
    else:
        raise ConfigError("name a command: status, promote VERSION, rollback or retrain")
    return 0


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
