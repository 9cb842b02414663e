"""Every route: the happy path, each error code, and who may call it."""

import email
import io
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from app import services
from app.vigil import Vigil
from tests.api.conftest import TEMPERATURE, auth, settings_for

pytestmark = pytest.mark.timeout(300)

LINES = TEMPERATURE.read_text().splitlines()
BODY = ("\n".join(LINES[:101]) + "\n").encode()  # the header and 100 rows

ROUTES = [  # (method, path, the role it needs)
    ("GET", "/v1/runs", "viewer"),
    ("GET", "/v1/runs/1", "viewer"),
    ("GET", "/v1/anomalies", "viewer"),
    ("GET", "/v1/incidents", "viewer"),
    ("POST", "/v1/score", "analyst"),
    ("POST", "/v1/runs", "analyst"),
    ("PATCH", "/v1/anomalies/1", "analyst"),
    ("PATCH", "/v1/incidents/1", "analyst"),
    ("POST", "/v1/streams/lift/events", "analyst"),
]


def is_problem(response, status: int, text: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and text in body["detail"], body
    return body


@pytest.mark.parametrize(("method", "path", "role"), ROUTES)
def test_every_v1_route_needs_a_token_with_its_role(client, settings, tokens, method, path,
                                                    role):
    missing = client.request(method, path)
    is_problem(missing, 401, "Authorization: Bearer")
    assert missing.headers["www-authenticate"] == "Bearer"
    is_problem(client.request(method, path, headers=auth("vgl_not-a-token")), 401,
               "unknown or revoked")
    if role == "analyst":
        is_problem(client.request(method, path, headers=auth(tokens["viewer"])), 403,
                   "needs the analyst role; the token 'viewer-job' has the viewer role")
    for allowed in ("viewer", "analyst", "admin")[("viewer", "analyst").index(role):]:
        status = client.request(method, path, headers=auth(tokens[allowed])).status_code
        assert status not in (401, 403), (allowed, status)
    services.revoke_token(Vigil(settings), "admin-job")
    is_problem(client.request(method, path, headers=auth(tokens["admin"])), 401, "revoked")


def test_health_names_each_profiles_active_model(client, model):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok",
                               "models": {"sensor": model, "login": None, "generic": None}}


def test_health_is_503_naming_the_database_when_it_is_down(tmp_path):
    from fastapi.testclient import TestClient

    from app.api.server import create_app

    down = settings_for("postgresql://postgres@127.0.0.1:9/nowhere", tmp_path)
    with TestClient(create_app(down)) as client:
        body = is_problem(client.get("/health"), 503, "database: unavailable")
    assert body["database"] == "failing"
    assert "127.0.0.1" not in body["detail"]  # no host named to the anonymous
    guarded = settings_for("postgresql://postgres@127.0.0.1:9/nowhere", tmp_path,
                           metrics_token="s3cret")
    with TestClient(create_app(guarded)) as client:
        is_problem(client.get("/health", headers=auth("s3cret")), 503, "127.0.0.1")


def test_metrics_token_guards_health_and_metrics(database_url, tmp_path):
    from fastapi.testclient import TestClient

    from app.api.server import create_app

    guarded = settings_for(database_url, tmp_path, metrics_token="s3cret")
    with TestClient(create_app(guarded)) as client:
        for path in ("/health", "/metrics"):
            is_problem(client.get(path), 401, "METRICS_TOKEN")
            assert client.get(path, headers=auth("s3cret")).status_code == 200


def test_docs_are_served_from_the_api_itself(client):
    """Every file the docs page loads comes from the API, none from a CDN."""
    import re

    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "openapi.json" in page.text and "http" not in page.text.replace("http-equiv", "")


