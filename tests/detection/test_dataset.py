import numpy as np
import pandas as pd
import pytest

from detection import fit, fit_score, map_columns, prepare, read_csv
from detection.errors import (
    ColumnMappingError,
    NoNumericColumnError,
    ParameterError,
    TimestampError,
)
from tests.conftest import sensor_frame, to_csv_bytes


@pytest.mark.parametrize(
    ("columns", "role", "expected"),
    [
        (["Login Timestamp", "User ID", "IP Address"], "timestamp", "Login Timestamp"),
        (["Login Timestamp", "User ID", "IP Address"], "user", "User ID"),
        (["Login Timestamp", "User ID", "IP Address"], "ip", "IP Address"),
        (["time", "username", "src_ip"], "ip", "src_ip"),
        (["event_time", "account", "Country", "City"], "city", "City"),
        (["date", "User Agent String"], "device", "User Agent String"),
        (["ts", "Login Successful"], "success", "Login Successful"),
        (["timestamp", "elevator_id", "vibration"], "entity", "elevator_id"),
        (["timestamp", "lat", "lon"], "latitude", "lat"),
        (["time", "Email", "IP"], "user", "Email"),
        (["time", "actor", "ip"], "user", "actor"),
        (["time", "UserPrincipalName", "ip"], "user", "UserPrincipalName"),
        (["entity_id", "state", "last_changed"], "entity", "entity_id"),  # Home Assistant
    ],
)
def test_columns_are_mapped_by_synonyms(columns, role, expected):
    assert getattr(map_columns(columns), role) == expected


OKTA = ["uuid", "published", "eventType", "actor.id", "actor.alternateId",
        "actor.displayName", "client.userAgent.rawUserAgent", "client.device",
        "client.ipAddress", "client.geographicalContext.city",
        "client.geographicalContext.country", "client.geographicalContext.geolocation.lat",
        "client.geographicalContext.geolocation.lon", "outcome.result", "outcome.reason"]


def test_a_flattened_exports_columns_are_mapped_by_the_last_part_of_their_path():
    """Okta's System Log export: it had no column Vigil knew, and was scored as a sensor
    file of latitude and longitude."""
    mapping = map_columns(OKTA)
    assert (mapping.user, mapping.ip, mapping.device, mapping.success) == (
        "actor.alternateId", "client.ipAddress", "client.userAgent.rawUserAgent",
        "outcome.result")
    assert (mapping.city, mapping.country, mapping.latitude, mapping.longitude) == (
        "client.geographicalContext.city", "client.geographicalContext.country",
        "client.geographicalContext.geolocation.lat",
        "client.geographicalContext.geolocation.lon")
    # CloudTrail's console sign-ins and Auth0's logs, flattened.
    trail = map_columns(["eventTime", "userIdentity.type", "userIdentity.userName",
                         "sourceIPAddress", "userAgent", "responseElements.ConsoleLogin"])
    assert (trail.timestamp, trail.user, trail.ip, trail.device, trail.success) == (
        "eventTime", "userIdentity.userName", "sourceIPAddress", "userAgent",
        "responseElements.ConsoleLogin")
    auth0 = map_columns(["date", "type", "user_name", "ip", "location_info.country_code",
                         "location_info.city_name"])
    assert (auth0.user, auth0.country, auth0.city) == (
        "user_name", "location_info.country_code", "location_info.city_name")
    # A unit or note in brackets is no part of a name (Entra ID's export).
    entra = map_columns(["Date (UTC)", "User", "IP address", "IP address (seen by resource)",
                         "Latency [ms]"])
    assert (entra.timestamp, entra.ip) == ("Date (UTC)", "IP address")
    # A whole name that matches wins over a path's last part.
    assert map_columns(["actor.country", "country"]).country == "country"
    row = "2025-01-01T10:00:00.000Z,u1,a@x.io,1.2.3.4,Oslo,Norway,SUCCESS"
    dataset = prepare(read_csv(
        ("published,actor.id,actor.alternateId,client.ipAddress,client.geographicalContext.city,"
         f"client.geographicalContext.country,outcome.result\n{row}\n").encode()))
    assert dataset.profile == "login"


