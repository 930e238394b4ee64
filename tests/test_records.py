"""Prediction records and request ids through the application (nbs/12_records.ipynb, nbs/06_app.ipynb): every
route records what it answered under the id the server issued (the client's id beside it), sampling, a directory
that cannot be written, files moved away and old days deleted, and, under gunicorn, structured logs and records on
stdout, one records file per worker process, named with the host, and both ids in the access log."""
import json, os, random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from iris_classifier.app import create_app
from iris_classifier.serving import SERVER_ID
from iris_classifier.core import FEATURES, read_metadata
from iris_classifier.records import record_file, record_file_day
from conftest import Server, container_command

pytestmark = pytest.mark.clock  # records are filed by their UTC day: `make test-clock` runs these across a midnight

ROW, OTHER = [5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]

def records(directory:Path, kind:str="prediction")->list[dict]:
    "Every record of `kind` in `directory`'s files"
    prefix = {"prediction": "predictions", "feedback": "feedback"}[kind]
    files = sorted(directory.glob(f"{prefix}-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]

def metric(client, line_start:str)->float:
    "The value of the one /metrics sample whose line starts with `line_start`"
    lines = client.get("/metrics").text.splitlines()
    (value,) = [float(l.rsplit(" ", 1)[1]) for l in lines if l.startswith(line_start)]
    return value

@pytest.fixture
def recording(published, tmp_path):
    "A client of an application recording into `tmp_path/records`, and that directory"
    app = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"records"})
    return app.test_client(), tmp_path/"records"

def test_every_route_records_what_it_answered(recording, published):
    client, directory = recording
    api = client.post("/api/predict", json={"instances": [ROW, dict(zip(FEATURES, OTHER))]},
                      headers={"X-Request-ID": "batch-1"})
    tensor = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": OTHER}
    v2 = client.post("/v2/models/iris-classifier/infer", json={"id": "triton-7", "inputs": [tensor]})
    page = client.post("/", data=dict(zip(FEATURES, ["5.1", "3.5", "1.4", "0.2"])))
    assert (api.status_code, v2.status_code, page.status_code) == (200, 200, 200)
    got = records(directory)
    version = read_metadata(published)["model_version"]
    assert [(r["route"], r["request_id"], r.get("client_request_id"), r["row"]) for r in got] == [
        ("api", api.json["request_id"], "batch-1", 0), ("api", api.json["request_id"], "batch-1", 1),
        ("v2", v2.json["parameters"]["request_id"], "triton-7", 0), ("page", page.headers["X-Request-ID"], None, 0)]
    assert api.headers["X-Request-ID"] == api.json["request_id"]
    assert v2.headers["X-Request-ID"] == v2.json["parameters"]["request_id"]
    assert [list(r["measurements"].values()) for r in got] == [ROW, OTHER, OTHER, ROW]
    assert [r["species"] for r in got[:2]] == [p["species"] for p in api.json["predictions"]]
    assert got[0]["probabilities"] == api.json["predictions"][0]["probabilities"]
    assert {r["model_version"] for r in got} == {version} and {r["kind"] for r in got} == {"prediction"}
    stamp = datetime.fromisoformat(got[0]["time"])
    assert stamp.tzinfo == timezone.utc and abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 60
    names = {record_file(directory, "prediction", r["time"][:10]).name for r in got}  # two if a midnight fell between
    assert sorted(f.name for f in directory.iterdir()) == sorted(names)

def test_failed_requests_are_not_recorded(recording):
    client, directory = recording
    assert client.post("/api/predict", json={"instances": [ROW, [0, 1, 1, 1]]}).status_code == 400
    assert client.post("/", data=dict(zip(FEATURES, ["5.1", "x", "1.4", "0.2"]))).status_code == 400
    assert records(directory) == []

@pytest.mark.parametrize("given, kept", [("3f2b9c1e-7d4a-4e8b-9a0c-5d6e7f8a9b0c", True),
                                         ("01HV8Z3K2M9T4Q5R6S7T8U9V0W", True), ("a" * 64, True), ("a" * 65, False),
                                         ("", False), ("two words", False), ("<script>", False), ("naïve", False),
                                         ("id;drop", False)])
def test_the_server_issues_the_id_and_keeps_a_sane_client_id_beside_it(recording, given, kept):
    client, directory = recording
    r = client.post("/api/predict", json=dict(zip(FEATURES, ROW)), headers={"X-Request-ID": given})
    assert r.headers["X-Request-ID"] == r.json["request_id"] != given and SERVER_ID.fullmatch(r.json["request_id"])
    (recorded,) = records(directory)
    assert recorded["request_id"] == r.json["request_id"]
    assert recorded.get("client_request_id") == (given if kept else None)

