"""Numbers beside the login columns, values no one has used, decisive evidence."""

import numpy as np
import pandas as pd
import pytest

from detection import fit, fit_score, prepare, read_csv
from detection.envelope import Envelope
from detection.errors import ModelMismatchError
from detection.stream import StreamScorer
from sample_data.generate import START, login_numbers
from tests.conftest import to_csv_bytes
from tests.detection.test_login_features import add, history

SCORES = ["anomaly_score", "is_anomaly", "severity", "reasons"]


@pytest.fixture(scope="module")
def month_after_month():
    """A month of normal history with latency, response time and bytes, then a month
    with 20 injected logins; as read from CSV, with their labels."""
    frame, labels = login_numbers(np.random.default_rng(1))
    frame = read_csv(to_csv_bytes(frame))
    later = (pd.to_datetime(frame["timestamp"]) >= START + pd.Timedelta(days=30)).to_numpy()
    labels = pd.DataFrame(labels, columns=["row", "pattern", "incident"]).set_index("row")
    return frame[~later], frame[later], labels


@pytest.fixture(scope="module")
def trained(month_after_month):
    history_, later, labels = month_after_month
    model = fit(prepare(history_))
    return model, model.score(prepare(later)).frame, labels


def test_numbers_become_features_of_everyone_and_of_the_user(trained):
    model, _, _ = trained
    names = model.featurizer.feature_names_
    for column in ("latency_ms", "response_ms", "bytes"):
        assert column in names and f"{column}_user" in names


def test_a_trained_model_catches_slow_links_big_downloads_and_unseen_countries(trained):
    _, result, labels = trained
    flagged = result["is_anomaly"] == 1
    caught = flagged.loc[labels.index].groupby(labels["pattern"]).mean()
    assert caught.min() >= 0.8, caught.to_dict()
    precision = flagged.loc[labels.index].sum() / flagged.sum()
    assert precision >= 0.7
    # Critical ranks: every critical row is an injected one.
    assert set(result.index[result["severity"] == "critical"]) <= set(labels.index)


def test_reasons_quote_the_users_usual_range(trained):
    model, result, labels = trained
    slow = labels.index[labels["pattern"] == "slow_link"]
    reasons = result.loc[slow, "reasons"]
    user = result.loc[slow[0], "user"]
    usual = model.featurizer.number_users_["latency_ms"].loc[user]
    assert reasons.str.contains(r"latency_ms [\d.,]+, usual [\d.,]+-[\d.,]+ for user\d+").all()
    assert f"for {user}" in reasons.iloc[0]
    assert usual["low"] < usual["high"] < result.loc[slow[0], "latency_ms"]
    unseen = labels.index[labels["pattern"] == "unseen_country"]
    assert result.loc[unseen, "reasons"].str.contains(
        "no one has logged in with it before").all()


def test_a_model_with_numbers_names_the_column_a_file_lacks(month_after_month):
    history_, later, _ = month_after_month
    model = fit(prepare(history_))
    with pytest.raises(ModelMismatchError, match="lacks 'bytes'"):
        model.score(prepare(later.drop(columns=["bytes"])))


def test_identifiers_are_not_measurements():
    """Entra ID exports a sign-in's error code (0, or 50126 for a wrong password) and its
    ASN as numbers: as measurements every failure read "error code 50,126, usual 0-0"
    and ASNs were compared by size."""
    failed = np.arange(60) % 9 == 0
    frame = history().assign(**{
        "session_id": np.arange(60), "requestId": np.arange(60) * 7, "port": 443,
        "Sign-in error code": np.where(failed, 50126, 0), "errorCode": np.where(failed, 7, 0),
        "Autonomous system  number": 2119, "latency": np.linspace(10, 20, 60)})
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    assert list(dataset.metrics.columns) == ["latency"]
    assert dataset.mapping.asn == "Autonomous system  number"
    assert any("'session_id', 'requestId', 'port', 'Sign-in error code', 'errorCode'" in w
               and "identifiers" in w for w in dataset.warnings)


