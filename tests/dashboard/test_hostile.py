"""The hostile and broken CSVs of tests/hostile on the Analyze page: each is refused in
words or scored, never a traceback (the command line: tests/app/test_hostile.py)."""

import pytest

from tests.app.test_hostile import CORPUS
from tests.conftest import sqlite_copy
from tests.dashboard.conftest import open_page

PARTS = 3  # the corpus in thirds: the parallel workers share it


@pytest.fixture
def database_url(migrated_sqlite, tmp_path):
    """SQLite only: Analyze reads and scores an upload without storing it, so no byte of
    the corpus reaches the database (untrusted values stored: tests/storage, on both
    databases). Run on both, the corpus took 2 minutes of the suite's CPU for the same
    assertions."""
    return sqlite_copy(migrated_sqlite, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("part", range(PARTS))
def test_the_analyze_page_shows_each_in_words(dashboard_env, part):
    at = open_page("analyze")
    next(r for r in at.radio if r.label == "Data").set_value("Upload a CSV").run()
    for path in CORPUS[part::PARTS]:
        at.file_uploader[0].set_value((path.name, path.read_bytes(), "text/csv")).run()
        assert not at.exception, (path.name, [e.value for e in at.exception])
        if at.error:
            continue  # refused in words, like the command line
        next(b for b in at.button if b.label == "Run detection").click().run()
        assert not at.exception, (path.name, [e.value for e in at.exception])
        assert at.error or at.metric, path.name
