"""The hostile and broken CSVs of tests/hostile (tests/hostile/make.py writes them): every
one is refused with exit 2 and one `error:` line, or scored (warnings allowed), in the
command line and on the Analyze page; never a traceback."""

from pathlib import Path

import pytest

from app.cli import main as cli
from tests.hostile.make import FILES

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"
CORPUS = sorted(HOSTILE.glob("*.csv"))


def test_the_corpus_is_complete():
    assert len(CORPUS) >= 30
    assert {p.name for p in CORPUS} == set(FILES)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_the_command_line_refuses_in_one_line_or_scores(path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'v.db'}")
    out = tmp_path / "out.csv"
    code = cli.main(["score", str(path), "--out", str(out)])  # an exception fails the test
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    else:
        assert code == 0, err
        assert out.stat().st_size > 0
        assert "rows scored" in err
