"""`vigil watch FOLDER`: score, save and alert every CSV that lands in a folder.

A file is taken once it has not changed for ``settle`` seconds (a file renamed into the
folder usually already has not; one still being written has). It is scored with its
profile's active model, saved and alerted, then moved to ``done/``; a file Vigil cannot
use goes to ``failed/`` with ``NAME.error.txt`` holding the one-line reason (quoting
column names, never the file's values). Saving and alerting are idempotent, so a
restart between saving and moving re-processes the file without storing or sending
anything twice.

Only regular files placed in the folder are read: a symbolic link (``ln -s .env
in/env.csv``) or a hard link to a file elsewhere could hand any file the watcher may
read to everyone who may read runs. Such entries are left where they are, and said once.
A file is read once, through a handle that follows no link, and what was read is what
is hashed and scored. A file whose last line has no line end yet is still being written
(a writer that paused mid-line): it waits until it has one, or has not changed for
``COMPLETE_S``. A file that cannot be done now (the database is down, it cannot be read,
it was moved away meanwhile) stays where it is and is tried again later, each time after
twice as long, up to ``MAX_WAIT_S``; only a file's own faults send it to ``failed/``.
"""

from __future__ import annotations

import csv
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import detection.forest_kernel  # noqa: F401 - runs for long: the compiled forest walk, loaded once
import detection.learning_kernel  # noqa: F401 - and the live learner's (shapes, tails)
from alerts.errors import AlertError
from app import services
from app.vigil import Vigil
from detection import DetectionError
from storage.errors import DatabaseError, StorageError

SETTLE_S = 2.0
COMPLETE_S = 120.0  # unchanged this long, a file whose last line has no line end is taken
MAX_WAIT_S = 300.0  # the longest wait before a file that could not be done is tried again
SUFFIXES = (".csv", ".txt")


@dataclass(frozen=True)
class Outcome:
    """What became of one file."""

    path: Path
    moved_to: Path | None  # None: left in place, to be tried again (database down)
    message: str
    failed: bool = False  # moved to failed/: the file's own fault


@dataclass
class Tally:
    """Files moved by a watch: to ``done/`` and to ``failed/``."""

    done: int = 0
    failed: int = 0


def entries(folder: Path, *, settle: float = SETTLE_S, now: float | None = None
            ) -> tuple[list[Path], dict[Path, str]]:
    """Files in ``folder`` (not below it) unchanged for ``settle`` seconds, oldest first,
    and the entries that look like data but are not read, with why."""
    now = time.time() if now is None else now
    found, refused = [], {}
    with os.scandir(folder) as listing:
        for entry in listing:
            path = Path(entry.path)
            if entry.name.startswith(".") or path.suffix.lower() not in SUFFIXES:
                continue
            info = entry.stat(follow_symlinks=False)
            why = _not_own(info)
            if why:
                refused[path] = why
            elif now - info.st_mtime >= settle:
                found.append((info.st_mtime, entry.name, path))
    return [path for _, _, path in sorted(found)], refused


def _not_own(info: os.stat_result) -> str | None:
    """Why an entry is not a file of the folder's own, or None when it is one."""
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_nlink > 1:
        return "a hard link to a file kept elsewhere too"
    return None


class NotOwnFileError(StorageError):
    """The entry became a link or another kind of file after it was listed."""


def read_own(path: Path) -> bytes:
    """The bytes of ``path``, read through a handle that follows no link; refused when
    it is not a regular file of its own (it may have been swapped since it was listed)."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise NotOwnFileError(f"{path.name} cannot be read ({exc.strerror})") from None
    with os.fdopen(handle, "rb") as file:
        why = _not_own(os.fstat(file.fileno()))
        if why:
            raise NotOwnFileError(f"{path.name} is {why}: Vigil reads only files placed in "
                                  "the folder")
        return file.read()


QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def without_values(message: str, data: bytes) -> str:
    """``message`` with every quoted text that is not a column name but stands in the
    file below its header line replaced by '…': an error file quotes column names,
    never the file's values."""
    head, _, body = data.partition(b"\n")
    names = set(next(csv.reader([head.decode("utf-8-sig", errors="replace")]), []))

    def shown(match: re.Match) -> str:
        text = match.group(1) if match.group(1) is not None else match.group(2)
        if text in names or not text or text.encode(errors="replace") not in body:
            return match.group(0)
        return "'…'"

    return QUOTED.sub(shown, message)


