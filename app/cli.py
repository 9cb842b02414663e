"""The `vigil` command line (also `python -m app`).

Bad input exits with status 2 and one line on stderr starting with ``error:``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app import services
from detection import PROFILES, DetectionError
from detection.detectors import DETECTORS
from detection.export import write_csv
from storage.errors import StorageError

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """A problem with the command line itself, reported like bad input."""


def _detector_params(args: argparse.Namespace) -> dict:
    params = {}
    for name in ("contamination", "mean", "std", "multiplier"):
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    if args.detector == "isolation_forest" and {"mean", "std", "multiplier"} & params.keys():
        raise UsageError("--mean, --std and --multiplier go with --detector zscore or robust_zscore")
    if args.detector != "isolation_forest" and "contamination" in params:
        raise UsageError("--contamination goes with --detector isolation_forest")
    return params


def _add_detector_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="auto", choices=("auto", *PROFILES))
    parser.add_argument("--detector", default="isolation_forest", choices=sorted(DETECTORS))
    parser.add_argument("--contamination", type=float,
                        help="share of baseline rows flagged (isolation_forest)")
    parser.add_argument("--mean", type=float, help="fixed mean (zscore)")
    parser.add_argument("--std", type=float, help="fixed standard deviation (zscore)")
    parser.add_argument("--multiplier", type=float, help="flag beyond this many std (zscore)")


def _input(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    return p


def cmd_score(args: argparse.Namespace) -> int:
    params = _detector_params(args)
    dataset = services.read_dataset(_input(args.input), profile=args.profile)
    result = services.analyze(dataset, model_version=args.model, detector=args.detector,
                              **params)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.out:
        with open(args.out, "wb") as out:
            write_csv(result.frame, out)
    else:
        write_csv(result.frame, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    flagged = int(result.frame["is_anomaly"].sum())
    print(f"{len(result.frame)} rows scored ({result.profile}), {flagged} flagged. "
          f"{result.threshold_note}", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    params = _detector_params(args)
    dataset = services.read_dataset(_input(args.baseline), profile=args.profile)
    model = services.train(dataset, detector=args.detector, **params)
    meta = model.metadata
    print(f"trained {meta['detector']} on {meta['training_rows']} {meta['profile']} rows, "
          f"{len(meta['features'])} features")
    print(f"model version {model.version}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    models = services.list_models()
    if not models:
        print("no models saved yet: train one with `vigil train BASELINE.csv --profile P`")
        return 0
    print(f"{'version':24} {'created':25} {'profile':8} {'detector':17} rows")
    for m in models:
        print(f"{m['version']:24} {m['created']:25} {m['profile']:8} {m['detector']:17} "
              f"{m['training_rows']}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from sample_data.generate import generate

    for path in generate():
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="Anomaly detection for CSVs.")
    sub = parser.add_subparsers(dest="command", required=True)

    score = sub.add_parser("score", help="score a CSV and write it with the score columns")
    score.add_argument("input")
    _add_detector_options(score)
    score.add_argument("--model", help="a saved model's version (default: fit on the input)")
    score.add_argument("--out", help="output CSV (default: standard output)")
    score.set_defaults(func=cmd_score)

    train = sub.add_parser("train", help="fit a model on a baseline of normal history")
    train.add_argument("baseline")
    _add_detector_options(train)
    train.set_defaults(func=cmd_train)

    sub.add_parser("models", help="list saved models").set_defaults(func=cmd_models)
    sub.add_parser("sample", help="regenerate the bundled sample CSVs").set_defaults(
        func=cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (DetectionError, StorageError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # `vigil score big.csv | head` closes the pipe early: not an error.
        sys.stderr.close()
        return 0