def test_caller_overrides_the_mapping():
    mapping = map_columns(["when", "who", "addr"], {"timestamp": "when", "user": "who", "ip": "addr"})
    assert (mapping.timestamp, mapping.user, mapping.ip) == ("when", "who", "addr")
    with pytest.raises(ColumnMappingError, match="column 'nope' given for user is not in the file"):
        map_columns(["a"], {"user": "nope"})


@pytest.mark.parametrize(
    ("header", "row", "profile"),
    [
        ("timestamp,user,ip_address", "2025-01-01 10:00,alice,10.0.0.1", "login"),
        ("time,username,country", "2025-01-01 10:00,alice,Norway", "login"),
        ("timestamp,value", "2025-01-01 10:00,3.5", "sensor"),
        ("timestamp,elevator_id,vibration,humidity", "2025-01-01 10:00,E1,3.5,40", "sensor"),
        ("a,b", "1.0,2.0", "generic"),
    ],
)
def test_profile_is_detected(header, row, profile):
    rows = "\n".join(row.replace("3.5", str(3.5 + i)).replace("1.0", str(i)) for i in range(5))
    assert prepare(read_csv(f"{header}\n{rows}\n".encode())).profile == profile


def test_forced_profile_checks_its_columns():
    frame = read_csv(b"timestamp,value\n2025-01-01,1\n2025-01-02,2\n")
    with pytest.raises(ColumnMappingError, match="login profile needs a user"):
        prepare(frame, profile="login")
    with pytest.raises(ParameterError, match="profile must be one of"):
        prepare(frame, profile="weird")


def test_bad_timestamps_name_column_and_rows():
    data = b"timestamp,value\n2025-01-01,1\nnot a date,2\n2025-01-03,3\nyesterday,4\n"
    with pytest.raises(TimestampError, match=r"column 'timestamp': 2 value\(s\) are not dates \(rows 2, 4\)"):
        prepare(read_csv(data))


def test_no_numeric_column_is_an_error():
    with pytest.raises(NoNumericColumnError, match="no usable numeric column"):
        prepare(read_csv(b"name,colour\na,red\nb,blue\n"))


def test_a_file_of_constant_columns_cannot_be_fitted_on():
    dataset = prepare(read_csv(b"timestamp,value\n2025-01-01,1\n2025-01-02,1\n"))
    with pytest.raises(NoNumericColumnError, match="every numeric column is constant"):
        fit(dataset)


@pytest.mark.parametrize("stuck", [["vibration"], ["temperature", "vibration"]])
def test_a_model_scores_a_file_whose_sensor_is_stuck_throughout(stuck):
    """Constant columns say nothing when fitting, but a model that saw them vary flags
    them (was: "this file lacks 'vibration'", or "nothing to score")."""
    model = fit(prepare(read_csv(to_csv_bytes(sensor_frame(2000)))))
    frame = sensor_frame(300, seed=3)
    frame[stuck] = 30.0 if len(stuck) == 1 else [45.0, 30.0]  # far from their usual levels
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    result = model.score(dataset)
    assert result.frame["is_anomaly"].sum() > 200
    flagged = result.frame[result.frame["is_anomaly"] == 1]
    assert flagged["reasons"].str.contains(r"vibration (?:median )?30\.0").all()
    assert any("the same value throughout, scored against the model's baseline" in w
               for w in result.warnings)
    assert not any("ignored" in w for w in result.warnings)


