import numpy as np
import pandas as pd
import pytest

from detection import fit, fit_score, prepare, read_csv
from detection.errors import ColumnMappingError
from detection.stream import StreamScorer
from tests.conftest import to_csv_bytes


def history(users=("alice", "bob", "carol"), days=20):
    rows = []
    for d in range(days):
        for k, user in enumerate(users):
            rows.append({"timestamp": pd.Timestamp("2025-05-01 09:00") + pd.Timedelta(days=d, minutes=10 * k),
                         "user": user, "ip": f"10.0.{k}.5", "country": "Norway", "city": "Oslo",
                         "lat": 59.9, "lon": 10.75, "device": "Firefox", "success": "true"})
    return pd.DataFrame(rows)


def features(frame, **params):
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    model, result = fit_score(dataset, **params)
    return model.featurizer.fit_transform(dataset).X, result.frame


def add(frame, **row):
    base = {"ip": "10.0.0.5", "country": "Norway", "city": "Oslo", "lat": 59.9, "lon": 10.75,
            "device": "Firefox", "success": "true"}
    return pd.concat([frame, pd.DataFrame([{**base, **row}])], ignore_index=True)


def test_novelty_uses_only_earlier_events():
    frame = add(history(), timestamp=pd.Timestamp("2025-05-25 10:00"), user="alice",
                ip="200.1.2.3", country="Brazil", city="Rio", lat=-22.9, lon=-43.2, device="curl")
    X, scored = features(frame)
    last = X.iloc[-1]
    assert last["new_country"] == last["new_ip"] == last["new_network"] == last["new_device"] == 1
    assert (X.iloc[:-1]["new_country"] == 0).all()
    assert scored.iloc[-1]["is_anomaly"] == 1
    assert "first login from Brazil for alice (usual: Norway)" in scored.iloc[-1]["reasons"]


def test_an_address_with_its_port_is_the_address():
    """Logs that write "203.0.113.9:51234" made every login a new IP (another source
    port) and the address, with its colon, an IPv6 one of a network of its own; so did a
    dual-stack server's "::ffff:203.0.113.9"."""
    frame = history()
    frame.loc[frame.index % 2 == 0, "ip"] = [f"2001:db8::{i % 3}" for i in range(30)]
    ported = frame.assign(ip=[(f"{ip}:{40000 + i}" if i % 3 else f"::ffff:{ip}") if "." in ip
                              else f"[{ip}]:443" for i, ip in enumerate(frame["ip"])])
    X, scored = features(frame)
    X_ported, scored_ported = features(ported)
    pd.testing.assert_frame_equal(X_ported, X)
    assert scored_ported["anomaly_score"].tolist() == scored["anomaly_score"].tolist()


def test_appending_later_events_leaves_earlier_features_unchanged():
    frame = history()
    before, _ = features(frame)
    later = add(frame, timestamp=pd.Timestamp("2025-06-01 03:00"), user="bob", ip="1.2.3.4",
                country="Chile", device="curl", success="false")
    after, _ = features(later)
    pd.testing.assert_frame_equal(before, after.iloc[:-1])


def test_values_are_read_without_surrounding_spaces_and_blank_is_missing():
    """A device exported with trailing spaces is the user's usual device, and a blank
    country no country at all: neither is new."""
    frame = add(history(), timestamp=pd.Timestamp("2025-05-25 10:00"), user="alice",
                device="Firefox   ", country="   ")
    X, scored = features(frame)
    assert X.iloc[-1]["new_device"] == 0 and X.iloc[-1]["new_country"] == 0
    untouched, _ = features(history())
    pd.testing.assert_frame_equal(X.iloc[:-1], untouched)


def test_users_with_little_history_are_learning_not_novel():
    frame = add(history(users=tuple("abcdefg"), days=3), timestamp=pd.Timestamp("2025-05-04 09:00"), user="dave",
                country="Spain")
    X, scored = features(frame)
    assert X.iloc[-1]["new_country"] == 0


