"""`vigil` run by the tests as a user runs it: its command line in, its exit status,
standard output and standard error out.

A run happens in the test's own process unless the process is the point. A process of
its own paid 1.5-2.5 s of start-up (Python, pandas, scikit-learn, SciPy) for every one
of the suite's hundreds of runs, on two cores shared by five workers; in-process, the
same :func:`app.cli.main.main` runs with what a new process would have: the
environment, working folder and settings of that run alone, no database engine left by
an earlier run, Python's own warning filters with warnings printed to standard error,
and a library's log records printed there as Python prints them when nothing is set
up. Whatever escapes ``main`` is printed as a traceback with status 1, so a test that
asserts "no traceback" still can fail.

A run with standard input (``stdin=``: a pipe, as a user's ``cat file | vigil ...``)
or ``process=True`` (start-up itself, signals, a library printing at exit) gets a
process of its own; :func:`started` starts one that runs beside the test, with the same
settings (:func:`environment`).
"""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import traceback
import warnings
from pathlib import Path


def environment(tmp_path: Path, env: dict | None = None) -> dict:
    """The settings `vigil` runs with in a test: ``tmp_path``'s own database, journal and
    outbox, then ``env``."""
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}",
            "JOURNAL_DIR": str(tmp_path / "fallback"),
            "ALERT_OUTBOX_DIR": str(tmp_path / "outbox"), **(env or {})}


def vigil(*args, tmp_path: Path, stdin: str | None = None, env: dict | None = None,
          process: bool = False) -> subprocess.CompletedProcess:
    """Run ``vigil ARGS`` on ``tmp_path``'s own database, journal and outbox."""
    env = environment(tmp_path, env)
    argv = [str(arg) for arg in args]
    if process or stdin is not None:
        return subprocess.run([sys.executable, "-m", "app", *argv], capture_output=True,
                              text=True, env={**os.environ, **env}, cwd=tmp_path,
                              input=stdin, timeout=300)
    return _in_process(argv, env, tmp_path)


def started(*args, tmp_path: Path, env: dict | None = None, **popen) -> subprocess.Popen:
    """``vigil ARGS`` started in a process of its own that runs beside the test (a
    followed file, a watched folder, a second writer), with :func:`environment`."""
    return subprocess.Popen([sys.executable, "-m", "app", *map(str, args)],
                            env={**os.environ, **environment(tmp_path, env)}, cwd=tmp_path,
                            **popen)


class _Kept(io.BytesIO):
    """Output that stays readable after the program closes its stream (a closed pipe
    closes standard error)."""

    def close(self) -> None:
        pass


def _text(data: bytes) -> str:
    """Bytes as ``subprocess.run(text=True)`` gives them: decoded, newlines universal."""
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")


def _new_process_warnings() -> None:
    """Python's warning filters as a new process starts with them."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                     ResourceWarning):
        warnings.simplefilter("ignore", category)

    def shown(message, category, filename, lineno, file=None, line=None) -> None:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = shown


def _in_process(argv: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    from app import vigil as application
    from app.cli import main as cli
    from app.settings import get_settings

    out, err = _Kept(), _Kept()
    saved = (dict(os.environ), os.getcwd(), (sys.stdin, sys.stdout, sys.stderr),
             {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)},
             set(application._ENGINES))
    stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - closed below
    sys.stdin = stdin
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    log = logging.StreamHandler(sys.stderr)  # Python's last resort, as in a process
    log.setLevel(logging.WARNING)
    logging.getLogger().addHandler(log)
    os.environ.update(env)
    os.chdir(cwd)
    get_settings.cache_clear()
    cli._vigil.cache_clear()
    try:
        with warnings.catch_warnings():
            _new_process_warnings()
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        environ, folder, streams, handlers, engines = saved
        for stream in (sys.stdout, sys.stderr):
            if not stream.closed:
                stream.flush()
        sys.stdin, sys.stdout, sys.stderr = streams
        stdin.close()
        logging.getLogger().removeHandler(log)
        for number, handler in handlers.items():
            signal.signal(number, handler)
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(folder)
        get_settings.cache_clear()
        cli._vigil.cache_clear()
        for url in set(application._ENGINES) - engines:  # a process's pool ends with it
            application._ENGINES.pop(url).dispose()
    return subprocess.CompletedProcess(["vigil", *argv], code, _text(out.getvalue()),
                                       _text(err.getvalue()))