def test_tolerated_problems_become_warnings():
    frame = sensor_frame(50)
    frame["constant"] = 7
    frame["note"] = "kept"
    frame.loc[[3, 9], "temperature"] = np.nan
    frame = frame.iloc[::-1]  # unsorted
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    text = " | ".join(dataset.warnings)
    assert "not in time order" in text
    assert "'constant'" in text and "ignored" in text
    assert "'temperature': 2 missing value(s) filled" in text
    assert list(dataset.metrics.columns) == ["temperature", "vibration"]
    assert not dataset.metrics.isna().any().any()
    assert "note" in dataset.frame.columns


def test_a_reading_missing_before_an_entitys_first_is_its_own_usual():
    """Home Assistant's history writes "unavailable": a room's first temperature was filled
    with the median of every sensor in the file (32.9, between 21 degrees and 45% humidity)
    and was the file's top anomaly."""
    rows = [(f"2025-01-01 00:{i // 2:02d}:00", sensor, base + i % 3)
            for i, (sensor, base) in enumerate([("room", 21), ("kitchen", 45)] * 30)]
    frame = pd.DataFrame(rows, columns=["timestamp", "entity_id", "state"]).astype(
        {"state": "object"})
    frame.loc[0, "state"] = "unavailable"
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    room = dataset.metrics["state"][dataset.entity == "room"]
    assert room.iloc[0] == room.iloc[1:].median()


def test_mostly_numeric_text_column_counts_non_numbers_as_missing():
    rows = "\n".join(f"2025-01-01 {h:02d}:00,{h}.5" for h in range(20))
    data = f"timestamp,value\n{rows}\n2025-01-02 00:00,oops\n".encode()
    dataset = prepare(read_csv(data))
    assert "1 non-numeric value(s) treated as missing (row 21)" in dataset.warnings[0]


@pytest.mark.parametrize("scale", [1, 1000, 10**6, 10**9], ids=["s", "ms", "us", "ns"])
def test_epoch_times_are_timestamps(scale):
    """Microseconds and InfluxDB's nanoseconds were read as milliseconds: a traceback
    ("Out of bounds nanosecond timestamp: 55969-09-28")."""
    data = "time,value\n" + "\n".join(f"{(1_700_000_000 + 60 * i) * scale},{i % 7}"
                                       for i in range(30))
    dataset = prepare(read_csv(data.encode()))
    assert dataset.profile == "sensor"
    assert dataset.time.iloc[0] == pd.Timestamp("2023-11-14 22:13:20")


@pytest.mark.parametrize("year", [1500, 2999])
def test_a_date_beyond_what_a_timestamp_holds_names_its_rows(year):
    """It was a traceback: "Out of bounds nanosecond timestamp: 1500-01-01 00:00:00"."""
    data = "timestamp,value\n" + "\n".join(f"2024-01-01 00:{i:02d}:00,{i % 7}" for i in range(30))
    with pytest.raises(TimestampError, match=(
            rf"column 'timestamp': 1 value\(s\) are not dates between the years 1678 and 2261 "
            rf"\(row 31\), for example '{year}-01-01 00:30:00'")):
        prepare(read_csv(f"{data}\n{year}-01-01 00:30:00,3\n".encode()))