def test_impossible_travel_from_coordinates():
    frame = add(history(), timestamp=pd.Timestamp("2025-05-20 09:30"), user="alice",
                country="Japan", city="Tokyo", lat=35.7, lon=139.7)
    frame = frame.sort_values("timestamp", kind="stable")
    X, scored = features(frame)
    row = scored[scored["country"] == "Japan"].iloc[0]
    assert X.loc[row.name, "impossible_travel"] == 1
    assert "impossible travel" in row["reasons"]


@pytest.mark.parametrize("coordinates", [True, False], ids=["coordinates", "places"])
def test_one_excursion_is_one_impossible_journey_not_two(coordinates):
    """Alice in Oslo; a login from Tokyo 30 minutes later (impossible); Alice back in Oslo
    two hours after that: the journey back is measured from where she was before Tokyo,
    and is not flagged. A login from Rio half an hour later is impossible from Oslo too."""
    frame = history(days=20)
    for time, city, country, lat, lon in [("2025-05-20 09:30", "Tokyo", "Japan", 35.7, 139.7),
                                          ("2025-05-20 11:30", "Oslo", "Norway", 59.9, 10.75),
                                          ("2025-05-20 12:00", "Rio", "Brazil", -22.9, -43.2),
                                          ("2025-05-21 09:00", "Oslo", "Norway", 59.9, 10.75)]:
        frame = add(frame, timestamp=pd.Timestamp(time), user="alice", city=city,
                    country=country, lat=lat, lon=lon)
    frame = frame.sort_values("timestamp", kind="stable")
    if not coordinates:  # looked up by name: Tokyo, Oslo and Rio are in the city table
        frame = frame.drop(columns=["lat", "lon"])
    X, scored = features(frame)
    alice = scored.index[(scored["user"] == "alice").to_numpy()
                         & (scored["timestamp"] >= "2025-05-20 09:30").to_numpy()]
    assert X.loc[alice, "impossible_travel"].tolist() == [1, 0, 1, 0]
    assert scored.loc[alice, "is_anomaly"].tolist() == [1, 0, 1, 0]
    assert "travelled" in scored.loc[alice[1], "reasons"] or not scored.loc[alice[1], "reasons"]
    # The same events one at a time after a model of the history: the same flags.
    model = fit(prepare(read_csv(to_csv_bytes(frame[frame["timestamp"] < "2025-05-20 09:30"]))))
    scorer = StreamScorer(model)
    later = frame[frame["timestamp"] >= "2025-05-20 09:30"]
    streamed = pd.concat([scorer.score(read_csv(to_csv_bytes(later.iloc[[i]]))).frame
                          for i in range(len(later))])
    whole = model.score(prepare(read_csv(to_csv_bytes(later)))).frame
    assert streamed["anomaly_score"].tolist() == whole["anomaly_score"].tolist()
    assert whole.loc[whole["user"] == "alice", "is_anomaly"].tolist() == [1, 0, 1, 0]


def test_brute_force_and_password_spray_counts():
    frame = history()
    start = pd.Timestamp("2025-05-22 02:00")
    for i in range(12):
        frame = add(frame, timestamp=start + pd.Timedelta(seconds=30 * i), user="carol",
                    ip="66.6.6.6", success="false")
    for i, user in enumerate(["alice", "bob", "erin", "frank", "gus"]):
        frame = add(frame, timestamp=start + pd.Timedelta(hours=3, minutes=i), user=user,
                    ip="77.7.7.7", success="false")
    X, scored = features(frame, contamination=0.2)
    assert np.expm1(X["user_failures_1h"].iloc[-6]).round() == 12
    assert np.expm1(X["ip_failed_users_1h"].iloc[-1]).round() == 5
    assert "12 failed logins for carol in the last hour" in scored.iloc[-6]["reasons"]


