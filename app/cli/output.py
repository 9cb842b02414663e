"""Where a command's rows go: ``--out FILE`` or standard output.

`vigil score --out FILE` writes FILE whole or not at all (FILE a file: a device such as
/dev/null, or a named pipe, is written as it is). The rows go to a hidden file
beside it, which takes FILE's name only once the last row is written: a run stopped by
an error in its millionth row, or by Ctrl-C, leaves no half-written FILE that looks like
a result, and whatever FILE held before stays as it was. The hidden file is made before
any work starts, so a folder that does not exist (or cannot be written) is told at once,
not after minutes of scoring. A write that fails (a full disk) is one error line that
says where the rows were going, as a missing folder is; a closed pipe (`vigil score
FILE | head`) stays the BrokenPipeError the command line passes over.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

PART = ".part"  # the hidden file's suffix, while its rows are written
STDOUT = "standard output"


class OutputError(Exception):
    """The rows cannot be written where they go."""


@contextlib.contextmanager
def _told(where: str) -> Iterator[None]:
    """An OSError of the block as an :class:`OutputError` naming ``where``."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"{where}: cannot write there ({exc.strerror or exc})") from None


class Rows:
    """A binary file the rows are written to, whose failures say where it is."""

    def __init__(self, file: BinaryIO, where: str):
        self._file, self._where = file, where

    def write(self, data) -> int:
        with _told(self._where):
            return self._file.write(data)

    def flush(self) -> None:
        with _told(self._where):
            self._file.flush()

    def close(self) -> None:
        with _told(self._where):
            self._file.close()


def _where(path: str | None) -> str:
    return f"--out {path}" if path else STDOUT


@contextlib.contextmanager
def whole(path: str | None) -> Iterator[Rows]:
    """A file for the rows, which becomes ``path`` only if the block ends without an
    exception (``None``: standard output, flushed at the end)."""
    where = _where(path)
    if not path:
        rows = Rows(sys.stdout.buffer, where)
        yield rows
        rows.flush()
        return
    target = Path(os.path.realpath(path))  # a link's file is replaced, not the link
    if target.exists() and not target.is_file():  # /dev/null, a named pipe: as it is
        rows = growing(path)
        try:
            yield rows
        finally:
            rows.close()
        return
    # The hidden file's name is set before it is made, so that Ctrl-C at any moment
    # (even as it is being made) leaves nothing behind; its 64 random bits keep two runs
    # apart.
    part = target.parent / f".{target.name}.{os.urandom(8).hex()}{PART}"
    try:
        with _told(where):
            rows = Rows(open(part, "xb"), where)  # noqa: SIM115 - closed below
        try:
            yield rows
        finally:
            rows.close()
        with _told(where), contextlib.suppress(FileNotFoundError):
            os.chmod(part, target.stat().st_mode & 0o7777)  # a file replaced keeps its own
        with _told(where):
            os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def growing(path: str | None) -> Rows:
    """The rows written as they come (a followed stream's, read while it grows): to
    ``path`` (the caller closes it) or standard output."""
    where = _where(path)
    if not path:
        return Rows(sys.stdout.buffer, where)
    with _told(where):
        return Rows(open(path, "wb"), where)  # noqa: SIM115 - the caller closes it