def test_an_epoch_time_beyond_its_unit_is_no_date():
    data = "time,value\n" + "\n".join(f"{1_700_000_000 + 60 * i},{i % 7}" for i in range(30))
    with pytest.raises(TimestampError, match=r"column 'time': 1 value\(s\) are not dates "
                       r"\(row 31\), for example .*99999999999"):
        prepare(read_csv(f"{data}\n99999999999,3\n".encode()))


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["2024-03-01 08:00:00", "2024-03-01 08:01:30"], ["2024-03-01 08:00:00", "2024-03-01 08:01:30"]),
        (["2024-03-01T08:00:00.250", " 2024-03-01T08:01 "], ["2024-03-01 08:00:00.25", "2024-03-01 08:01:00"]),
        (["2024-03-01", "2024-03-02"], ["2024-03-01", "2024-03-02"]),
        # A zone is converted to UTC; the result is naive UTC like the rest.
        (["2024-03-01T08:00:00Z", "2024-03-01 10:00:00+01:00"], ["2024-03-01 08:00:00", "2024-03-01 09:00:00"]),
        (["03/01/2024 08:00", "03/02/2024 08:00"], ["2024-03-01 08:00:00", "2024-03-02 08:00:00"]),
        (["2024-03-01 08:00:00", "2 March 2024 08:00"], ["2024-03-01 08:00:00", "2024-03-02 08:00:00"]),
        # The day first where a date says so (13/03), or with dots, as in Europe.
        (["01/03/2024 08:00", "13/03/2024 08:00"], ["2024-03-01 08:00:00", "2024-03-13 08:00:00"]),
        (["01.03.2024 08:00", "02.03.2024 08:00"], ["2024-03-01 08:00:00", "2024-03-02 08:00:00"]),
    ],
    ids=["iso-space", "iso-t-fraction-spaces", "date-only", "zones", "us-slashes", "mixed-formats",
         "day-first-slashes", "day-first-dots"],
)
def test_timestamp_formats_parse_to_naive_utc(cells, expected):
    lines = "\n".join(f'"{cell}",{i}' for i, cell in enumerate(cells * 10))
    dataset = prepare(read_csv(f"timestamp,value\n{lines}\n".encode()), profile="sensor")
    assert str(dataset.time.dtype) == "datetime64[ns]"
    assert dataset.time.iloc[:2].tolist() == [pd.Timestamp(e) for e in expected]


def test_an_impossible_iso_date_is_named():
    data = b"timestamp,value\n2025-01-01 00:00,1\n2025-02-30 00:00,2\n2025-01-03 00:00,3\n"
    with pytest.raises(TimestampError, match=r"1 value\(s\) are not dates \(row 2\), for example '2025-02-30 00:00'"):
        prepare(read_csv(data))


def _machines(order):
    times = pd.date_range("2025-01-01", periods=30, freq="h").astype(str)
    frames = [pd.DataFrame({"timestamp": times, "machine": m,
                            "temperature": np.arange(30) % 7 + 20.0 + i})
              for i, m in enumerate(["M1", "M2", "M3"])]
    stacked = pd.concat(frames, ignore_index=True)  # one machine's readings after another's
    return stacked if order == "stacked" else stacked.iloc[::-1]


def test_one_machine_after_another_is_in_time_order():
    assert _dataset_warnings(_machines("stacked")) == []


def test_a_machine_with_unsorted_rows_is_reported():
    warnings = _dataset_warnings(_machines("reversed"))
    assert warnings == ["column 'timestamp': rows of some 'machine' values are not in time "
                        "order; they were scored in time order and are returned in file order"]


def _dataset_warnings(frame):
    return prepare(read_csv(to_csv_bytes(frame))).warnings


def test_infinite_values_are_treated_as_missing():
    rows = "\n".join(f"2025-01-01 {h:02d}:00,{h % 5}.5" for h in range(20))
    data = f"timestamp,value\n{rows}\n2025-01-02 00:00,inf\n2025-01-02 01:00,-inf\n".encode()
    dataset = prepare(read_csv(data))
    assert dataset.warnings[0] == ("column 'value': 2 infinite value(s) treated as missing "
                                   "(rows 21, 22)")
    assert np.isfinite(dataset.metrics["value"]).all()


def test_text_cells_in_a_number_column_are_missing_values_with_a_warning():
    """`ERR` in one row of seven, `x` in one row of three: still a metric (#11 item 17)."""
    from tests.hostile.make import FILES

    for name, rows in (("text_in_one_of_seven.csv", "rows 1, 8, 15"),
                       ("text_in_one_of_three.csv", "row 2")):
        dataset = prepare(read_csv(FILES[name].encode()), profile="generic")
        assert list(dataset.metrics.columns) == ["value"]
        assert any("non-numeric value(s) treated as missing" in w and rows in w
                   for w in dataset.warnings), dataset.warnings