def test_ip_addresses_are_text_and_networks_are_prefixes():
    from detection.features.login import addresses as _addresses

    _, nets = _addresses(pd.Series(["10.1.2.3", "10.1.2.200", "2001:db8:1:2::5"]))
    assert list(nets) == ["10.1.2.0/24", "10.1.2.0/24", "2001:db8:1::/48"]
    # As logs also write them: with a port, or an IPv4 address mapped into IPv6.
    ips, nets = _addresses(pd.Series(["10.1.2.3:5123", "::FFFF:10.1.2.3", "[2001:db8::1]:443"]))
    assert list(ips) == ["10.1.2.3", "10.1.2.3", "2001:db8::1"]
    assert list(nets)[:2] == ["10.1.2.0/24", "10.1.2.0/24"]


def test_model_history_makes_a_baseline_user_known():
    from sample_data import sample_path

    baseline = read_csv(sample_path("logins.csv"))
    model = fit(prepare(baseline))
    known = baseline[baseline["user"] == "user010"].iloc[-1].to_dict()
    new = pd.DataFrame([
        {**known, "timestamp": "2025-07-02 09:00:00"},  # same place and device: normal
        {**known, "timestamp": "2025-07-02 10:00:00", "country": "Peru", "city": "Lima",
         "latitude": -12.0, "longitude": -77.0, "ip_address": "190.2.3.4", "device": "curl/8"},
    ])
    result = model.score(prepare(read_csv(to_csv_bytes(new)))).frame
    assert list(result["is_anomaly"]) == [0, 1]
    assert "impossible travel" in result["reasons"].iloc[-1]
    # Known to the model's history: user010 is no newcomer, and no one used curl/8.
    assert "learning" not in result["reasons"].iloc[-1]
    assert "device curl/8: no one has logged in with it before" in result["reasons"].iloc[-1]


@pytest.mark.parametrize("value, succeeded", [
    ("true", True), ("1", True), ("success", True), ("Succeeded", True), ("yes", True),
    ("ALLOW", True), ("Login success", True),
    ("false", False), ("0", False), ("FAILURE", False), ("DENY", False),
    # Entra ID's export: a sign-in stopped at a second factor did not succeed.
    ("Interrupted", False), ("Login failure", False), ("FAILURE: INVALID_CREDENTIALS", False),
    ("unsuccessful", False), ("Blocked", False)])
def test_outcome_words(value, succeeded):
    """Identity providers write outcomes their own way (Entra ID's Interrupted, Okta's
    DENY): such files were refused ("neither success nor failure")."""
    from detection.dataset import parse_success

    assert parse_success(pd.Series([value]), "success").iloc[0] == succeeded


def test_an_outcome_that_is_neither_names_its_rows():
    from detection.dataset import parse_success

    with pytest.raises(ColumnMappingError, match=r"column 'status': 1 value\(s\) are neither "
                       r"success nor failure \(row 2\), for example 'pending'"):
        parse_success(pd.Series(["success", "pending", None], index=[1, 2, 3]), "status")


@pytest.mark.slow
def test_failure_windows_stay_per_user_with_a_million_users_over_a_year():
    """The per-user window must not overflow when users × time span exceeds int64 ns."""
    import warnings

    from detection.features.login import HOUR, _hour_ranks, _window_count

    n_users = 1_000_000
    rng = np.random.default_rng(3)
    year = np.int64(365 * 24) * HOUR
    start = np.int64(pd.Timestamp("2025-01-01").value)
    group = np.arange(n_users, dtype="int64")
    time = start + rng.integers(0, year, n_users)
    flags = rng.random(n_users) < 0.3
    # Two accounts under attack: 20 failures each within 7 minutes.
    attacked = np.repeat([400_000, 900_000], 20)
    attack_time = start + year // 2 + np.tile(np.arange(20) * 21 * 10**9, 2)
    group = np.concatenate([group, attacked])
    time = np.concatenate([time, attack_time])
    flags = np.concatenate([flags, np.ones(40, dtype=bool)])
    order = np.lexsort((time, group))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranks = _hour_ranks(time[order], np.argsort(time[order], kind="stable"))
        counts = _window_count(group[order], *ranks, flags[order])
    counts = counts[np.argsort(order)]
    lone = counts[:n_users]
    assert (lone == flags[:n_users]).all()  # alone in their hour: only themselves
    attack = counts[n_users:]
    assert list(attack[:20]) == list(range(1, 21))
    assert list(attack[20:]) == list(range(1, 21))


