"""Datasets: a folder or glob of CSV and Parquet files read as one table, and Parquet read
with its own types, by `vigil score`/`vigil train`, uploads and the API alike."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from app import scoring, services
from app.cli.main import main
from app.scoring import DatasetError
from app.settings import Settings
from app.vigil import Vigil
from detection.errors import MalformedCsvError
from sample_data import sample_path

ELEVATORS = sample_path("elevators.csv")


@pytest.fixture(scope="module")
def elevators() -> pd.DataFrame:
    return pd.read_csv(ELEVATORS)


def split_into(folder, frame: pd.DataFrame) -> None:
    """Three files, the middle one Parquet with real times, and a stray non-data file."""
    folder.mkdir()
    third = len(frame) // 3
    frame.iloc[:third].to_csv(folder / "2025-06-a.csv", index=False)
    typed = frame.iloc[third:2 * third].assign(timestamp=lambda f: pd.to_datetime(f["timestamp"]))
    typed.to_parquet(folder / "2025-06-b.parquet", index=False)
    frame.iloc[2 * third:].to_csv(folder / "2025-06-c.csv", index=False)
    (folder / "notes.md").write_text("not data")


def test_a_folder_or_glob_is_its_data_files_in_name_order(tmp_path, elevators):
    split_into(tmp_path / "june", elevators)
    names = [p.name for p in scoring.dataset_files(tmp_path / "june")]
    assert names == ["2025-06-a.csv", "2025-06-b.parquet", "2025-06-c.csv"]
    assert [p.name for p in scoring.dataset_files(str(tmp_path / "june" / "*.csv"))] == [
        "2025-06-a.csv", "2025-06-c.csv"]
    with pytest.raises(DatasetError, match="no file matches"):
        scoring.dataset_files(str(tmp_path / "june" / "*.json"))
    with pytest.raises(DatasetError, match="no such file or folder"):
        scoring.dataset_files(tmp_path / "july")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no CSV or Parquet files in this folder"):
        scoring.dataset_files(tmp_path / "empty")


def test_a_dataset_reads_as_its_files_joined_with_rows_numbered_on(tmp_path, elevators):
    split_into(tmp_path / "june", elevators)
    files = scoring.dataset_files(tmp_path / "june")
    frame = scoring.read_files(files)
    assert frame.index.tolist() == list(range(1, len(elevators) + 1))
    one = scoring.read_dataset(ELEVATORS)
    joined = scoring.read_dataset(files)
    assert joined.profile == "sensor" and joined.mapping == one.mapping
    assert (joined.time.to_numpy() == one.time.to_numpy()).all()
    pd.testing.assert_frame_equal(joined.metrics, one.metrics)


def test_files_with_other_columns_are_refused_naming_the_file(tmp_path, elevators):
    (tmp_path / "d").mkdir()
    elevators.iloc[:100].to_csv(tmp_path / "d" / "a.csv", index=False)
    elevators.iloc[100:200].drop(columns=["humidity"]).to_csv(tmp_path / "d" / "b.csv",
                                                              index=False)
    with pytest.raises(DatasetError, match=r"b\.csv: its columns .* differ from a\.csv's"):
        scoring.read_files(scoring.dataset_files(tmp_path / "d"))


def test_a_damaged_parquet_file_is_a_clear_message(tmp_path, elevators):
    data = io.BytesIO()
    elevators.to_parquet(data, index=False)
    broken = data.getvalue()[:200] + b"PAR1"
    with pytest.raises(MalformedCsvError, match="the Parquet file cannot be read"):
        scoring.read_dataset(broken)


def test_vigil_score_of_a_folder_scores_it_as_one_file(tmp_path, elevators, capsys):
    split_into(tmp_path / "june", elevators)
    assert main(["score", str(tmp_path / "june"), "--out", str(tmp_path / "folder.csv")]) == 0
    assert main(["score", str(ELEVATORS), "--out", str(tmp_path / "file.csv")]) == 0
    folder, whole = pd.read_csv(tmp_path / "folder.csv"), pd.read_csv(tmp_path / "file.csv")
    assert len(folder) == len(elevators)
    assert (folder["anomaly_score"] == whole["anomaly_score"]).all()
    assert "8064 rows scored (sensor)" in capsys.readouterr().err


def test_engine_dask_wants_somewhere_to_put_its_rows(tmp_path, capsys):
    assert main(["score", str(ELEVATORS), "--engine", "dask"]) == 2
    assert "--engine dask writes its rows to --out DIR" in capsys.readouterr().err


def test_a_parquet_upload_scores_as_its_csv(tmp_path, elevators):
    vigil = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}",
                           journal_dir=tmp_path / "j", alert_outbox_dir=tmp_path / "o"))
    data = io.BytesIO()
    elevators.to_parquet(data, index=False)
    parquet = data.getvalue()
    assert scoring.estimated_rows(parquet) == len(elevators)
    as_parquet = services.analyze_upload(vigil, parquet, source_name="june.parquet",
                                         file_sha256=scoring.file_sha256(parquet))
    csv = ELEVATORS.read_bytes()
    as_csv = services.analyze_upload(vigil, csv, source_name="june.csv",
                                     file_sha256=scoring.file_sha256(csv))
    assert as_parquet.run.total_rows == as_csv.run.total_rows == len(elevators)
    assert as_parquet.run.anomalies["row_number"].tolist() == \
        as_csv.run.anomalies["row_number"].tolist()


@pytest.mark.parametrize("text, rows", [
    (b"a,b\n1,2\n3,4\n", 2), (b"a,b\n1,2\n3,4", 2), (b"a,b\n", 0), (b"a,b", 0), (b"", 0)])
def test_a_files_rows_are_counted_from_its_path_as_from_its_bytes(tmp_path, monkeypatch,
                                                                  text, rows):
    """How big a file is decides whether it is read whole: counted from a path chunk by
    chunk (here 3 bytes at a time, so lines and the last byte fall across chunks) as
    from an upload's bytes, and a Parquet file by its footer either way."""
    monkeypatch.setattr(scoring, "COUNT_BYTES", 3)
    path = tmp_path / "f.csv"
    path.write_bytes(text)
    assert scoring.estimated_rows(path) == scoring.estimated_rows(text) == rows
    frame = pd.DataFrame({"a": range(rows + 5)})
    frame.to_parquet(tmp_path / "f.parquet", index=False)
    parquet = tmp_path / "f.parquet"
    assert scoring.estimated_rows(parquet) == scoring.estimated_rows(parquet.read_bytes()) \
        == rows + 5
