"""A login row reviewed as a false positive: its places and device become known."""

import io

import pandas as pd
import pytest
from sqlalchemy import text

from app import services
from app.settings import Settings
from app.vigil import Actor, Vigil
from detection import read_csv
from sample_data import sample_path
from tests.conftest import to_csv_bytes


@pytest.fixture
def vigil(database_url, tmp_path) -> Vigil:
    return Vigil(Settings(database_url=database_url, journal_dir=tmp_path / "j",
                          alert_outbox_dir=tmp_path / "outbox"))


@pytest.fixture
def trained(vigil):
    """A login model of the sample, and a user010 login from Peru on a new device."""
    baseline = read_csv(sample_path("logins.csv"))
    meta = services.train(vigil, services.read_dataset(to_csv_bytes(baseline)))
    usual = baseline[baseline["user"] == "user010"].iloc[-1].to_dict()
    trip = {**usual, "country": "Peru", "city": "Lima", "latitude": -12.0,
            "longitude": -77.0, "ip_address": "190.2.3.4", "device": "curl/8"}
    return meta["version"], usual, trip


def score(vigil, version, rows):
    data = to_csv_bytes(pd.DataFrame(rows))
    return services.analyze(vigil, services.read_dataset(data), model_version=version)


def flagged_ids(vigil, version, rows, name):
    result = score(vigil, version, rows)
    run_id = services.save(vigil, result, source_name=name,
                           file_sha256=name.encode().hex().ljust(64, "0")[:64]).run_id
    return result, services.query_anomalies(
        vigil, services.AnomalyFilter(run_ids=[run_id]), limit=None)


def test_a_false_positive_login_makes_its_places_and_device_known_for_later_runs(
        vigil, trained):
    version, usual, trip = trained
    first, found = flagged_ids(vigil, version, [
        {**trip, "timestamp": "2025-07-02 10:00:00"}], "trip.csv")
    assert first.frame["is_anomaly"].tolist() == [1]
    assert "no one has logged in with it before" in first.frame["reasons"].iloc[0]

    ana = vigil.acting_as(Actor("ana", "analyst"))
    services.review(ana, found["id"].tolist(), "false_positive", note="conference in Lima")
    known = services.list_known(vigil)
    assert set(zip(known["key"], known["value"], strict=True)) == {
        ("country", "Peru"), ("city", "Lima"), ("ip", "190.2.3.4"),
        ("network", "190.2.3.0/24"), ("device", "curl/8")}
    assert set(known["user_name"]) == {"user010"} and set(known["added_by"]) == {"ana"}
    assert set(known["anomaly_id"]) == set(found["id"])

    # The same trip a week later is known; another user from Peru is new to Peru, but
    # Peru is no longer a country no one has logged in from.
    later = score(vigil, version, [
        {**trip, "timestamp": "2025-07-09 10:00:00"},
        {**trip, "timestamp": "2025-07-09 10:00:00", "user": "user011"}])
    features = later.features
    assert features.loc[1, ["new_country", "new_city", "new_ip", "new_device"]].sum() == 0
    assert later.frame.loc[1, "reasons"] == ""
    assert features.loc[2, "new_country"] == 1 and features.loc[2, "unseen_country"] == 0

    # Reviewing it again adds nothing twice.
    services.review(ana, found["id"].tolist(), "false_positive")
    assert len(services.list_known(vigil)) == 5


def test_confirmed_rows_and_sensor_rows_teach_nothing(vigil, trained):
    version, _, trip = trained
    _, found = flagged_ids(vigil, version, [{**trip, "timestamp": "2025-07-02 10:00:00"}],
                           "trip.csv")
    services.review(vigil, found["id"].tolist(), "confirmed")
    sensor = services.analyze(vigil, services.read_dataset(sample_path("elevators.csv")))
    run_id = services.save(vigil, sensor, source_name="elevators.csv",
                           file_sha256="e" * 64).run_id
    ids = services.query_anomalies(vigil, services.AnomalyFilter(run_ids=[run_id]),
                                   limit=5)["id"].tolist()
    services.review(vigil, ids, "false_positive")
    assert services.list_known(vigil).empty


def test_an_incident_of_a_run_stored_before_mappings_were_kept_teaches_too(vigil, trained):
    """Runs stored before detection_runs.mapping existed are mapped by the column
    synonyms, with the user column the run kept."""
    version, _, trip = trained
    _, found = flagged_ids(vigil, version, [{**trip, "timestamp": "2025-07-02 10:00:00"}],
                           "trip.csv")
    with vigil.engine.begin() as conn:
        conn.execute(text("UPDATE detection_runs SET mapping = NULL"))
    services.review_incidents(vigil, found["incident_id"].dropna().astype(int).tolist(),
                              "false_positive")
    known = services.list_known(vigil)
    assert ("device", "curl/8") in set(zip(known["key"], known["value"], strict=True))


@pytest.mark.slow
def test_vigil_score_counts_the_known_values_too(tmp_path):
    """`vigil score` reads the same known values as the dashboard."""
    from tests.app.cli import vigil as run_cli

    local = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}",
                           journal_dir=tmp_path / "j", alert_outbox_dir=tmp_path / "outbox"))
    baseline = read_csv(sample_path("logins.csv"))
    version = services.train(local, services.read_dataset(to_csv_bytes(baseline)))["version"]
    usual = baseline[baseline["user"] == "user010"].iloc[-1].to_dict()
    trip = {**usual, "country": "Peru", "city": "Lima", "latitude": -12.0,
            "longitude": -77.0, "ip_address": "190.2.3.4", "device": "curl/8"}
    _, found = flagged_ids(local, version, [{**trip, "timestamp": "2025-07-02 10:00:00"}],
                           "trip.csv")
    later = tmp_path / "later.csv"
    later.write_bytes(to_csv_bytes(pd.DataFrame([{**trip, "timestamp": "2025-07-09 10:00:00"}])))
    before = run_cli("score", later, "--model", version, tmp_path=tmp_path)
    assert before.returncode == 0, before.stderr
    assert pd.read_csv(io.StringIO(before.stdout))["is_anomaly"].tolist() == [1]
    services.review(local, found["id"].tolist(), "false_positive")
    after = run_cli("score", later, "--model", version, tmp_path=tmp_path)
    assert pd.read_csv(io.StringIO(after.stdout))["is_anomaly"].tolist() == [0]


def test_a_live_stream_reads_the_known_values_with_each_batch(vigil, trained):
    version, _, trip = trained

    def batch(day):
        return to_csv_bytes(pd.DataFrame([{**trip, "timestamp": f"2025-07-{day} 10:00:00"}]))

    first = services.ingest(vigil, "vpn.log", batch("02"), model_version=version)
    assert first.result.frame["is_anomaly"].tolist() == [1]
    ids = services.query_anomalies(vigil, services.AnomalyFilter(run_ids=[first.run_id]),
                                   limit=None)["id"].tolist()
    services.review(vigil, ids, "false_positive")
    # Another stream starts from the model's history: only the review makes Peru known.
    later = services.ingest(vigil, "vpn-2.log", batch("09"), model_version=version)
    assert later.result.frame["is_anomaly"].tolist() == [0]
