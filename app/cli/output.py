"""Where a command's rows go: ``--out FILE`` or standard output.

`vigil score --out FILE` writes FILE whole or not at all (FILE a file: a device such as
/dev/null, or a named pipe, is written as it is). The rows go to a hidden file
beside it, which takes FILE's name only once the last row is written: a run stopped by
an error in its millionth row, or by Ctrl-C, leaves no half-written FILE that looks like
a result, and whatever FILE held before stays as it was. The hidden file is made before
any work starts, so a folder that does not exist (or cannot be written) is told at once,
not after minutes of scoring.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

PART = ".part"  # the hidden file's suffix, while its rows are written


class OutputError(Exception):
    """``--out`` cannot be written where it says."""


def _refused(path: str, exc: OSError) -> OutputError:
    return OutputError(f"--out {path}: cannot write there ({exc.strerror or exc})")


@contextlib.contextmanager
def whole(path: str | None) -> Iterator[BinaryIO]:
    """A binary file for the rows, which becomes ``path`` only if the block ends without
    an exception (``None``: standard output, flushed at the end)."""
    if not path:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(os.path.realpath(path))  # a link's file is replaced, not the link
    if target.exists() and not target.is_file():  # /dev/null, a named pipe: as it is
        with growing(path) as out:
            yield out
        return
    # The hidden file's name is set before it is made, so that Ctrl-C at any moment
    # (even as it is being made) leaves nothing behind; its 64 random bits keep two runs
    # apart.
    part = target.parent / f".{target.name}.{os.urandom(8).hex()}{PART}"
    try:
        try:
            out = open(part, "xb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _refused(path, exc) from None
        with out:
            yield out
        with contextlib.suppress(FileNotFoundError):  # a file replaced keeps its permissions
            os.chmod(part, target.stat().st_mode & 0o7777)
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def growing(path: str) -> BinaryIO:
    """``path`` opened for rows written as they come (a followed stream's, read while it
    grows), with a clear error where it cannot be."""
    try:
        return open(path, "wb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise _refused(path, exc) from None