def test_a_value_no_one_has_used_counts_once_the_file_has_enough_logins():
    frame = history(users=[f"u{i}" for i in range(8)], days=20)  # 160 logins in Norway
    early = add(frame.iloc[:50], timestamp=pd.Timestamp("2025-05-07 12:00"), user="u1",
                country="Chile", city="Santiago", lat=-33.4, lon=-70.7, ip="200.27.1.2")
    frame = pd.concat([early, frame.iloc[50:]], ignore_index=True)
    for user, hour in (("u2", 12), ("u3", 13)):
        frame = add(frame, timestamp=pd.Timestamp(f"2025-05-20 {hour}:00"), user=user,
                    country="Iceland", city="Reykjavik", lat=64.1, lon=-21.9, ip="157.157.1.2")
    _, result = fit_score(prepare(read_csv(to_csv_bytes(frame))))
    unseen = result.features["unseen_country"]
    assert unseen.iloc[-2] == 1       # u2: the first in Iceland after 160 logins
    assert unseen.iloc[-1] == 0       # u3: u2 was there before
    assert unseen.iloc[50] == 0       # Chile after 50 logins: too early to say
    assert unseen.sum() == 1


def test_an_asn_column_is_a_place_users_and_everyone_know():
    frame = history(users=[f"u{i}" for i in range(8)], days=20).assign(asn="AS2119")
    model = fit(prepare(read_csv(to_csv_bytes(frame))))
    assert {"new_asn", "unseen_asn"} <= set(model.featurizer.feature_names_)
    new = add(frame.iloc[[-1]], timestamp=pd.Timestamp("2025-06-01 10:00"), user="u3",
              asn="AS4134")
    scored = model.score(prepare(read_csv(to_csv_bytes(new)))).features
    assert scored[["new_asn", "unseen_asn"]].iloc[-1].tolist() == [1, 1]


def test_a_decisive_feature_above_the_baselines_largest_value_is_flagged():
    baseline = np.zeros((1000, 2), dtype="float32")
    rows = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
    envelope = Envelope().fit(baseline, decisive=[True, False])
    scores = envelope.score(rows)
    assert scores[0] >= 85  # "high"
    assert scores[1] < 50   # an indicator the baseline lacked, left to the forest
    # Where the baseline had it, it decides nothing.
    baseline[3, 0] = 1.0
    assert Envelope().fit(baseline, decisive=[True, False]).score(rows)[0] < 50


def test_in_a_file_scored_on_its_own_a_decisive_value_few_rows_have_is_flagged():
    """The file is its own baseline, anomalies and all: its largest value says nothing,
    so a value only its rarest 0.5% of rows reach decides, and a common one does not."""
    baseline = np.zeros((1000, 1), dtype="float32")
    baseline[:3, 0] = 1.0                                   # 0.3% of the file
    assert Envelope().fit(baseline, [True], normal=False).score(baseline[:3]).min() >= 85
    assert Envelope().fit(baseline, [True]).score(baseline[:3]).max() < 50   # trained
    baseline[:50, 0] = 1.0                                  # 5%: everyday in this file
    assert Envelope().fit(baseline, [True], normal=False).score(baseline[:3]).max() < 50


def test_a_month_scored_on_its_own_catches_countries_no_one_uses(month_after_month):
    """The in-file blind spot: IsolationForest's 256-row samples rarely hold one of six
    rare rows, so it never split on them (0 of 6 were caught)."""
    _, later, labels = month_after_month
    result = fit_score(prepare(later))[1].frame
    unseen = labels.index[labels["pattern"] == "unseen_country"]
    caught = result.loc[result.index.isin(unseen)]
    assert len(caught) == 6 and (caught["is_anomaly"] == 1).all()
    assert caught["reasons"].str.contains("no one has logged in with it before").all()


def test_login_pieces_with_numbers_and_asn_score_as_one_pass(month_after_month):
    """Everyone's known values ride along in a stream's state: a country no one used
    before comes out as in one pass, however the file is cut."""
    history_, later, _ = month_after_month
    history_ = history_.assign(asn="AS" + history_["country"].str.len().astype(str))
    later = later.assign(asn="AS" + later["country"].str.len().astype(str)).iloc[:3000]
    model = fit(prepare(history_))
    whole = model.score(prepare(later))
    scorer = StreamScorer(model)
    parts = [scorer.score(later.iloc[i:i + 250]) for i in range(0, len(later), 250)]
    pd.testing.assert_frame_equal(pd.concat([p.frame for p in parts])[SCORES],
                                  whole.frame[SCORES])
    pd.testing.assert_frame_equal(pd.concat([p.features for p in parts]), whole.features)
    assert whole.features["unseen_country"].sum() >= 1