def _move(path: Path, folder: Path) -> Path:
    """Move into ``folder``; a name already there gets the time added, never replaced."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    path.replace(target)
    return target


def shown_name(path: Path) -> str:
    """The file's name as text: bytes that are not UTF-8 (a name from another system's
    encoding) shown as U+FFFD, so the run can be stored and the name printed."""
    return os.fsencode(path.name).decode("utf-8", errors="replace")


def process(vigil: Vigil, path: Path, model: str = services.ACTIVE) -> Outcome:
    """Score ``path`` with ``model`` (a version, or its profile's active model), save
    it, alert, and move it."""
    folder, name = path.parent, shown_name(path)
    data = b""
    try:
        data = read_own(path)
        if not data.endswith(b"\n") and time.time() - path.stat().st_mtime < COMPLETE_S:
            return Outcome(path, None, f"{name}: waits: its last line has no line end yet "
                                       "(still being written)")
        # As an upload is: a big sensor or generic file scored in pieces (an 80 MB file
        # peaked at 2.7 GB read whole), the same run stored.
        analysis = services.analyze_upload(vigil, data, source_name=name,
                                           file_sha256=services.file_sha256(data),
                                           model_version=model)
        report = services.store(vigil, analysis.run)
        if not report.stored:
            return Outcome(path, None, f"{name}: {report.message} It stays in the folder "
                                       "and is tried again.")
        alert = services.notify(vigil, report.run_id)
        target = _move(path, folder / "done")
    except (NotOwnFileError, OSError) as exc:  # gone or unreadable: not the file's fault
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return Outcome(path, None, f"{name}: skipped for now: {why}")
    except DatabaseError as exc:
        return Outcome(path, None, f"{name}: {exc}; it stays in the folder and is tried "
                                   "again")
    except (DetectionError, StorageError, AlertError) as exc:
        reason = without_values(str(exc), data)
        target = _move(path, folder / "failed")
        target.with_name(target.name + ".error.txt").write_text(f"error: {reason}\n")
        return Outcome(path, target, f"{name}: failed: {reason}", failed=True)
    return Outcome(path, target, f"{name}: {report.message} {alert.message}")


def watch(vigil: Vigil, folder: Path, *, once: bool = False, interval: float = 1.0,
          settle: float = SETTLE_S, model: str = services.ACTIVE,
          say: Callable[[str], None] = print) -> Tally:
    """Process files as they land until interrupted (``once``: one pass), each scored
    with ``model``. Returns how many went to ``done/`` and to ``failed/``."""
    if not folder.is_dir():
        raise StorageError(f"{folder} is not a folder")
    tally, told = Tally(), set()
    waiting: dict[Path, tuple[float, float]] = {}  # path: (not before, last wait)
    while True:
        found, refused = entries(folder, settle=settle)
        for path, why in refused.items():
            if path not in told:  # once: it stays, and each pass would say it again
                say(f"{shown_name(path)}: skipped: {why} (Vigil reads only files placed "
                    "in the folder)")
                told.add(path)
        now = time.monotonic()
        for path in found:
            if waiting.get(path, (0.0, 0.0))[0] > now:
                continue
            outcome = process(vigil, path, model)
            if outcome.moved_to is not None:
                tally.failed += outcome.failed
                tally.done += not outcome.failed
            say(outcome.message)
            if outcome.moved_to is None:  # tried again later, each time after longer
                wait = min(MAX_WAIT_S, 2 * waiting.get(path, (0.0, interval / 2))[1])
                waiting[path] = (time.monotonic() + wait, wait)
            else:
                waiting.pop(path, None)
        if once:
            return tally
        time.sleep(interval)
