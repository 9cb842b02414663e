"""The `vigil` command line (also `python -m app`).

Bad input exits with status 2 and one line on stderr starting with ``error:``.
Ctrl-C exits with status 130 and one line, ``interrupted: ...`` (`vigil stream` and
`vigil watch`: 0, as their end).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from alerts.errors import AlertError, DeliveryError
from app.cli import output
from app.cli.output import OutputError
from app.errors import NotAllowedError
from app.text import terminal
from detection.errors import DetectionError
from detection.names import DETECTOR_NAMES, PROFILES
from detection.threads import THREADS
from storage.errors import DatabaseError, StorageError

EXIT_BAD_INPUT = 2
EXIT_NOT_SENT = 1  # the mail server failed; the alert is recorded as failed
EXIT_NOT_STORED = 3  # scored, but the database failed: the run waits in the journal
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
MODEL_HELP = "a registered model's version, its name (its newest version), or 'active'"


def echo(text: object, *, err: bool = False) -> None:
    """Print a line; text from files (names, headers, values) cannot drive the terminal."""
    print(terminal(text), file=sys.stderr if err else sys.stdout)


class UsageError(Exception):
    """A problem with the command line itself, reported like bad input."""


def _services():
    """The use cases that touch the database or send mail, imported on first use: they
    pull in SQLAlchemy, Alembic and Jinja2, which a plain `vigil score` never needs."""
    from app import services

    return services


@contextlib.contextmanager
def _stopped_as_by_ctrl_c():
    """SIGTERM (what `docker stop`, systemd and a bare `kill` send) stops a long-running
    command as Ctrl-C does, rather than killing it where it stands: it exits 0, and what
    it wrote and stored stays. It also stops a command started where Ctrl-C is ignored
    (a background job of a script)."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@functools.cache
def _vigil():
    """The application object: built once, when a command first needs the database."""
    from app.vigil import Vigil

    return Vigil()


# Inputs under this many bytes (about 2,000 rows of a CSV of 50 bytes a line) are scored
# by numpy's walk of the forest (detection.forest.SMALL_ROWS): loading numba and the
# compiled walk (0.5 s and more of a core) would cost more than it saves.
KERNEL_BYTES = 100_000


def _preload_forest(args: argparse.Namespace, files: list[Path] | None) -> None:
    """Start importing scikit-learn, and for a big input the compiled forest walk, on a
    thread while the baseline is read and featurized (over a second, most of it SciPy
    and numba); the forest's own import then waits for this one instead of starting
    over. Scoring with a saved model needs neither for a small file (detection.forest),
    so nothing is loaded ahead; nor does a login file need the compiled walk, big or
    not: its feature rows repeat (a million logins hold a few thousand distinct ones,
    each walked once: detection.forest.distinct_rows), and numpy walks those in less
    time than numba takes to load (0.5 s, and 120 MB at the run's peak). ``files``
    None: an input of unknown size (stored runs). A failure here is left to that import
    to report.
    """
    if args.detector != "isolation_forest" or getattr(args, "model", None):
        return
    modules = ["sklearn.ensemble"]
    if (files is None or sum(_size(path) for path in files) >= KERNEL_BYTES) \
            and not _login_file(args, files):
        modules.append("detection.forest_kernel")

    def load() -> None:
        with contextlib.suppress(Exception):
            for module in modules:
                importlib.import_module(module)

    threading.Thread(target=load, name="import-forest").start()


def _login_file(args: argparse.Namespace, files: list[Path] | None) -> bool:
    """Whether the input is logins, as asked or as its columns say (its header alone:
    milliseconds); False when unknown (stored runs, standard input, a file that does not
    read: the read itself then says why)."""
    if args.profile != "auto":
        return args.profile == "login"
    if not files or not files[0].is_file():
        return False
    from detection.columns import map_columns
    from detection.dataset import is_login
    from detection.reading import column_names

    try:
        return is_login(map_columns(column_names(files[0])))
    except DetectionError:
        return False


