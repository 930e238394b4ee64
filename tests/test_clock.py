"""What reads the real clock, under whatever clock the test runs on: records written by the application land in
the day files their times name and all fall in a window that ends now, run ids sort in time order and a prune by age
keeps what was just made, the history says when in UTC. `make test-clock` runs these (and every other test marked
`clock`) again under libfaketime, starting seconds before a new year's midnight, in a time zone 14 hours ahead of
UTC, so that a day and a year end while they run."""
import json, time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import Server, container_command, skip_or_fail

from iris_classifier.app import create_app
from iris_classifier.cli import main, parse_since
from iris_classifier.core import TrainParams, read_history, runs_dir
from iris_classifier.model_training import publish, train_model
from iris_classifier.monitoring import load_reference, read_records, select_window
from iris_classifier.runs import read_runs, runs_to_prune

pytestmark = pytest.mark.clock

ROW = [5.1, 3.5, 1.4, 0.2]

def answer_for(client, seconds:float)->int:
    "Predict one row at a time for `seconds` of the clock; how many rows were answered"
    answered, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        assert client.post("/api/predict", json={"instances": [ROW]}).status_code == 200
        answered += 1
    return answered

def test_records_land_in_the_day_files_their_times_name_and_in_the_window_that_ends_now(published, tmp_path):
    client = create_app({"TESTING": True, "MODEL_DIR": published, "RECORDS_DIR": tmp_path/"records"}).test_client()
    start = datetime.now(timezone.utc)
    answered = answer_for(client, 4)  # long enough for the shifted clock of `make test-clock` to cross midnight
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    files = sorted((tmp_path/"records").glob("predictions-*.jsonl"))
    by_file = {f.name: [json.loads(l) for l in f.read_text().splitlines()] for f in files}
    assert sum(map(len, by_file.values())) == answered
    for name, rows in by_file.items():  # a record's file is the UTC day of its time, whatever the time zone
        assert {r["time"][:10] for r in rows} == {name.split("-", 1)[1][:10]}, name
    window = select_window(read_records(tmp_path/"records"), load_reference(published), parse_since("1d", end), end)
    assert len(window.live) == answered and window.live["time"].min() >= start - timedelta(seconds=1)

NEW_YEAR = datetime(2028, 1, 1, tzinfo=timezone.utc)

def started_before_midnight(tmp:Path, published:Path, lead:timedelta)->tuple[Server, Path]|None:
    """gunicorn as the container runs it, its clock `lead` before the new year (libfaketime), once it answers; None if
    it was not ready in time"""
    libs = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not libs: skip_or_fail("no libfaketime (Debian: apt-get install faketime, or `make system-deps`)")
    tmp.mkdir()
    # 14 hours ahead of UTC: its clocks show the next day at UTC's midnight
    zone, records = "Pacific/Kiritimati", tmp/"records"
    start = (NEW_YEAR - lead).astimezone(ZoneInfo(zone))  # libfaketime reads it as local time
    server = Server(tmp, container_command, dict(IRIS_MODEL_DIR=str(published), WEB_CONCURRENCY="2",
                                                 IRIS_RECORDS_DIR=str(records), TZ=zone, LD_PRELOAD=str(libs[0]),
                                                 FAKETIME=f"{start:@%Y-%m-%d %H:%M:%S}"))
    server.wait()
    assert server.request("/api/predict", {"instances": [ROW]})[0] == 200
    if list(records.glob("predictions-2027-12-31-*.jsonl")): return server, records
    assert server.stop() == 0  # a slow start: midnight came first
    return None

def test_the_server_files_records_by_their_utc_day_across_a_new_years_midnight(published, tmp_path):
    "Answering from seconds before a new year's midnight (UTC) until after it, every record lands in its own day's file"
    # the longer lead only if the server started slowly
    for i, lead in enumerate([timedelta(seconds=15), timedelta(seconds=90)]):
        if started := started_before_midnight(tmp_path/str(i), published, lead): break
    else: pytest.fail("gunicorn did not answer within 90 s of its start")
    server, records = started
    try:
        answered, deadline = 1, time.monotonic() + lead.total_seconds() + 30
        while not list(records.glob("predictions-2028-01-01-*.jsonl")) and time.monotonic() < deadline:
            assert server.request("/api/predict", {"instances": [ROW]})[0] == 200
            answered += 1
        for _ in range(20): answered += server.request("/api/predict", {"instances": [ROW]})[0] == 200
    finally: assert server.stop() == 0
    files = {f.name: [json.loads(l) for l in f.read_text().splitlines()] for f in records.glob("predictions-*.jsonl")}
    assert {name.split("-", 1)[1][:10] for name in files} == {"2027-12-31", "2028-01-01"}, sorted(files)
    for name, rows in files.items(): assert {r["time"][:10] for r in rows} == {name.split("-", 1)[1][:10]}, name
    window = select_window(read_records(records), load_reference(published), NEW_YEAR - timedelta(days=1),
                           NEW_YEAR + timedelta(days=1))
    assert len(window.live) == sum(map(len, files.values())) == answered

def test_runs_sort_in_time_and_a_prune_by_age_keeps_what_was_just_made(trained, tmp_path):
    out = tmp_path/"artifacts"
    publish(trained, out/"model")
    publish(train_model(TrainParams(max_depth=4)), out/"model")
    runs = read_runs(runs_dir(out))
    assert [r["trained_at"] for r in runs] == sorted(r["trained_at"] for r in runs) and len(runs) == 2
    assert runs_to_prune(runs, older_than=timedelta(hours=1)) == []  # nothing is an hour old yet
    assert runs_to_prune(runs, keep=1) == [runs[0]["run_id"]]
    assert main(["prune-runs", "--output-dir", str(out), "--older-than", "1h"]) == 0
    assert len(read_runs(runs_dir(out))) == 2
    times = [datetime.fromisoformat(e["time"]) for e in read_history(out/"model")]
    assert all(t.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - t) < timedelta(minutes=5)
               for t in times)

def test_a_window_that_ends_in_the_future_is_refused_whatever_the_time_zone(tmp_path, capsys):
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    assert main(["monitor", "--records", str(tmp_path), "--since", tomorrow]) == 2
    assert f"--since '{tomorrow}' is not a time in the past" in capsys.readouterr().err
