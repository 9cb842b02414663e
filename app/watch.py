"""`vigil watch FOLDER`: score, save and alert every CSV that lands in a folder.

A file is taken once it has not changed for ``settle`` seconds (a file renamed into the
folder usually already has not; one still being written has). It is scored with its
profile's active model, saved and alerted, then moved to ``done/``; a file Vigil cannot
use goes to ``failed/`` with ``NAME.error.txt`` holding the one-line reason. Saving and
alerting are idempotent, so a restart between saving and moving re-processes the file
without storing or sending anything twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alerts.errors import AlertError
from app import services
from app.vigil import Vigil
from detection import DetectionError
from storage.errors import StorageError

SETTLE_S = 2.0
SUFFIXES = (".csv", ".txt")


@dataclass(frozen=True)
class Outcome:
    """What became of one file."""

    path: Path
    moved_to: Path | None  # None: left in place, to be tried again (database down)
    message: str


def ready(folder: Path, *, settle: float = SETTLE_S, now: float | None = None) -> list[Path]:
    """Files in ``folder`` (not below it) unchanged for ``settle`` seconds, oldest first."""
    now = time.time() if now is None else now
    found = []
    for path in folder.iterdir():
        if not path.is_file() or path.name.startswith(".") or \
                path.suffix.lower() not in SUFFIXES:
            continue
        modified = path.stat().st_mtime
        if now - modified >= settle:
            found.append((modified, path.name, path))
    return [path for _, _, path in sorted(found)]


def _move(path: Path, folder: Path) -> Path:
    """Move into ``folder``; a name already there gets the time added, never replaced."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    path.replace(target)
    return target


def process(vigil: Vigil, path: Path) -> Outcome:
    """Score ``path`` with its profile's active model, save it, alert, and move it."""
    folder = path.parent
    try:
        dataset = services.read_dataset(path)
        result = services.analyze(vigil, dataset, model_version=services.ACTIVE)
        report = services.save(vigil, result, source_name=path.name,
                               file_sha256=services.file_sha256(path))
        if not report.stored:
            return Outcome(path, None, f"{path.name}: {report.message} It stays in the "
                                       "folder and is tried again.")
        alert = services.notify(vigil, report.run_id)
    except (DetectionError, StorageError, AlertError) as exc:
        target = _move(path, folder / "failed")
        target.with_name(target.name + ".error.txt").write_text(f"error: {exc}\n")
        return Outcome(path, target, f"{path.name}: failed: {exc}")
    target = _move(path, folder / "done")
    return Outcome(path, target, f"{path.name}: {report.message} {alert.message}")


def watch(vigil: Vigil, folder: Path, *, once: bool = False, interval: float = 1.0,
          settle: float = SETTLE_S, say: Callable[[str], None] = print) -> int:
    """Process files as they land until interrupted (``once``: one pass). Returns the
    number of files moved."""
    if not folder.is_dir():
        raise StorageError(f"{folder} is not a folder")
    moved = 0
    while True:
        for path in ready(folder, settle=settle):
            outcome = process(vigil, path)
            moved += outcome.moved_to is not None
            say(outcome.message)
        if once:
            return moved
        time.sleep(interval)