def test_when_no_column_is_usable_the_error_says_why_each_was_refused():
    content = "timestamp,value,flag,note\n" + "".join(
        f"2025-01-01 00:{i:02d}:00,{'oops' if i % 3 else i},true,n{i}\n" for i in range(30))
    with pytest.raises(NoNumericColumnError) as refused:
        prepare(read_csv(content.encode()))
    message = str(refused.value)
    assert "column 'value': 20 of 30 cells are not numbers (rows 2, 3, 5" in message
    assert "column 'flag' is true/false" in message
    assert "column 'note': 30 of 30 cells are not numbers" in message


def _with_spike() -> pd.DataFrame:
    frame = sensor_frame()
    frame.loc[300, "vibration"] = 30.0
    return frame


def test_a_scored_file_uploaded_again_gets_the_same_scores():
    first = fit_score(prepare(read_csv(to_csv_bytes(_with_spike()))))[1]
    again = prepare(read_csv(to_csv_bytes(first.frame)))
    second = fit_score(again)[1]
    assert list(again.metrics.columns) == ["temperature", "vibration"]
    assert any("of an earlier scoring ignored" in w for w in again.warnings)
    for column in ("anomaly_score", "is_anomaly", "reasons"):
        assert second.frame[column].tolist() == first.frame[column].tolist()
    # Its other score columns deleted, is_anomaly is still a label, not a measurement.
    flags_only = first.frame.drop(columns=["anomaly_score", "severity", "reasons"])
    assert list(prepare(read_csv(to_csv_bytes(flags_only))).metrics.columns) == [
        "temperature", "vibration"]


@pytest.mark.parametrize("name", ["anomaly", "label", "changepoint", "Class", "is_attack"])
def test_a_label_of_which_rows_are_anomalous_is_not_a_measurement(name):
    frame = _with_spike()
    plain = fit_score(prepare(read_csv(to_csv_bytes(frame))))[1].frame
    # Rows 100-104 labelled: ordinary readings, which the label must not single out.
    frame[name] = np.where(np.isin(np.arange(len(frame)), range(100, 105)), 1, 0)
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    assert name not in dataset.metrics.columns
    assert f"column(s) {name!r} ignored: 0/1 labels" in " ".join(dataset.warnings)
    labelled = fit_score(dataset)[1].frame
    assert labelled["anomaly_score"].tolist() == plain["anomaly_score"].tolist()
    assert labelled[name].tolist() == frame[name].tolist()  # kept in the output


@pytest.mark.parametrize(("name", "values"), [
    ("door_open", [0, 1]),          # a 0/1 measurement under its own name
    ("target", [18.5, 21.0, 0.0]),  # a label name holding readings
])
def test_only_a_label_name_with_0_1_values_is_left_out(name, values):
    frame = sensor_frame()
    frame[name] = np.resize(values, len(frame))
    assert name in prepare(read_csv(to_csv_bytes(frame))).metrics.columns


def test_a_severity_column_of_a_file_never_scored_is_its_own():
    """Okta's export has a severity (INFO, WARN); a machine log may grade faults 1-5.
    Without an anomaly_score they are no earlier scoring of Vigil's."""
    frame = sensor_frame().assign(severity=lambda f: np.arange(len(f)) % 5 + 1)
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    assert "severity" in dataset.metrics.columns
    assert not any("earlier scoring" in w for w in dataset.warnings)


def test_a_date_column_and_a_time_of_day_column_are_one_timestamp():
    """Loggers export Date and Time apart: the times of day alone are no timestamps (every
    day's 00:00 came before the day before's 23:00: rows out of order, no daily cycle)."""
    frame = _with_spike()
    stamps = pd.to_datetime(frame.pop("timestamp"))
    apart = frame.assign(Date=stamps.dt.strftime("%d.%m.%Y"), Time=stamps.dt.strftime("%H:%M"))
    dataset = prepare(read_csv(to_csv_bytes(apart[["Date", "Time", "temperature", "vibration"]])))
    assert dataset.time.tolist() == stamps.tolist()
    assert dataset.warnings == []
    whole = fit_score(prepare(read_csv(to_csv_bytes(frame.assign(timestamp=stamps)))))[1]
    assert fit_score(dataset)[1].frame["anomaly_score"].tolist() == \
        whole.frame["anomaly_score"].tolist()