def test_a_scored_login_file_uploaded_again_gets_the_same_scores(month_after_month):
    """The score columns of a file scored before are no login numbers (they moved 39
    flags of the logins sample when they were)."""
    later = month_after_month[1]
    first = fit_score(prepare(later))[1].frame
    again = fit_score(prepare(read_csv(to_csv_bytes(first))))[1].frame
    for column in SCORES:
        assert again[column].tolist() == first[column].tolist()


SPELLINGS = {"upper case": str.upper, "with the domain": lambda u: f"{u}@corp.example",
             "after the domain": lambda u: f"CORP\\{u}"}


@pytest.mark.parametrize("spelled", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_user_names_written_otherwise_than_in_the_baseline_are_its_users(
        trained, month_after_month, spelled):
    """A later export that writes the names otherwise (sAMAccountName then UPN, another
    case) is judged against each user's history. Compared as written, every user was new
    to the model, so novelty counted for nothing: 7 of the 20 injected logins were
    caught instead of 19, without a word."""
    model, result, _ = trained
    later = month_after_month[1]
    renamed = later.assign(user=later["user"].map(spelled))
    scored = model.score(prepare(renamed))
    for column in SCORES:  # reasons name the users as the baseline does
        assert scored.frame[column].tolist() == result[column].tolist(), column
    told = [w for w in scored.warnings if "written otherwise" in w]
    assert len(told) == 1 and f"'{spelled('user000')}' as 'user000'" in told[0]
    scorer = StreamScorer(model)
    pieces = pd.concat([scorer.score(renamed.iloc[i:i + 400]).frame
                        for i in range(0, 2000, 400)])
    pd.testing.assert_frame_equal(pieces[SCORES], result.iloc[:2000][SCORES])


def test_a_name_two_baseline_users_share_but_for_case_is_neither():
    """Where the baseline holds jdoe and JDoe (a system where case tells accounts
    apart), JDOE is neither of them: a new user."""
    model = fit(prepare(read_csv(to_csv_bytes(history(users=("jdoe", "JDoe", "bob"))))))
    later = add(add(history(users=("bob",), days=1), timestamp="2025-06-01 09:00",
                    user="JDOE"), timestamp="2025-06-01 09:05", user="Bob")
    scored = model.score(prepare(read_csv(to_csv_bytes(later))))
    told = " ".join(scored.warnings)
    assert "'Bob' as 'bob'" in told and "JDOE" not in told


def test_a_file_of_users_the_baseline_never_saw_is_told_so(trained, month_after_month):
    model, _, _ = trained
    later = month_after_month[1]
    assert not [w for w in model.score(prepare(later)).warnings if "never saw" in w]
    strangers = model.score(prepare(later.assign(user="ext-" + later["user"])))
    told = [w for w in strangers.warnings if "never saw" in w]
    assert len(told) == 1 and told[0].startswith(f"{len(later):,} of {len(later):,} logins")
    assert "train a model on its history" in told[0]


def test_a_value_marked_known_under_a_name_written_otherwise_is_that_users():
    """Feedback given on a file that wrote the name otherwise (JDOE) still counts for
    the user (jdoe) in files that write it either way."""
    model = fit(prepare(read_csv(to_csv_bytes(history(users=("jdoe", "bob"))))))
    later = read_csv(to_csv_bytes(add(history(users=("bob",), days=1),
                                      timestamp="2025-06-01 09:00", user="jdoe",
                                      device="Safari")))
    dataset = prepare(later)
    assert model.featurizer.transform(dataset).X["new_device"].iloc[-1] == 1
    dataset.known = pd.DataFrame({"user": ["JDOE"], "key": ["device"], "value": ["Safari"]})
    assert model.featurizer.transform(dataset).X["new_device"].iloc[-1] == 0


ISO = {"Norway": "NO", "Germany": "DEU", "France": "FR", "United Kingdom": "GB",
       "Spain": "ESP", "Poland": "PL", "Sweden": "SE", "Iceland": "IS", "Portugal": "PT",
       "Chile": "CL", "Japan": "JP", "Kenya": "KE", "Canada": "CA"}


def test_a_country_written_as_its_code_is_that_country(trained, month_after_month):
    """A later export writing ISO codes (DE or DEU for Germany) judges the same logins:
    compared as written, the first login from each home country was "no one has logged
    in with it before" (7 false high flags: "first login from DE for user118 (usual:
    Germany)")."""
    model, result, _ = trained
    later = month_after_month[1]
    coded = model.score(prepare(later.assign(country=later["country"].map(ISO)))).frame
    for column in ("anomaly_score", "is_anomaly", "severity"):
        assert coded[column].tolist() == result[column].tolist(), column