def test_issued_ids_differ_and_every_response_carries_one(recording):
    client, _ = recording
    same = {"X-Request-ID": "same"}
    ids = {client.post("/api/predict", json=dict(zip(FEATURES, ROW)), headers=same).json["request_id"]
           for _ in range(5)}
    assert len(ids) == 5
    for r in [client.get("/healthz"), client.get("/api/nope"), client.get("/static/style.css")]:
        assert SERVER_ID.fullmatch(r.headers["X-Request-ID"])

def test_the_page_shows_nothing_new_and_error_pages_show_both_ids(recording):
    client, _ = recording
    before = client.post("/", data=dict(zip(FEATURES, ["5.1", "3.5", "1.4", "0.2"])),
                         headers={"X-Request-ID": "marker-4711"})
    assert "marker-4711" not in before.text and "request" not in before.text.lower()
    missing = client.get("/nowhere", headers={"X-Request-ID": "marker-4711"})
    assert missing.status_code == 404 and missing.headers["X-Request-ID"] in missing.text
    assert "marker-4711" in missing.text

def test_an_unexpected_error_logs_both_ids(published, tmp_path, caplog):
    app = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"records"})
    app.add_url_rule("/api/boom", "boom", lambda: 1 / 0)
    r = app.test_client().get("/api/boom", headers={"X-Request-ID": "trace-5"})
    assert r.status_code == 500 and "ZeroDivisionError" in caplog.text
    assert f"(request id {r.headers['X-Request-ID']}, the client's trace-5)" in caplog.text

def test_sampling_records_a_share_of_requests_and_counts_them_all(published, tmp_path):
    none = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"none",
                       "RECORDS_SAMPLE": 0}).test_client()
    for _ in range(10): none.post("/api/predict", json={"instances": [ROW, ROW]})
    assert not (tmp_path/"none").exists()
    assert metric(none, 'iris_predictions_total{species="setosa"}') == 20  # metrics see every request
    assert metric(none, 'iris_input_bin_total{bin="0",feature="petal_width",model_version=') == 20
    half = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"half",
                       "RECORDS_SAMPLE": 0.5}).test_client()
    random.seed(3)
    for _ in range(200): half.post("/api/predict", json={"instances": [ROW, OTHER]})
    got = records(tmp_path/"half")
    by_request = {}
    for r in got: by_request.setdefault(r["request_id"], []).append(r["row"])
    assert 70 <= len(by_request) <= 130, len(by_request)  # about half of the requests...
    assert all(rows == [0, 1] for rows in by_request.values())  # ...each with all of its rows

@pytest.mark.parametrize("how", ["a file where the directory should be", "a read-only directory"])
def test_recording_does_not_break_when_the_directory_is_not_writable(published, tmp_path, caplog, how):
    if how == "a file where the directory should be":
        (tmp_path/"occupied").write_text("")
        directory = tmp_path/"occupied"/"records"
    else:
        if os.geteuid() == 0: pytest.skip("root writes into read-only directories; the other case covers root")
        directory = tmp_path/"records"
        directory.mkdir(mode=0o500)
    client = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": directory}).test_client()
    answers = [client.post("/api/predict", json={"instances": [ROW, OTHER]}) for _ in range(3)]
    page = client.post("/", data=dict(zip(FEATURES, ["5.1", "3.5", "1.4", "0.2"])))
    assert [r.status_code for r in answers] + [page.status_code] == [200] * 4
    assert [p["species"] for p in answers[-1].json["predictions"]] == ["setosa", "virginica"]
    assert metric(client, 'iris_records_failed_total{kind="prediction"}') == 7  # every row that could not be recorded
    said = [r for r in caplog.records if "Could not write prediction records" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "ERROR" and "IRIS_RECORDS_DIR" in said[0].getMessage()

def test_recording_resumes_once_the_directory_can_be_written(published, tmp_path):
    (tmp_path/"occupied").write_text("")
    client = create_app({"TESTING": True, "MODEL_DIR": published,
                         "RECORDS_DIR": tmp_path/"occupied"/"records"}).test_client()
    post = lambda rid: client.post("/api/predict", json=dict(zip(FEATURES, ROW)), headers={"X-Request-ID": rid})
    assert post("lost").status_code == 200
    (tmp_path/"occupied").unlink()
    assert post("kept").status_code == 200
    assert [r["client_request_id"] for r in records(tmp_path/"occupied"/"records")] == ["kept"]

def test_a_records_file_moved_away_is_reopened(published, tmp_path):
    "Finding 10 of issue 25: a worker whose day file is moved keeps recording, into a new file at the path"
    app = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"records"})
    app.extensions["iris_classifier"].recorder.recheck = 0  # look before every write, rather than once a second
    client = app.test_client()
    client.post("/api/predict", json=dict(zip(FEATURES, ROW)), headers={"X-Request-ID": "before"})
    (path,) = (tmp_path/"records").iterdir()
    path.rename(tmp_path/"shipped.jsonl")
    client.post("/api/predict", json=dict(zip(FEATURES, ROW)), headers={"X-Request-ID": "after"})
    assert [r["client_request_id"] for r in records(tmp_path/"records")] == ["after"]