def test_failure_windows_count_as_a_direct_count_does_with_tied_times():
    """Each row: the group's flagged rows in (t - 1h, t] up to itself (a row at the same
    instant after it is not yet seen, as on a stream), whatever order the groups' times
    come in."""
    from detection.features.login import HOUR, _hour_ranks, _window_count

    rng = np.random.default_rng(11)
    group = rng.integers(0, 7, 600)
    time = np.int64(1_700_000_000) * 10**9 + rng.integers(0, 12, 600) * (HOUR // 4)
    flags = rng.random(600) < 0.5
    order = np.lexsort((time, group))
    group, time, flags = group[order], time[order], flags[order]
    expected = [int((flags & (group == g) & (time > t - HOUR))[:i + 1].sum())
                for i, (g, t) in enumerate(zip(group, time, strict=True))]
    ranks = _hour_ranks(time, np.argsort(time, kind="stable"))
    assert _window_count(group, *ranks, flags).tolist() == expected


def test_brute_force_is_caught_among_5000_users_over_a_year():
    rng = np.random.default_rng(5)
    users = [f"user{i:04d}" for i in range(5000)]
    n = 6 * len(users)
    who = rng.integers(0, len(users), n)
    # Each user logs in around their own hour of day, on random days of the year.
    seconds = (rng.integers(0, 365, n) * 86400 + (8 + who % 10) * 3600
               + rng.integers(0, 1800, n))
    frame = pd.DataFrame({
        "timestamp": pd.Timestamp("2025-01-01") + pd.to_timedelta(seconds, unit="s"),
        "user": np.array(users)[who],
        "ip": "10.0.0.5", "country": "Norway", "device": "Firefox", "success": "true",
    })
    attack_start = pd.Timestamp("2025-07-01 03:00")
    attack = pd.DataFrame({
        "timestamp": [attack_start + pd.Timedelta(seconds=21 * i) for i in range(40)],
        "user": ["user0042", "user4242"] * 20,
        "ip": "66.6.6.6", "country": "Norway", "device": "Firefox", "success": "false",
    })
    frame = pd.concat([frame, attack]).sort_values("timestamp", kind="stable")
    X, scored = features(frame.reset_index(drop=True))
    attacked = scored[scored["ip"] == "66.6.6.6"]
    assert int(np.expm1(X.loc[attacked.index, "user_failures_1h"]).round().max()) == 20
    assert attacked["is_anomaly"].all()
    assert attacked["reasons"].str.contains("failed logins for user0042 in the last hour").any()


def test_critical_is_rare_and_ranks_attacks_first():
    """Attacks come in bursts of near-equal rows at the top: anchored on the top row, 59%
    of the sample's flags were critical. Now the top 5% of flags are, all of them attacks."""
    from sample_data import labels_path, sample_path

    result = fit_score(prepare(read_csv(sample_path("logins.csv"))))[1].frame
    attacks = set(pd.read_csv(labels_path("logins.csv"))["row"])
    flagged = result[result["is_anomaly"] == 1]
    critical = flagged[flagged["severity"] == "critical"]
    assert 0 < len(critical) <= 0.1 * len(flagged)
    assert set(critical.index) <= attacks
    high_or_more = flagged[flagged["severity"].isin(["high", "critical"])]
    assert len(set(high_or_more.index) & attacks) / len(high_or_more) > 0.95


@pytest.mark.parametrize("dropped", [["latitude", "longitude"],
                                     ["latitude", "longitude", "country"]])
def test_impossible_travel_from_the_places_named_when_there_are_no_coordinates(dropped):
    """Without coordinates a country change in two hours was all there was: 2 of the
    sample's 5 journeys caught, none from cities alone."""
    from sample_data import labels_path, sample_path

    frame = pd.read_csv(sample_path("logins.csv")).drop(columns=dropped)
    model, result = fit_score(prepare(read_csv(to_csv_bytes(frame))))
    assert model.featurizer.coordinates_ == "places"
    labels = pd.read_csv(labels_path("logins.csv"))
    travel = labels[labels["pattern"] == "impossible_travel"]
    flagged = result.frame[result.frame["is_anomaly"] == 1]
    caught = travel.groupby("incident")["row"].apply(lambda r: bool(set(r) & set(flagged.index)))
    assert caught.sum() >= 4
    reasons = " ".join(flagged.loc[flagged.index.isin(travel["row"]), "reasons"])
    assert "km/h) between the places named" in reasons


def test_a_place_written_whole_is_its_city_and_its_country():
    """Entra ID and Okta export one Location, "Redmond, Washington, US": each was one
    country ("country Beijing, China: no one has logged in with it before") that the
    places table did not know, so no journey was measured."""
    from sample_data import labels_path, sample_path

    frame = pd.read_csv(sample_path("logins.csv"))
    frame["location"] = frame["city"] + ", " + frame["country"]
    frame = frame.drop(columns=["city", "country", "latitude", "longitude"])
    _, result = fit_score(prepare(read_csv(to_csv_bytes(frame))))
    labels = pd.read_csv(labels_path("logins.csv"))
    travel = labels[labels["pattern"] == "impossible_travel"]
    flagged = result.frame[result.frame["is_anomaly"] == 1]
    caught = travel.groupby("incident")["row"].apply(lambda r: bool(set(r) & set(flagged.index)))
    assert caught.sum() >= 4
    assert "km/h) between the places named" in " ".join(flagged["reasons"])
    assert "country China: no one has logged in with it before" in " ".join(flagged["reasons"])


def test_feedback_on_a_place_written_whole_knows_its_city_and_country():
    from detection.features.login import row_values

    user, pairs = row_values({"who": "ann", "where": "Redmond, Washington, US"},
                             {"user": "who", "country": "where"})
    assert (user, pairs) == ("ann", [("country", "US"), ("city", "Redmond")])


def test_places_are_found_by_name_code_and_without_accents():
    from detection.places import coordinates

    lat, lon = coordinates(pd.Series(["Sao Paulo", "Bergen", None, "Xyzzyville", None, ""]),
                           pd.Series([None, "NO", "Germany", "Nowhere", None, "NO"]))
    assert lat[0] == pytest.approx(-23.55, abs=0.1) and lon[0] == pytest.approx(-46.64, abs=0.1)
    assert lat[1] == pytest.approx(60.39, abs=0.1)            # Bergen, Norway (not elsewhere)
    assert lat[2] == pytest.approx(52.52, abs=0.1)            # Germany: at its capital
    assert np.isnan(lat[3]) and np.isnan(lat[4])              # unknown stays unknown
    assert lat[5] == pytest.approx(59.91, abs=0.1)            # no city: Norway's capital


def test_identical_failed_logins_within_one_second_are_each_an_attempt():
    """An attacker's attempts, many a second, are identical rows where times are written
    to the second: each counts. (Folding rows that repeat an earlier one exactly, as a
    sensor's are, would hide the burst: measured and left out.)"""
    rows = [{"timestamp": f"2025-02-{day:02d} 08:00:00", "user": "alice", "ip": "10.0.0.1",
             "success": True} for day in range(1, 29)]
    burst = [{"timestamp": "2025-03-01 09:00:00", "user": "alice", "ip": "66.6.6.6",
              "success": False}] * 12
    frame = pd.DataFrame(rows + burst)
    features = fit_score(prepare(frame))[1].features
    assert np.expm1(features["user_failures_1h"].max()).round() == 12