def test_score_with_model_fit_fits_on_the_body_as_vigil_score_does(client, tokens, settings,
                                                                  tmp_path):
    """`?model=fit` answered 404: with no trained model, only /v1/runs could score."""
    path = tmp_path / "hundred.csv"
    path.write_bytes(BODY)
    out = tmp_path / "cli.csv"
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    done = subprocess.run([sys.executable, "-m", "app", "score", str(path), "--out", str(out)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert not services.list_models(Vigil(settings))  # nothing registered
    as_csv = client.post("/v1/score?model=fit", content=BODY, headers={
        **auth(tokens["analyst"]), "Content-Type": "text/csv", "Accept": "text/csv"})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.content == out.read_bytes()
    rows = pd.read_csv(io.BytesIO(BODY)).to_dict("records")
    as_json = client.post("/v1/score", json={"model": "fit", "rows": rows},
                          headers=auth(tokens["analyst"]))
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["model"] is None and len(as_json.json()["rows"]) == len(rows)


def test_score_answers_what_vigil_score_model_writes(client, tokens, model, settings,
                                                     tmp_path):
    path = tmp_path / "hundred.csv"
    path.write_bytes(BODY)
    out = tmp_path / "cli.csv"
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    done = subprocess.run([sys.executable, "-m", "app", "score", str(path), "--model", model,
                           "--out", str(out)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    as_csv = client.post("/v1/score", content=BODY, headers={
        **auth(tokens["analyst"]), "Content-Type": "text/csv", "Accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.content == out.read_bytes()
    rows = pd.read_csv(io.BytesIO(BODY)).to_dict("records")
    as_json = client.post("/v1/score", json={"model": "active", "rows": rows},
                          headers=auth(tokens["analyst"]))
    assert as_json.status_code == 200, as_json.text
    body = as_json.json()
    assert body["profile"] == "sensor" and body["model"] == model
    expected = pd.read_csv(out)
    got = pd.DataFrame(body["rows"])
    assert got["anomaly_score"].round(6).tolist() == expected["anomaly_score"].round(6).tolist()
    assert got["severity"].tolist() == expected["severity"].tolist()
    assert got["reasons"].fillna("").tolist() == expected["reasons"].fillna("").tolist()


@pytest.mark.parametrize(("body", "headers", "status", "text"), [
    (b"name,city\nann,Oslo\nbob,Rome\n", {"Content-Type": "text/csv"}, 400,
     "no usable numeric column"),
    (b"a,b\n1,2\n3,4,5\n", {"Content-Type": "text/csv"}, 400, "line 3 of the file has 3 values"),
    (BODY, {"Content-Type": "application/xml"}, 415, "send application/json or text/csv"),
    (b'{"rows": []}', {"Content-Type": "application/json"}, 422, "rows"),
    (b'{"rows": [{"value": [1, 2]}]}', {"Content-Type": "application/json"}, 422,
     "row 1, 'value': a value must be"),
    (b'{"rows": ', {"Content-Type": "application/json"}, 422, "body"),
])
def test_score_refuses_bad_bodies_with_the_clis_message(client, tokens, model, body, headers,
                                                        status, text):
    response = client.post("/v1/score", content=body,
                           headers={**auth(tokens["analyst"]), **headers})
    is_problem(response, status, text)


def test_score_with_an_unknown_model_is_404(client, tokens, model):
    response = client.post("/v1/score?model=20990101-000000-abcdef", content=BODY,
                           headers={**auth(tokens["analyst"]), "Content-Type": "text/csv"})
    is_problem(response, 404, "no model with version or name '20990101-000000-abcdef'")


def test_a_killed_worker_process_is_a_503_and_is_replaced(client, tokens, model):
    headers = {**auth(tokens["analyst"]), "Content-Type": "text/csv"}
    assert client.post("/v1/score", content=BODY, headers=headers).status_code == 200
    for pid in client.app.state.workers._executor._processes:  # as the OOM killer would
        os.kill(pid, signal.SIGKILL)
    answers = [client.post("/v1/score", content=BODY, headers=headers) for _ in range(2)]
    is_problem(answers[0], 503, "a worker process stopped")
    assert answers[1].status_code == 200 and len(answers[1].json()["rows"]) == 100


def test_bodies_over_the_limit_are_413_with_or_without_a_length(database_url, tmp_path,
                                                                 model):
    from fastapi.testclient import TestClient

    from app.api.server import create_app

    small = settings_for(database_url, tmp_path, api_max_body_mb=0.001)  # 1,048 bytes
    services.add_user(Vigil(small), "owner", role="analyst", password="a long passphrase")
    token = services.add_token(Vigil(small), "job", role="analyst", user="owner")
    headers = {**auth(token), "Content-Type": "text/csv"}
    with TestClient(create_app(small)) as client:
        is_problem(client.post("/v1/score", content=BODY, headers=headers), 413,
                   "API_MAX_BODY_MB")

        def chunks():  # no Content-Length: the body is counted as it arrives
            for start in range(0, len(BODY), 256):
                yield BODY[start:start + 256]

        is_problem(client.post("/v1/score", content=chunks(), headers=headers), 413,
                   "API_MAX_BODY_MB")
        small_body = ("\n".join(LINES[:20]) + "\n").encode()
        assert client.post("/v1/score", content=small_body, headers=headers).status_code == 200


def test_a_run_posted_twice_is_stored_once_and_alerted_once(client, tokens, settings):
    files = {"file": ("temperature.csv", TEMPERATURE.read_bytes(), "text/csv")}
    headers = auth(tokens["analyst"])
    first = client.post("/v1/runs?alert=true", files=files, data={"contamination": "0.02"},
                        headers=headers)
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["created"] and created["rows"] == 720 and created["flagged"] > 0
    assert created["alert"]["status"] == "sent"
    again = client.post("/v1/runs?alert=true", files=files, data={"contamination": "0.02"},
                        headers=headers)
    assert again.status_code == 200
    assert again.json()["run_id"] == created["run_id"] and not again.json()["created"]
    assert again.json()["alert"]["status"] == "duplicate"
    saved = services.audit_log(Vigil(settings), action="run.save")
    assert list(zip(saved["actor"], saved["target"], strict=True)) == [
        ("analyst-job", f"run {created['run_id']}")]  # the token that stored it, once
    mails = list(settings.alert_outbox_dir.glob("*.eml"))
    assert len(mails) == 1
    message = email.message_from_bytes(mails[0].read_bytes())
    assert message["To"] == "ops@example.com"
    viewer = auth(tokens["viewer"])
    run = client.get(f"/v1/runs/{created['run_id']}", headers=viewer).json()
    assert run["source_name"] == "temperature.csv" and run["total_rows"] == 720
    assert run["anomaly_count"] == created["flagged"]
    is_problem(client.get("/v1/runs/999999", headers=viewer), 404, "no run 999999")
    is_problem(client.post("/v1/runs", files=files, data={"contamination": "0.9"},
                           headers=headers), 422, "contamination")
    is_problem(client.post("/v1/runs", files={"file": ("x.csv", b"", "text/csv")},
                           headers=headers), 400, "the file is empty")


def test_runs_and_anomalies_page_by_cursor(client, tokens, settings):
    headers = auth(tokens["analyst"])
    ids = []
    for name in ("temperature.csv", "elevators.csv"):
        from sample_data import sample_path

        files = {"file": (name, sample_path(name).read_bytes(), "text/csv")}
        ids.append(client.post("/v1/runs", files=files, headers=headers).json()["run_id"])
    first = client.get("/v1/runs?limit=1", headers=headers).json()
    assert [r["id"] for r in first["items"]] == [ids[1]] and first["next"] == ids[1]
    second = client.get(f"/v1/runs?limit=1&before={first['next']}", headers=headers).json()
    assert [r["id"] for r in second["items"]] == [ids[0]]
    seen, after = [], None
    while True:
        query = "limit=50" + (f"&after={after}" if after else "")
        page = client.get(f"/v1/anomalies?{query}", headers=headers).json()
        seen += page["items"]
        after = page["next"]
        if after is None:
            break
    stored = services.count_anomalies(Vigil(settings), services.AnomalyFilter())
    assert len(seen) == stored and len({a["id"] for a in seen}) == stored
    assert all("data" in a and a["data"] for a in seen)
    only = client.get(f"/v1/anomalies?run={ids[0]}&severity=high&severity=critical&limit=1000",
                      headers=headers).json()["items"]
    assert only and {a["run_id"] for a in only} == {ids[0]}
    assert {a["severity"] for a in only} <= {"high", "critical"}
    is_problem(client.get("/v1/anomalies?status=nonsense", headers=headers), 422,
               "status must be one of")
    for route in ("anomalies", "incidents"):  # a typo was an empty page: "none found"
        is_problem(client.get(f"/v1/{route}?severity=high&severity=crit", headers=headers),
                   422, "severity must be one of low, medium, high, critical; got 'crit'")
    is_problem(client.get("/v1/anomalies?since=yesterday", headers=headers), 422, "since")


def test_reviews_name_the_token_and_reach_incident_rows(client, tokens, settings):
    headers = auth(tokens["analyst"])
    files = {"file": ("temperature.csv", TEMPERATURE.read_bytes(), "text/csv")}
    run_id = client.post("/v1/runs", files=files, headers=headers).json()["run_id"]
    anomaly = client.get(f"/v1/anomalies?run={run_id}&limit=1", headers=headers
                         ).json()["items"][0]
    changed = client.patch(f"/v1/anomalies/{anomaly['id']}", headers=headers,
                           json={"status": "confirmed", "note": "bearing noise"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["review_status"] == "confirmed"
    assert changed.json()["reviewed_by"] == "analyst-job"
    assert changed.json()["note"] == "bearing noise"
    is_problem(client.patch("/v1/anomalies/999999", headers=headers,
                            json={"status": "dismissed"}), 404, "no anomaly 999999")
    is_problem(client.patch(f"/v1/anomalies/{anomaly['id']}", headers=headers,
                            json={"status": "fine"}), 422, "status must be one of")
    is_problem(client.patch(f"/v1/anomalies/{anomaly['id']}", headers=headers,
                            json={"note": "no status"}), 422, "status")
    incidents = client.get(f"/v1/incidents?run={run_id}", headers=headers).json()["items"]
    assert incidents
    target = incidents[0]
    reviewed = client.patch(f"/v1/incidents/{target['id']}", headers=headers,
                            json={"status": "false_positive"})
    assert reviewed.status_code == 200 and reviewed.json()["review_status"] == "false_positive"
    rows = services.query_anomalies(Vigil(settings), services.AnomalyFilter(incident_ids=[target["id"]]),
                                    limit=None)
    assert len(rows) == target["row_count"]
    assert set(rows["review_status"]) == {"false_positive"}
    assert set(rows["reviewed_by"]) == {"analyst-job"}
    is_problem(client.patch("/v1/incidents/999999", headers=headers,
                            json={"status": "dismissed"}), 404, "no incident 999999")


def test_stream_events_score_as_one_file_and_restart_nowhere(client, tokens, model,
                                                              settings):
    headers = {**auth(tokens["analyst"]), "Content-Type": "text/csv"}
    header, rows = LINES[0], LINES[1:301]
    answers = []
    for part in (rows[:120], rows[120:]):
        body = ("\n".join([header, *part]) + "\n").encode()
        response = client.post("/v1/streams/boiler/events", content=body, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert [a["position"] for a in answers] == [120, 300]
    assert answers[0]["run_id"] == answers[1]["run_id"]
    streamed = pd.DataFrame([s for a in answers for s in a["scores"]])
    # A live stream learns as it goes: the scores of the whole body scored as a stream
    from app import scoring

    active = services.resolve_model(Vigil(settings), "active", profile="sensor")
    whole = pd.concat(r.frame for r in scoring.scored_pieces(
        ("\n".join([header, *rows]) + "\n").encode(), active, learn=True))
    assert streamed["row"].tolist() == list(range(1, 301))
    assert streamed["anomaly_score"].round(9).tolist() == \
        whole["anomaly_score"].round(9).tolist()
    stored = services.live_streams(Vigil(settings))
    assert stored.set_index("source").loc["boiler", "position"] == 300
    as_json = client.post("/v1/streams/boiler/events", headers=auth(tokens["analyst"]),
                          json={"rows": pd.read_csv(io.StringIO("\n".join(
                              [header, *LINES[301:311]]))).to_dict("records")})
    assert as_json.status_code == 200 and as_json.json()["position"] == 310
    is_problem(client.post("/v1/streams/boiler/events?model=20990101-000000-abcdef",
                           content=BODY, headers=headers), 404, "no model")


def test_metrics_count_rows_flags_requests_and_show_models(client, tokens, model):
    headers = {**auth(tokens["analyst"]), "Content-Type": "text/csv"}
    before = _sample(client.get("/metrics").text, 'vigil_rows_scored_total{profile="sensor"}')
    response = client.post("/v1/score", content=BODY, headers=headers)
    flagged = sum(r["is_anomaly"] for r in response.json()["rows"])
    text = client.get("/metrics").text
    assert _sample(text, 'vigil_rows_scored_total{profile="sensor"}') == before + 100
    anomalies = sum(v for k, v in _samples(text).items()
                    if k.startswith('vigil_anomalies_total{profile="sensor"'))
    assert anomalies >= flagged
    assert f'vigil_model_info{{profile="sensor",version="{model}"}} 1.0' in text
    assert _sample(text, 'vigil_http_request_duration_seconds_count{method="POST",'
                         'route="/v1/score",status="200"}') >= 1
    assert 'vigil_scoring_duration_seconds_bucket{le="0.005",profile="sensor"}' in text


def _samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def _sample(text: str, name: str) -> float:
    return _samples(text).get(name, 0.0)


def test_threads_opening_a_new_embedded_database_at_once_share_one_upgrade(tmp_path):
    """The API's first requests arrive together: each thread asks for the engine, and
    the SQLite file is upgraded once (Alembic's upgrade is not thread-safe)."""
    import threading

    settings = settings_for(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path)
    start, engines, errors = threading.Barrier(8), [], []

    def first_request():
        start.wait()
        try:
            engines.append(Vigil(settings).engine)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len({id(e) for e in engines}) == 1
    assert services.health(Vigil(settings)) == {"sensor": None, "login": None,
                                                  "generic": None}


def test_a_body_without_a_valid_token_is_refused_before_it_is_read(client, tokens):
    """A 60 MB upload was received and parsed (3.8 s) before its 401."""
    read = []

    def body():
        for _ in range(200):  # 200 MB, were it read
            read.append(1)
            yield b"x" * (1 << 20)

    for headers in ({}, auth("vgl_not-a-token")):
        answer = client.post("/v1/runs", content=body(), headers={
            **headers, "Content-Type": "multipart/form-data; boundary=b"})
        is_problem(answer, 401)
    assert len(read) <= 2  # what the client had sent before the answer came


@pytest.mark.parametrize("path", ["/v1/anomalies?severity=%00", "/v1/runs?before=1%00",
                                  "/v1/incidents?entity=a%00b"])
def test_a_nul_in_a_query_value_is_422_not_a_traceback(client, tokens, path):
    is_problem(client.get(path, headers=auth(tokens["viewer"])), 422,
               "the query string holds a NUL")


def test_a_nul_in_the_path_is_422_saying_so(client, tokens):
    is_problem(client.post("/v1/streams/a%00b/events", headers=auth(tokens["analyst"]),
                           json={"rows": [{"timestamp": "2025-01-01", "value": 1}]}),
               422, "the path holds a NUL")


@pytest.mark.parametrize("path", ["/v1/runs/9223372036854775808",
                                  "/v1/runs?before=9223372036854775808",
                                  "/v1/anomalies?after=9223372036854775808",
                                  "/v1/anomalies?run=9223372036854775808"])
def test_an_id_beyond_64_bits_is_422_not_an_overflow(client, tokens, path):
    is_problem(client.get(path, headers=auth(tokens["viewer"])), 422)


def test_an_over_limit_chunked_upload_is_413_not_a_parse_error(database_url, tmp_path):
    from fastapi.testclient import TestClient

    from app.api.server import create_app

    small = settings_for(database_url, tmp_path, api_max_body_mb=0.001)  # 1,048 bytes
    services.add_user(Vigil(small), "owner", role="analyst", password="a long passphrase")
    token = services.add_token(Vigil(small), "job", role="analyst", user="owner")
    form = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.csv\"\r\n"
            b"Content-Type: text/csv\r\n\r\n" + BODY + b"\r\n--b--\r\n")

    def chunks():  # no Content-Length
        for start in range(0, len(form), 256):
            yield form[start:start + 256]

    with TestClient(create_app(small)) as client:
        is_problem(client.post("/v1/runs", content=chunks(), headers={
            **auth(token), "Content-Type": "multipart/form-data; boundary=b"}), 413,
            "API_MAX_BODY_MB")


def test_a_login_batch_into_a_sensor_stream_is_400_in_words(client, tokens, model, settings):
    """It was 500 KeyError: 'user'."""
    from sample_data import sample_path

    headers = {**auth(tokens["analyst"]), "Content-Type": "text/csv"}
    first = client.post("/v1/streams/mixed/events", content=BODY, headers=headers)
    assert first.status_code == 200, first.text
    services.train(Vigil(settings), services.read_dataset(sample_path("logins.csv")),
                   activate=True)
    logins = "\n".join(sample_path("logins.csv").read_text().splitlines()[:50]) + "\n"
    is_problem(client.post("/v1/streams/mixed/events", content=logins.encode(),
                           headers=headers), 400,
               "stream 'mixed' holds sensor rows; these read as login rows")


def test_a_parquet_file_posted_to_runs_is_scored_with_its_own_types(client, tokens):
    frame = pd.read_csv(TEMPERATURE).assign(timestamp=lambda f: pd.to_datetime(f["timestamp"]))
    data = io.BytesIO()
    frame.to_parquet(data, index=False)
    files = {"file": ("temperature.parquet", data.getvalue(), "application/vnd.apache.parquet")}
    created = client.post("/v1/runs", files=files, headers=auth(tokens["analyst"]))
    assert created.status_code == 201, created.text
    as_csv = client.post("/v1/runs", files={"file": ("temperature.csv", TEMPERATURE.read_bytes(),
                                                     "text/csv")},
                         headers=auth(tokens["analyst"])).json()
    assert created.json()["rows"] == as_csv["rows"] == 720
    assert created.json()["flagged"] == as_csv["flagged"] > 0