def test_a_bad_date_beside_a_time_of_day_names_both_columns_and_the_row():
    data = b"date,time,value\n2025-01-01,10:00,1\n2025-01-01,10:10,2\nsoon,10:20,3\n"
    with pytest.raises(TimestampError, match=r"column 'date time': 1 value\(s\) are not dates "
                                             r"\(row 3\), for example 'soon 10:20'"):
        prepare(read_csv(data))


def test_a_time_column_under_a_name_no_synonym_knows_is_found_by_its_dates():
    frame = _with_spike()
    named = fit_score(prepare(read_csv(to_csv_bytes(frame))))[1].frame
    renamed = frame.rename(columns={"timestamp": "Zeit"})[["temperature", "Zeit", "vibration"]]
    dataset = prepare(read_csv(to_csv_bytes(renamed, sep=";")))
    assert (dataset.profile, dataset.mapping.timestamp) == ("sensor", "Zeit")
    assert dataset.warnings == ["column 'Zeit' holds dates: it is the rows' timestamp"]
    assert fit_score(dataset)[1].frame["anomaly_score"].tolist() == named["anomaly_score"].tolist()
    # Told there is none, there is none; text that is not all dates is no timestamp.
    assert prepare(read_csv(to_csv_bytes(renamed)), columns={"timestamp": None}).profile == "generic"
    notes = renamed.assign(Zeit=renamed["Zeit"].where(renamed.index != 7, "calibrated"))
    assert prepare(read_csv(to_csv_bytes(notes))).profile == "generic"


@pytest.mark.parametrize(("name", "first"), [("Unnamed: 0", 0), ("index", 0), ("id", 1), ("#", 1)])
def test_a_column_of_row_numbers_is_not_a_measurement(name, first):
    """A pandas index saved with the file: as a metric, a later file's row numbers lie
    beyond any the model saw, and every row of it looks like a drift."""
    frame = sensor_frame()
    saved = frame.assign(**{name: np.arange(first, first + len(frame))})
    dataset = prepare(read_csv(to_csv_bytes(saved)))
    assert list(dataset.metrics.columns) == ["temperature", "vibration"]
    assert f"column(s) {name!r} ignored: row numbers" in " ".join(dataset.warnings)
    later = sensor_frame(seed=1).assign(
        timestamp=lambda f: (pd.to_datetime(f["timestamp"]) + pd.Timedelta(days=5)).astype(str))
    numbered = later.assign(**{name: np.arange(first + len(frame), first + 2 * len(frame))})
    scores = fit(dataset).score(prepare(read_csv(to_csv_bytes(numbered)))).frame
    plain = fit(prepare(read_csv(to_csv_bytes(frame)))).score(
        prepare(read_csv(to_csv_bytes(later)))).frame
    assert scores["anomaly_score"].tolist() == plain["anomaly_score"].tolist()


def test_a_numbered_column_that_does_not_count_rows_is_a_measurement():
    frame = sensor_frame().assign(id=lambda f: np.arange(len(f)) * 2,
                                  index=lambda f: np.arange(len(f)) + 0.5)
    assert {"id", "index"} <= set(prepare(read_csv(to_csv_bytes(frame))).metrics.columns)


def test_a_trailing_delimiters_empty_column_is_no_constant_column():
    lines = "".join(f"2025-01-01 00:{i:02d},{i % 7}.5,\n" for i in range(40))
    dataset = prepare(read_csv(f"timestamp,value,\n{lines}".encode()))
    assert list(dataset.metrics.columns) == ["value"]
    assert dataset.warnings == []  # was: "constant column(s) 'Unnamed: 2' ignored"