def test_old_days_are_deleted_when_a_day_starts(published, tmp_path):
    directory = tmp_path/"records"
    directory.mkdir()
    today = datetime.now(timezone.utc).date()
    old, kept = [record_file(directory, "prediction", str(today - timedelta(days=d)), 1, "other-pod") for d in (8, 7)]
    for f in (old, kept, directory/"notes.txt"): f.write_text("")
    settings = {"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": directory, "RECORDS_KEEP_DAYS": 7}
    client = create_app(settings).test_client()
    client.post("/api/predict", json=dict(zip(FEATURES, ROW)))
    names = {f.name for f in directory.iterdir()}
    assert old.name not in names
    assert {kept.name, "notes.txt"} <= names or datetime.now(timezone.utc).date() != today  # a midnight between


def test_settings_out_of_range_are_refused(published):
    with pytest.raises(Exception, match="IRIS_RECORDS must be one of dir, stdout, off"):
        create_app({"MODEL_DIR": published, "RECORDS": "files"})
    with pytest.raises(Exception, match="IRIS_RECORDS_SAMPLE must be a number from 0 to 1"):
        create_app({"MODEL_DIR": published, "RECORDS_SAMPLE": "all"})
    with pytest.raises(Exception, match="IRIS_RECORDS_KEEP_DAYS must be a whole number of days"):
        create_app({"MODEL_DIR": published, "RECORDS_KEEP_DAYS": "forever"})

## Under gunicorn, as in the container

@pytest.fixture(scope="module")
def live(trained, tmp_path_factory):
    ("Two servers of a published model: records on stdout with JSON logs (one worker), and records in a directory "
     "(two workers)")
    from iris_classifier.model_training import publish
    models = tmp_path_factory.mktemp("models")
    publish(trained, models/"model")
    stdout = Server(tmp_path_factory.mktemp("stdout"), container_command,
                    dict(IRIS_MODEL_DIR=str(models/"model"), WEB_CONCURRENCY="1", IRIS_RECORDS="stdout",
                         IRIS_LOG_FORMAT="json"))
    directory = tmp_path_factory.mktemp("records")
    files = Server(tmp_path_factory.mktemp("dir"), container_command,
                   dict(IRIS_MODEL_DIR=str(models/"model"), WEB_CONCURRENCY="2", IRIS_RECORDS_DIR=str(directory)))
    try:
        stdout.wait(), files.wait()
        yield dict(stdout=stdout, files=files, directory=directory)
    finally:
        for s in (stdout, files):
            if s.proc.poll() is None: s.stop()

def test_stdout_carries_structured_logs_and_records(live):
    server = live["stdout"]
    status, headers, body = server.request("/api/predict", {"instances": [ROW, OTHER]},
                                           headers={"X-Request-ID": "live-7"})
    assert status == 200 and headers["X-Request-ID"] == json.loads(body)["request_id"]
    assert server.stop() == 0
    lines = [json.loads(l) for l in server.stdout().splitlines() if l.strip()]  # every line is JSON
    assert all(l["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") and l["message"] for l in lines)
    assert any("Serving model" in l["message"] for l in lines)
    assert any("POST /api/predict" in l["message"] for l in lines)
    recorded = [l for l in lines if l.get("kind") == "prediction"]
    assert [(r["request_id"], r["client_request_id"], r["row"], r["message"]) for r in recorded] == [
        (headers["X-Request-ID"], "live-7", i, "prediction record") for i in (0, 1)]
    access = [l["message"] for l in lines if "POST /api/predict" in l["message"]]
    assert len(access) == 1 and access[0].endswith(f"{headers['X-Request-ID']} live-7")  # the server's id, the client's
    assert recorded[0]["logging.googleapis.com/labels"] == {"iris_record": "prediction"}
    assert recorded[0]["measurements"]["sepal_length"] == 5.1

def test_each_worker_writes_its_own_file(live):
    server, directory = live["files"], live["directory"]
    for i in range(40):
        assert server.request("/api/predict", dict(zip(FEATURES, ROW)), headers={"X-Request-ID": f"r{i}"})[0] == 200
    files = sorted(directory.glob("predictions-*.jsonl"))
    pids = {int(f.stem.rsplit("-", 1)[1]) for f in files}
    days = {record_file_day(f.name)[1] for f in files}  # two, if a midnight fell between the requests
    # the workers write, never the master
    assert 1 <= len(pids) <= 2 and len(files) <= 2 * len(days) and server.proc.pid not in pids
    for f in files:  # named with the host
        day, pid = record_file_day(f.name)[1], int(f.stem.rsplit("-", 1)[1])
        assert f.name == record_file(directory, "prediction", day, pid).name
    assert sorted(r["client_request_id"] for r in records(directory)) == sorted(f"r{i}" for i in range(40))