def _size(path: Path) -> int:
    """A file's size in bytes; what is not a regular file (standard input) counts big."""
    try:
        return path.stat().st_size if path.is_file() else KERNEL_BYTES
    except OSError:
        return KERNEL_BYTES


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
    parser.add_argument("--detector", default="isolation_forest", choices=sorted(DETECTOR_NAMES))
    parser.add_argument("--contamination", type=float,
                        help="share of baseline rows flagged (isolation_forest)")
    parser.add_argument("--mean", type=float, help="fixed mean (zscore)")
    parser.add_argument("--std", type=float, help="fixed standard deviation (zscore)")
    parser.add_argument("--multiplier", type=float, help="flag beyond this many std (zscore)")


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="dask: on the Dask cluster DASK_SCHEDULER names, else a local "
                             "one; rows are dealt into partitions by machine or user")
    parser.add_argument("--workers", type=_count, default=2,
                        help="--engine dask without DASK_SCHEDULER: local worker processes")
    parser.add_argument("--partitions", type=_count,
                        help="--engine dask: partitions (default: 4 per worker, or one "
                             "per 500,000 rows when more)")


def _count(text: str) -> int:
    """A ``--limit``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _date(text: str) -> datetime:
    """A --since date: YYYY-MM-DD (or an ISO time), read as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-01, got {text!r}"
                                         ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _input(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    return p


def _dataset(spec: str) -> list[Path]:
    """The files a command's input names: a file, a folder or a glob."""
    from app import scoring

    return scoring.dataset_files(spec)


def cmd_score(args: argparse.Namespace) -> int:
    from app import scoring
    from detection.export import write_csv
    from detection.model import check_learnable

    params = _detector_params(args)
    if args.alert and not args.save:
        raise UsageError("--alert needs --save: an alert is sent for a stored run")
    files = _dataset(args.input)
    if args.engine == "dask":
        return _score_on_cluster(args, files, params)
    path = files[0]
    _preload_forest(args, files)
    model = None
    if args.learn and args.save:
        raise UsageError("--learn scores a file as a live stream of it; to store that, "
                         "use `vigil stream FILE --model V --save`")
    if args.model:
        first = scoring.first_piece(path, profile=args.profile)
        model = _services().resolve_model(_vigil(), args.model, profile=first.profile)
        model.check_profile(first.profile)
        if args.learn:  # the file's profile is the model's (checked above)
            check_learnable(model.profile)
        if not args.save and len(files) == 1 and scoring.scores_in_pieces(model, first.profile):
            with output.whole(args.out) as out:
                return _score_in_pieces(path, model, out, learn=args.learn)
    elif not args.save and len(files) == 1 \
            and (rows := scoring.estimated_rows(path)) > scoring.WHOLE_ROWS:
        # A big file fitted on itself, as the Analyze page fits a big upload (its first
        # piece is read only when its lines say it may be one).
        profile = scoring.first_piece(path, profile=args.profile).profile
        if scoring.fits_in_pieces(rows, profile):
            return _fit_in_pieces(path, rows, profile, args, params)
    with output.whole(args.out) as out:
        dataset = scoring.read_dataset(files, profile=args.profile)
        if dataset.profile == "login":  # what reviews made known: the only database read
            dataset = _services().with_known(_vigil(), dataset)
        result = scoring.analyze(dataset, model=model, detector=args.detector,
                                 learn=args.learn, **params)
        for warning in result.warnings:
            echo(f"warning: {warning}", err=True)
        write_csv(result.frame, out)
    flagged = int(result.frame["is_anomaly"].sum())
    echo(f"{len(result.frame)} rows scored ({result.profile}), {flagged} flagged. "
          f"{result.threshold_note}", err=True)
    if args.save:
        report = _services().save(_vigil(), result,
                                  source_name=scoring.dataset_name(args.input, files),
                                  file_sha256=scoring.dataset_sha256(files))
        return _stored(args, report)
    return 0


def _stored(args: argparse.Namespace, report) -> int:
    """Say how a save went, and send the run's alert when asked."""
    echo(report.message, err=True)
    if not report.stored:
        return EXIT_NOT_STORED
    if args.alert:
        alert = _services().notify(_vigil(), report.run_id)
        echo(alert.message, err=True)
        if alert.status == "failed":
            return EXIT_NOT_SENT
    return 0


@contextlib.contextmanager
def _cluster(args: argparse.Namespace):
    """A Dask client (DASK_SCHEDULER's, else a local cluster of --workers processes),
    with its dashboard's address said."""
    from app import cluster

    scheduler = _vigil().settings.dask_scheduler
    with cluster.connect(scheduler, workers=args.workers) as client:
        where = scheduler or f"a local cluster of {args.workers} worker processes"
        echo(f"dask: {where}; dashboard {cluster.dashboard(client) or '(none)'}", err=True)
        yield client


def _cluster_plan(args: argparse.Namespace, files: list[Path], client):
    from app import cluster

    workers = len(client.scheduler_info(n_workers=-1)["workers"]) or args.workers
    return cluster.plan(files, profile=args.profile,
                        partitions=args.partitions or cluster.partitions_for(files, workers))


def _score_on_cluster(args: argparse.Namespace, files: list[Path], params: dict) -> int:
    """`vigil score DATASET --engine dask`: partitions scored on the cluster, written to
    --out (Parquet, a file each) and stored with --save."""
    from app import cluster, scoring

    if not args.out and not args.save:
        raise UsageError("--engine dask writes its rows to --out DIR (a Parquet file a "
                         "partition) or stores its anomalies with --save: give one or both")
    if args.learn:
        raise UsageError("--learn scores one file as a live stream; not with --engine dask")
    if args.out and Path(args.out).is_file():
        raise UsageError(f"--out {args.out}: with --engine dask, a folder (this is a file)")
    source_name = scoring.dataset_name(args.input, files)
    with _cluster(args) as client:
        plan = _cluster_plan(args, files, client)
        if args.model:
            model = _services().resolve_model(_vigil(), args.model, profile=plan.profile)
            model.check_profile(plan.profile)
        else:
            model = cluster.train(client, plan, normal=False, detector=args.detector,
                                  progress=lambda line: echo(line, err=True), **params)
        known = None
        if plan.profile == "login":
            known = _services().every_known(_vigil())
        begin = None
        if args.save:
            head = model.score(scoring.first_piece(files[0], profile=plan.profile,
                                                   columns=plan.columns, rows=50))
            if not args.model:
                head.model_version = None  # the model exists only for this dataset

            def begin(sha: str) -> cluster.Saving:
                begun = _services().begin_partitioned(_vigil(), head, source_name=source_name,
                                                      file_sha256=sha)
                return cluster.Saving(
                    str(_vigil().settings.database_url), begun.run_id, source_name, sha,
                    _vigil().settings.incident_gap_minutes(plan.profile), begun.complete)
        done = cluster.score(client, plan, model, out=args.out, begin_saving=begin,
                             known=known, progress=lambda line: echo(line, err=True))
    for warning in done.warnings:
        echo(f"warning: {warning}", err=True)
    echo(f"{done.rows} rows scored ({plan.profile}) in {plan.partitions} partitions, "
         f"{done.flagged} flagged." + (f" Rows with their scores: {args.out}/part-*.parquet"
                                       if args.out else ""), err=True)
    if done.peaks:
        echo("peak memory per worker: " + ", ".join(
            f"{mb:,.0f} MB" for mb in sorted(done.peaks.values(), reverse=True)), err=True)
    if not args.save:
        return 0
    if done.already:
        return _stored(args, _services().SaveReport(
            done.run_id, False, message=f"Already stored as run {done.run_id}: nothing was "
                                        "added."))
    return _stored(args, _services().finish_partitioned(
        _vigil(), done.run_id, total_rows=done.rows, warnings=done.warnings,
        score_histogram=done.score_histogram))


def _fit_in_pieces(path: Path, rows: int, profile: str, args: argparse.Namespace,
                   params: dict) -> int:
    """Bounded memory for a big sensor or generic file fitted on itself: the model learns
    from stretches of it, then scores it in pieces."""
    from app import scoring
    from detection.model import check_learnable

    if args.learn:
        check_learnable(profile)
    with output.whole(args.out) as out:
        model = scoring.fit_on_stretches(path, rows=rows, profile=profile,
                                         detector=args.detector, **params)
        echo(scoring.stretches_note(rows), err=True)
        if args.learn:  # from the file's first reading, as a file read whole learns
            model.learning = {}
        return _score_in_pieces(path, model, out, learn=args.learn, fitted_on_file=True)


def _score_in_pieces(path: Path, model, out: output.Rows, *, learn: bool,
                     fitted_on_file: bool = False) -> int:
    """Bounded memory: a registered sensor or generic model (or one fitted on the file:
    ``fitted_on_file``) scores the file in pieces, its rows written to ``out``."""
    from app import scoring

    done = scoring.score_in_pieces(path, model, out, learn=learn,
                                   fitted_on_file=fitted_on_file)
    for warning in done.warnings:
        echo(f"warning: {warning}", err=True)
    echo(f"{done.rows} rows scored ({done.profile}), {done.flagged} flagged. "
         f"{done.threshold_note}", err=True)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    params = _detector_params(args)
    chosen = [args.baseline is not None, args.from_runs is not None, args.since is not None]
    if sum(chosen) != 1:
        raise UsageError("train on one of: a baseline file, --from-runs RUN..., --since DATE")
    if args.since is not None and args.profile not in ("sensor", "generic"):
        raise UsageError("--since needs --profile sensor or --profile generic")
    if args.name is not None:  # before the baseline is read, not after minutes of it
        _services().check_model_name(args.name)
    files = None if args.baseline is None else _dataset(args.baseline)
    _preload_forest(args, files)
    if files is None:
        meta = _services().train_from_runs(
            _vigil(), runs=args.from_runs, since=args.since,
            profile=args.profile if args.since is not None else None,
            detector=args.detector, activate=args.activate, name=args.name, **params)
        echo(f"trained on runs {', '.join(map(str, meta['runs']))}: "
             f"{meta['left_out']} row(s) reviewed as confirmed left out")
    elif args.engine == "dask":
        meta = _train_on_cluster(args, files, params)
    else:
        from app import scoring

        dataset = scoring.read_dataset(files, profile=args.profile)
        meta = _services().train(_vigil(), dataset, detector=args.detector,
                                 source_name=scoring.dataset_name(args.baseline, files),
                                 activate=args.activate, name=args.name, **params)
    echo(f"trained {meta['detector']} on {meta['training_rows']} {meta['profile']} rows, "
          f"{len(meta['features'])} features{' (active)' if meta['is_active'] else ''}")
    echo(f"model version {meta['version']}"
         + (f" ({meta['name']}: --model {meta['name']} takes its newest version)"
            if meta["name"] else ""))
    return 0


def _train_on_cluster(args: argparse.Namespace, files: list[Path], params: dict) -> dict:
    """`vigil train DATASET --engine dask`: fitted on a sample drawn across the
    partitions (every row of a dataset of up to a million), deterministic for --seed."""
    from app import cluster, scoring
    from detection import prepare

    with _cluster(args) as client:
        plan = _cluster_plan(args, files, client)
        frame, sample = cluster.sample(client, plan, seed=args.seed,
                                       progress=lambda line: echo(line, err=True))
    dataset = prepare(frame, profile=plan.profile, columns=plan.columns)
    meta = _services().train(_vigil(), dataset, detector=args.detector,
                             source_name=scoring.dataset_name(args.baseline, files),
                             activate=args.activate, name=args.name, sample=sample, **params)
    echo(f"sample: {sample['rows']:,} of {sample['of']:,} rows ({sample['drawn']}, "
         f"seed {sample['seed']})")
    return meta


def cmd_models(args: argparse.Namespace) -> int:
    if args.activate:
        meta = _services().activate_model(_vigil(), args.activate)
        echo(f"{meta['version']} is now the active {meta['profile']} model")
        return 0
    if args.rollback:
        meta = _services().rollback_model(_vigil(), args.rollback)
        echo(f"rolled back: {meta['version']} is the active {meta['profile']} model again")
        return 0
    models = _services().list_models(_vigil())
    if not models:
        echo("no models registered yet: train one with `vigil train BASELINE.csv --profile P`")
        return 0
    echo(f"{'name':16} {'version':24} {'created':20} {'age':>5} {'profile':8} {'detector':17} "
         f"{'rows':>8} {'drift':>6} active")
    for m in models:
        drift = "" if m["last_drift"] is None else f"{m['last_drift']:.1%}"
        echo(f"{m['name'] or '':16} {m['version']:24} {m['created_at']:%Y-%m-%d %H:%M:%S}  "
             f"{m['age_days']:4}d "
             f"{m['profile']:8} {m['detector']:17} {m['training_rows']:8} {drift:>6} "
             f"{'yes' if m['is_active'] else ''}{'  stale: retrain' if m['stale'] else ''}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    found = _services().list_runs(_vigil(), limit=args.limit)
    if not found:
        echo("no runs stored yet: `vigil score FILE.csv --save` stores one")
        return 0
    echo(f"{'id':>5} {'stored':20} {'profile':8} {'rows':>9} {'flagged':>8}  file")
    for run in found:
        echo(f"{run.id:5} {run.created_at:%Y-%m-%d %H:%M:%S}  {run.profile:8} "
              f"{run.total_rows:9} {run.anomaly_count:8}  {run.source_name}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        _services().upgrade_database(_vigil())
        echo("database schema is up to date")
        return 0
    if args.action == "prune":
        return _prune(args)
    reports = _services().replay(_vigil())
    for report in reports:
        echo(report.message)
    rejected = [r for r in reports if not r.stored]
    echo(f"{len(reports) - len(rejected)} journaled run(s) stored"
          + (f", {len(rejected)} set aside (see the reasons above)" if rejected else
             "; the journal is empty"))
    return EXIT_BAD_INPUT if rejected else 0


def _days(text: str) -> float:
    """An age: ``90d``, ``12w``, ``36h`` or a number of days."""
    units = {"d": 1, "w": 7, "h": 1 / 24}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "d")
    try:
        days = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an age like 90d, 12w or 36h, got {text!r}"
                                         ) from None
    if not days > 0:
        raise argparse.ArgumentTypeError(f"an age must be more than 0, got {text!r}")
    return days


def _prune(args: argparse.Namespace) -> int:
    days = args.older_than or _vigil().settings.retention_days
    if days is None:
        raise UsageError("prune what? give --older-than 90d, or set RETENTION_DAYS")
    done = _services().prune(_vigil(), older_than_days=days,
                             include_reviewed=args.include_reviewed)
    echo(f"pruned {done.runs} run(s) stored more than {days:g} days ago: "
         f"{done.anomalies:,} anomalies, {done.incidents:,} incidents")
    if done.kept_reviewed:
        echo(f"kept {len(done.kept_reviewed)} run(s) with reviewed anomalies or incidents "
             f"({', '.join(map(str, done.kept_reviewed[:10]))}): --include-reviewed "
             "prunes them too")
    if done.kept_live:
        echo(f"kept {len(done.kept_live)} run(s) a live stream writes to")
    return 0


def cmd_alert_test(args: argparse.Namespace) -> int:
    echo(f"test message sent via {_services().send_test_email(_vigil(), args.to)}")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    import pandas as pd

    if args.action == "send":
        if args.run is None:
            raise UsageError("`vigil alerts send` needs a run id: `vigil alerts send 12`")
        report = _services().notify(_vigil(), args.run)
        echo(report.message)
        return EXIT_NOT_SENT if report.status == "failed" else 0
    if args.action == "retry":
        reports = _services().retry_failed(_vigil())
        for report in reports:
            echo(report.message)
        echo(f"{len(reports)} failed alert(s) retried")
        return EXIT_NOT_SENT if any(r.status == "failed" for r in reports) else 0
    log = _services().notification_log(_vigil(), limit=args.limit)
    if log.empty:
        echo("no alerts yet")
        return 0
    echo(f"{'id':>4} {'run':>5} {'status':7} {'tries':>5}  {'when':16}  subject / last error")
    for row in log.itertuples():
        when = row.sent_at if pd.notna(row.sent_at) else row.created_at
        detail = row.last_error if row.status != "sent" else row.subject
        echo(f"{row.id:4} {row.run_id:5} {row.status:7} {row.attempts:5}  "
              f"{when:%Y-%m-%d %H:%M}  {detail}")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    source = sys.stdin.buffer if args.input == "-" else _input(args.input)
    if args.follow and args.input == "-":
        raise UsageError("--follow goes with a file: standard input is read until it closes")

    if args.model == _services().ACTIVE:  # the first rows tell whose active model
        profile = args.profile

        def model_for(found: str):
            return _services().resolve_model(_vigil(), args.model, profile=found)
    else:  # a version (or a name) says its profile: the first rows need not
        model = _services().resolve_model(_vigil(), args.model, profile=args.profile)
        profile = model.profile

        def model_for(found: str):
            return model

    if args.alert and not args.save:
        raise UsageError("--alert needs --save: alerts are sent for stored incidents")
    name = args.source or ("stdin" if args.input == "-" else Path(args.input).name)
    out = output.growing(args.out)
    try:
        with _stopped_as_by_ctrl_c(), (
                _services().stream_writer(_vigil(), name, "vigil stream") if args.save
                else contextlib.nullcontext()) as writer:
            done = _stream(args, name, writer, source, model_for, out, profile)
    except KeyboardInterrupt:  # Ctrl-C ends a followed stream; what was scored is written
        return 0
    finally:
        if args.out:
            out.close()
    echo(f"{done.rows} rows scored as they arrived, {done.flagged} flagged", err=True)
    return 0


def _stream(args, name, writer, source, model_for, out, profile):
    """Stream (with ``writer``, the stream's lease holder: saved batch by batch)."""
    from app.live.stream import lines, stream

    stored, carried, keep = 0, None, None
    if writer is not None:
        stored, carried = _services().stream_checkpoint(_vigil(), name)
        if stored:
            echo(f"stream {name}: {stored} rows were stored before; continuing after them",
                 err=True)
            if args.alert:  # what a stop between storing and alerting left unsent
                _say_alerts(_services().alert_stream(_vigil(), name))

        def keep(result, start, end, rows):
            appended = _services().store_stream_batch(_vigil(), writer, result, source=name,
                                                      start=start, end=end, carried=rows)
            if args.alert and appended.incident_ids:
                _say_alerts(_services().alert_stream(_vigil(), name, appended.incident_ids))

    def checked_model_for(found: str):
        if stored:  # a stream of another profile's rows is refused in words
            _services().stream_checkpoint(_vigil(), name, found)
        return model_for(found)

    return stream(lines(source, follow=args.follow), checked_model_for, out, profile=profile,
                  stored=stored, carried=carried, keep=keep,
                  known=functools.partial(_services().with_known, _vigil()))


def _say_alerts(reports) -> None:
    for report in reports:
        if report.status in ("sent", "queued", "failed"):
            echo(report.message, err=True)


def cmd_watch(args: argparse.Namespace) -> int:
    from app.live.watch import watch

    try:
        with _stopped_as_by_ctrl_c():
            tally = watch(_vigil(), Path(args.folder), once=args.once, interval=args.interval,
                          model=args.model, say=echo)
    except KeyboardInterrupt:  # Ctrl-C: a file in progress is finished on the next start
        return 0
    echo(f"{tally.done} file(s) done, {tally.failed} failed"
         + (f" (their reasons in {Path(args.folder) / 'failed'})" if tally.failed else ""))
    return EXIT_BAD_INPUT if tally.failed else 0


def cmd_replay(args: argparse.Namespace) -> int:
    from app.live.replay import replay

    written = replay(_input(args.input), sys.stdout, speed=args.speed, rate=args.rate)
    echo(f"{written} rows replayed", err=True)
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    import pandas as pd

    services = _services()
    if args.action == "add":
        if not args.name or not args.role:
            raise UsageError("tokens add needs NAME and --role viewer|analyst|admin")
        if not args.user:
            raise UsageError("tokens add needs --user USER: a token belongs to a user and "
                             "carries at most their role")
        token = services.add_token(_vigil(), args.name, role=args.role, user=args.user)
        echo(f"token for {args.name} ({args.role}); it is shown this once, keep it safe:",
             err=True)
        echo(token)
    elif args.action == "revoke":
        if not args.name:
            raise UsageError("tokens revoke needs NAME")
        if not services.revoke_token(_vigil(), args.name):
            raise UsageError(f"no valid token named {args.name!r} (see `vigil tokens list`)")
        echo(f"revoked the token {args.name}")
    else:
        listed = services.list_tokens(_vigil())
        if listed.empty:
            echo("no tokens: `vigil tokens add NAME --role viewer|analyst|admin --user USER` "
                 "makes one")
        for row in listed.itertuples():
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if pd.notna(row.revoked_at) \
                else "valid"
            echo(f"{row.name}  {row.user}  {row.role}  {row.prefix}…  created "
                 f"{row.created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def _password(args: argparse.Namespace) -> str:
    """From standard input (one line) with --password-stdin, else asked twice."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    services, vigil = _services(), _vigil()
    if args.action == "bootstrap":
        settings = vigil.settings
        if not settings.vigil_admin_user or settings.vigil_admin_password is None:
            echo("VIGIL_ADMIN_USER and VIGIL_ADMIN_PASSWORD are not set: nothing to do")
        else:
            try:
                services.create_first_admin(vigil, settings.vigil_admin_user,
                                            settings.vigil_admin_password.get_secret_value())
            except NotAllowedError:  # accounts exist (another container made it first)
                echo("accounts exist already: nothing to do")
            else:
                echo(f"created the administrator {settings.vigil_admin_user}")
        return 0
    if args.action == "list":
        for row in services.list_users(vigil).itertuples():
            state = "disabled" if row.disabled else "enabled"
            echo(f"{row.name}  {row.role}  {row.email or '-'}  {state}")
        return 0
    if not args.name:
        raise UsageError(f"users {args.action} needs NAME")
    if args.action == "add":
        if not args.role:
            raise UsageError("users add needs --role viewer|analyst|admin")
        password = None if args.sso_only else _password(args)
        services.add_user(vigil, args.name, role=args.role, password=password,
                          email=args.email)
        echo(f"added {args.name} ({args.role})")
    elif args.action == "passwd":
        services.set_password(vigil, args.name, _password(args))
        echo(f"changed the password of {args.name}")
    else:  # disable, enable
        services.disable_user(vigil, args.name, disabled=args.action == "disable")
        echo(f"{args.action}d {args.name}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.server import create_app

    # One event loop answers HTTP; --workers processes score, first come first served.
    uvicorn.run(create_app(processes=args.workers), host=args.host, port=args.port,
                log_level="warning", access_log=False)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from sample_data.generate import generate

    for path in generate():
        echo(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="Anomaly detection for CSVs.")
    sub = parser.add_subparsers(dest="command", required=True)

    score = sub.add_parser("score", help="score a CSV and write it with the score columns")
    score.add_argument("input", help="a CSV or Parquet file, or a folder or glob of them "
                       "read as one dataset")
    _add_detector_options(score)
    score.add_argument("--model", help=f"{MODEL_HELP} (default: fit on the input)")
    score.add_argument("--out", help="output CSV (default: standard output)")
    score.add_argument("--learn", action="store_true",
                       help="a sensor file: score it as `vigil stream` does, learning from "
                            "each reading as it goes, from the model's baseline (with --model) "
                            "or from the file's first reading (a change is told where it "
                            "starts, then learned; default: against the model's fixed "
                            "baseline, or every row unlike the file as a whole)")
    score.add_argument("--save", action="store_true", help="store the run and its anomalies")
    score.add_argument("--alert", action="store_true",
                       help="email the run's digest to its team (with --save)")
    _add_engine_options(score)
    score.set_defaults(func=cmd_score)

    train = sub.add_parser("train", help="fit a model on a baseline of normal history: a "
                           "file, or the rows of stored runs")
    train.add_argument("baseline", nargs="?", help="normal history: a CSV or Parquet file, "
                       "or a folder or glob of them")
    train.add_argument("--from-runs", type=_count, nargs="+", metavar="RUN",
                       help="train on the rows these stored sensor or generic runs kept, "
                            "without the rows reviewed as confirmed")
    train.add_argument("--since", type=_date, metavar="DATE",
                       help="train on every run of --profile stored since DATE "
                            "(YYYY-MM-DD, UTC), without the rows reviewed as confirmed")
    _add_detector_options(train)
    train.add_argument("--activate", action="store_true",
                       help="make it the active model of its profile")
    train.add_argument("--name", help="what the model is for (pumps, lifts-east): "
                                      "--model NAME then takes its newest version")
    _add_engine_options(train)
    train.add_argument("--seed", type=int, default=0,
                       help="--engine dask: the sample a big dataset trains on (the same "
                            "seed, the same sample)")
    train.set_defaults(func=cmd_train)

    models = sub.add_parser("models", help="list registered models, activate, roll back")
    action = models.add_mutually_exclusive_group()
    action.add_argument("--activate", metavar="MODEL", help="make MODEL active: a version, "
                        "or a name (its newest version)")
    action.add_argument("--rollback", metavar="PROFILE", choices=PROFILES,
                        help="re-activate the previously active model of PROFILE")
    models.set_defaults(func=cmd_models)

    runs = sub.add_parser("runs", help="list stored runs, newest first")
    runs.add_argument("--limit", type=_count, default=20)
    runs.set_defaults(func=cmd_runs)

    alerts = sub.add_parser("alerts", help="send a run's alert, retry failed ones, show the log")
    alerts.add_argument("action", choices=("send", "retry", "log"))
    alerts.add_argument("run", nargs="?", type=int, help="run id (send)")
    alerts.add_argument("--limit", type=_count, default=20)
    alerts.set_defaults(func=cmd_alerts)

    alert_test = sub.add_parser("alert-test", help="send a test email")
    alert_test.add_argument("--to", required=True, help="address(es), comma-separated")
    alert_test.set_defaults(func=cmd_alert_test)

    database = sub.add_parser("db", help="database: upgrade the schema, replay the journal, "
                              "prune old runs")
    database.add_argument("action", choices=("upgrade", "replay", "prune"))
    database.add_argument("--older-than", type=_days, metavar="AGE",
                          help="prune: runs stored longer ago than AGE (90d, 12w, 36h; "
                               "default RETENTION_DAYS)")
    database.add_argument("--include-reviewed", action="store_true",
                          help="prune: runs with reviewed anomalies or incidents too")
    database.set_defaults(func=cmd_db)
    live = sub.add_parser("stream", help="score rows as they arrive (a file, a growing file "
                          "with --follow, or - for standard input) with a registered model")
    live.add_argument("input", help="a CSV file, or - for standard input")
    live.add_argument("--model", required=True, help=MODEL_HELP)
    live.add_argument("--profile", default="auto", choices=("auto", *PROFILES))
    live.add_argument("--follow", action="store_true",
                      help="keep reading what is appended to the file (across rotation)")
    live.add_argument("--out", help="output CSV (default: standard output)")
    live.add_argument("--save", action="store_true",
                      help="store the rows in the live run of --source, batch by batch with "
                           "a checkpoint: a restart on the same input continues after it")
    live.add_argument("--source", help="the stream's name (default: the file name, or stdin)")
    live.add_argument("--alert", action="store_true",
                      help="email each incident at ALERT_MIN_SEVERITY or above when it "
                           "opens, and once more if it escalates (with --save)")
    live.set_defaults(func=cmd_stream)

    watch = sub.add_parser("watch", help="score, save and alert each CSV that lands in "
                           "FOLDER, then move it to done/ or failed/")
    watch.add_argument("folder")
    watch.add_argument("--once", action="store_true",
                       help="process the files that are ready, then exit (status 2 when "
                            "any went to failed/)")
    watch.add_argument("--interval", type=float, default=1.0,
                       help="seconds between looks at the folder (default 1)")
    watch.add_argument("--model", default="active",
                       help=f"the folder's files are scored with {MODEL_HELP} (default: "
                            "each profile's active model)")
    watch.set_defaults(func=cmd_watch)

    replay = sub.add_parser("replay", help="write a file's rows to standard output at the "
                            "pace they happened (pipe into `vigil stream -`)")
    replay.add_argument("input")
    pace = replay.add_mutually_exclusive_group(required=True)
    pace.add_argument("--speed", type=float, metavar="K",
                      help="K times real time, by the rows' timestamps")
    pace.add_argument("--rate", type=float, metavar="R", help="R rows a second")
    replay.set_defaults(func=cmd_replay)

    tokens = sub.add_parser("tokens", help="HTTP API tokens: add NAME --role R --user U, "
                            "list, revoke NAME")
    tokens.add_argument("action", choices=("add", "list", "revoke"))
    tokens.add_argument("name", nargs="?", help="who or what uses the token")
    tokens.add_argument("--role", choices=("viewer", "analyst", "admin"),
                        help="viewer reads; analyst also scores, uploads and reviews; "
                             "admin may do everything (at most the user's role)")
    tokens.add_argument("--user", help="the user the token belongs to (add)")
    tokens.set_defaults(func=cmd_tokens)

    accounts = sub.add_parser("users", help="dashboard accounts: add NAME --role R, list, "
                              "disable NAME, enable NAME, passwd NAME, bootstrap (the first "
                              "administrator from VIGIL_ADMIN_USER and VIGIL_ADMIN_PASSWORD)")
    accounts.add_argument("action", choices=("add", "list", "disable", "enable", "passwd",
                                             "bootstrap"))
    accounts.add_argument("name", nargs="?")
    accounts.add_argument("--role", choices=("viewer", "analyst", "admin"))
    accounts.add_argument("--email", help="matched when the user signs in with single sign-on")
    accounts.add_argument("--password-stdin", action="store_true",
                          help="read the password from standard input (else asked twice)")
    accounts.add_argument("--sso-only", action="store_true",
                          help="no password: the user signs in with single sign-on only")
    accounts.set_defaults(func=cmd_users)

    serve = sub.add_parser("serve", help="the HTTP API (OpenAPI at /docs) and /metrics")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_count, default=THREADS,
                       help="processes that score bodies, fed in arrival order (default: "
                       "one per core)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("sample", help="regenerate the bundled sample CSVs").set_defaults(
        func=cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DatabaseError as exc:
        echo(f"error: {exc}; check DATABASE_URL, and run `vigil db upgrade` on a new "
             "database", err=True)
        return EXIT_BAD_INPUT
    except (DetectionError, StorageError, UsageError, NotAllowedError, OutputError) as exc:
        echo(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    except DeliveryError as exc:
        echo(f"error: {exc}", err=True)
        return EXIT_NOT_SENT
    except AlertError as exc:
        echo(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C: no traceback; --out was not written (app.cli.output)
        echo("interrupted: stopped before the end", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `vigil score big.csv | head` closes the pipe early: not an error.
        sys.stderr.close()
        return 0


def run() -> None:
    """The `vigil` program: run :func:`main` and exit with its status."""
    code = main()
    # Everything is still referenced at exit, so the interpreter's final garbage
    # collections find nothing to free, yet walk every object SciPy and pandas created
    # (0.2 s); freezing them skips that walk. Files are closed and output flushed by then.
    gc.freeze()
    sys.exit(code)