def test_a_login_file_short_of_a_column_is_told_which_and_what_was_found():
    """It was told there were no login columns at all."""
    with pytest.raises(ColumnMappingError, match=(
            r"the login profile needs a user column; none was found \(name it, for example "
            r"'user', 'user_id', 'username', or map it explicitly\); found timestamp 'time', "
            r"ip 'ip', country 'country'")):
        prepare(read_csv(b"time,ip,country\n2025-01-01 10:00,10.0.0.1,NO\n"))


def _long(machines=("M1",)):
    """Readings one to a row, the metric named beside the value (InfluxDB's and
    Grafana's long exports): a vibration spike on the last machine at minute 400."""
    rng = np.random.default_rng(0)
    minutes = pd.date_range("2025-01-01", periods=600, freq="min")
    parts = []
    for machine in machines:
        vibration = 0.5 + rng.normal(0, 0.02, 600)
        if machine == machines[-1]:
            vibration[400] = 0.9
        for metric, values in (("temperature", 20 + np.sin(np.arange(600) / 60)
                                + rng.normal(0, 0.1, 600)),
                               ("vibration", vibration),
                               ("humidity", 40 + rng.normal(0, 1, 600))):
            parts.append(pd.DataFrame({"timestamp": minutes, "machine": machine,
                                       "metric": metric, "value": values}))
    frame = pd.concat(parts).sort_values("timestamp", kind="stable").reset_index(drop=True)
    return frame if len(machines) > 1 else frame.drop(columns="machine")


@pytest.mark.parametrize("machines", [("M1",), ("M1", "M2")], ids=["metric", "machine+metric"])
def test_a_long_file_scores_each_metric_as_a_series_of_its_own(machines):
    """Its values were one series running temperature, vibration, humidity in turn: every
    humidity reading "jumped from 0.497 to 37.2", and the spike was not among the top 5."""
    frame = _long(machines)
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    assert list(dataset.metrics.columns) == ["value"]
    assert any("column 'metric' names the metric of each row's value: each of its 3 metrics "
               "is a series of its own" in w for w in dataset.warnings)
    assert dataset.mapping.entity == ("metric" if len(machines) == 1 else "machine")
    result = fit_score(dataset)[1].frame
    top = result.loc[result["anomaly_score"].idxmax()]
    assert (top["metric"], top["value"], pd.Timestamp(top["timestamp"]).minute) == (
        "vibration", 0.9, 40)
    if len(machines) > 1:
        assert top["machine"] == machines[-1]
    humidity = result.loc[result["metric"] == "humidity", "reasons"]
    assert not humidity.str.contains(r"jumped from 0\.").any()  # from a vibration reading


def test_a_reading_under_a_series_name_is_a_reading():
    frame = sensor_frame().assign(signal=lambda f: -60 + np.arange(len(f)) % 7)
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    assert "signal" in dataset.metrics.columns and dataset.mapping.entity is None


def _fleet(column: str = "pump") -> pd.DataFrame:
    """Three machines' readings at the same minutes, under a machine column no synonym
    knows: a vibration spike on P3 at 0.9 that P1's usual level (1.1) would hide."""
    rng = np.random.default_rng(3)
    minutes = pd.date_range("2025-01-01", periods=500, freq="min").strftime("%Y-%m-%d %H:%M")
    parts = []
    for name, level in (("P1", 1.1), ("P2", 0.2), ("P3", 0.5)):
        vibration = level + rng.normal(0, 0.01, 500)
        if name == "P3":
            vibration[300] = 0.9
        parts.append(pd.DataFrame({"timestamp": minutes, column: name, "vibration": vibration,
                                   "status": rng.choice(["OK", "CHECK"], 500)}))
    return pd.concat(parts).sort_values("timestamp", kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("column", ["pump", "unit", "Anlage", "room"])
def test_a_machine_column_under_an_unknown_name_is_told_by_the_layout(column):
    """Such a column was ignored without a word: every machine's readings were one
    series jumping from machine to machine, and a spike within one's range was lost."""
    dataset = prepare(read_csv(to_csv_bytes(_fleet(column))))
    assert dataset.mapping.entity == column
    assert (f"column {column!r} tells apart the readings that share a time: it names the "
            "machine of each row, and each of its 3 values is a series of its own"
            ) in dataset.warnings
    result = fit_score(dataset)[1].frame
    top = result.sort_values("anomaly_score", ascending=False).iloc[0]
    assert (top[column], top["vibration"]) == ("P3", pytest.approx(0.9))


def test_a_layout_tells_no_machine_where_nothing_tells_readings_apart():
    """One machine's readings (a status beside each, a note on every row), and readings
    of one time that a column cannot tell apart: no machine column."""
    single = sensor_frame(300)
    single["status"] = np.where(np.arange(300) % 3, "OK", "CHECK")
    single["note"] = [f"shift {k}" for k in range(300)]
    assert prepare(single).mapping.entity is None
    coarse = pd.concat([single, single.assign(temperature=single["temperature"] + 0.1)])
    assert prepare(coarse.reset_index(drop=True)).mapping.entity is None
    fleet = _fleet()
    assert prepare(fleet, columns={"entity": None}).mapping.entity is None
    twice = pd.concat([fleet, fleet.iloc[:600]], ignore_index=True)  # exports that overlap
    assert prepare(twice).mapping.entity == "pump"


def test_a_long_files_machine_column_under_an_unknown_name_is_told_by_the_layout():
    frame = _long(("M1", "M2")).rename(columns={"machine": "unit"})
    dataset = prepare(read_csv(to_csv_bytes(frame)))
    assert dataset.entity.nunique() == 6  # two machines' three metrics


def test_a_machine_numbered_under_an_unknown_name_is_no_reading():
    """Machines numbered 1, 2, 3 under such a name were a reading ("unit 3, usual 1-3")
    and their readings one series. A number alone in the file stays the reading."""
    fleet = _fleet("unit")
    fleet["unit"] = fleet["unit"].str[1:].astype(int)
    dataset = prepare(read_csv(to_csv_bytes(fleet)))
    assert dataset.mapping.entity == "unit"
    assert list(dataset.metrics.columns) == ["vibration"]
    alone = prepare(read_csv(to_csv_bytes(fleet[["timestamp", "unit"]])))
    assert alone.mapping.entity is None and list(alone.metrics.columns) == ["unit"]
    counter = sensor_frame(300)  # a count beside the readings, at times shared by two rows
    counter["count"] = np.arange(300) // 2
    counter["timestamp"] = counter["timestamp"].iloc[::2].repeat(2).to_numpy()
    assert prepare(counter).mapping.entity is None


def test_a_loggers_date_column_beside_its_times_of_day_is_no_machine():
    """Date and Time apart: the times of day repeat every day, and the Date column tells
    them apart, but the rows' times (date and time of day) do not repeat."""
    frame = sensor_frame(600)
    when = pd.to_datetime(frame.pop("timestamp"))
    frame.insert(0, "Date", when.dt.strftime("%Y-%m-%d"))
    frame.insert(1, "Time", when.dt.strftime("%H:%M"))
    frame["status"] = np.where(np.arange(600) % 4, "OK", "CHECK")
    assert prepare(frame).mapping.entity is None
    fleet = _fleet("pump")
    when = pd.to_datetime(fleet.pop("timestamp"))
    fleet.insert(0, "Date", when.dt.strftime("%Y-%m-%d"))
    fleet.insert(1, "Time", when.dt.strftime("%H:%M"))
    assert prepare(fleet).mapping.entity == "pump"
