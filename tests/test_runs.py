"""Continuous training through `iris-classifier` for real: run records, the champion check, history, rollback, and
training with feedback."""
import json, subprocess, sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from iris_classifier import persistence
from iris_classifier.app import create_app
from iris_classifier.core import FEATURES, TARGET, TrainParams, read_history, read_metadata
from iris_classifier.data_processing import load_training_data
from iris_classifier.model_training import publish, train_model
from iris_classifier.monitoring import feedback_rows, read_records, simulate_records, write_records
from iris_classifier.prediction import load_predictor
from iris_classifier.runs import read_runs

CLI = Path(sys.executable).parent/"iris-classifier"

def cli(*args, cwd):
    return subprocess.run([str(CLI), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)

def snapshot(model:Path)->dict:
    "Every file under the published model directory, with its bytes"
    return {p.relative_to(model).as_posix(): p.read_bytes() for p in sorted(model.rglob("*")) if p.is_file()}

@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    ("A first model, a worse challenger (a stump let past a lowered gate), then a better one, each by "
     "`iris-classifier train`")
    out = tmp_path_factory.mktemp("ct")/"artifacts"
    first = cli("train", "--output-dir", out, cwd=out.parent)
    assert first.returncode == 0, first.stderr[-3000:]
    before_worse = snapshot(out/"model")
    worse = cli("train", "--output-dir", out, "--max-depth", "1", "--min-accuracy", "0.5", cwd=out.parent)
    after_worse = snapshot(out/"model")
    better = cli("train", "--output-dir", out, "--max-depth", "3", cwd=out.parent)
    return out, dict(first=first, worse=worse, better=better), before_worse, after_worse

@pytest.mark.slow
def test_each_run_keeps_its_own_record(three_runs):
    out, procs, *_ = three_runs
    runs = read_runs(out/"runs")
    assert len(runs) == 3 and [r.get("problem") for r in runs] == [None] * 3
    assert [r["params"]["max_depth"] for r in runs] == [None, 1, 3]  # oldest first, nothing overwritten
    for r in runs:
        run = out/"runs"/r["run_id"]
        expected = {"05_model_training.ipynb", "run.json", "metrics.json", "decision_tree.png", "data", "model"}
        assert expected <= {p.name for p in run.iterdir()}
        # the model it trained, published or not
        assert read_metadata(run/"model")["model_version"] == r["model_version"]
    assert [r["published"] for r in runs] == [True, False, True]

@pytest.mark.slow
def test_a_worse_challenger_is_refused_and_the_champion_stays(three_runs):
    out, procs, before, after = three_runs
    worse = procs["worse"]
    assert worse.returncode == 4, worse.stderr[-3000:]
    assert "ChallengerRefusedError" in worse.stderr and "The new model lost to the published model" in worse.stderr
    record = read_runs(out/"runs")[1]
    c = record["challenge"]
    assert c["compared"] and not c["passed"] and c["margin"] < -c["tolerance"]
    assert f"by {-c['margin']:.3f} accuracy" in worse.stderr  # says by how much it lost
    assert after == before  # files and history unchanged

@pytest.mark.slow
def test_a_better_challenger_is_published_and_the_history_grows_by_one(three_runs):
    out, procs, _, after_worse = three_runs
    assert procs["better"].returncode == 0, procs["better"].stderr[-3000:]
    history = read_history(out/"model")
    assert len(history) == 2 and after_worse["history.jsonl"].decode().count("\n") == 1
    runs = read_runs(out/"runs")
    assert [e["run_id"] for e in history] == [runs[0]["run_id"], runs[2]["run_id"]]
    assert runs[2]["challenge"]["compared"] and runs[2]["challenge"]["margin"] >= -runs[2]["challenge"]["tolerance"]
    meta = read_metadata(out/"model")
    # the decision goes with the model
    assert meta["history"]["entry"] == 2 and meta["challenge"] == runs[2]["challenge"]

@pytest.mark.slow
def test_a_new_seed_is_compared_on_every_test_row_and_a_stump_let_past_the_gate_is_refused(tmp_path):
    "As a new user would: train, train with another seed, then a stump with the quality gate switched off"
    out = tmp_path/"artifacts"
    assert cli("train", "--output-dir", out, cwd=tmp_path).returncode == 0
    reseeded = cli("train", "--output-dir", out, "--seed", "7", cwd=tmp_path)
    assert reseeded.returncode == 0, reseeded.stderr[-2000:]
    champion = read_metadata(out/"model")
    c = champion["challenge"]
    assert c["compared"] and c["passed"]
    test_rows = json.loads((out/"runs"/champion["run_id"]/"data"/"data_quality.json").read_text())["split"]["test"]
    assert c["rows"] == test_rows  # the seed moved no row: every test row is shared with the champion
    stump = cli("train", "--output-dir", out, "--max-depth", "1", "--min-accuracy", "0", cwd=tmp_path)
    assert stump.returncode == 4 and "ChallengerRefusedError" in stump.stderr and "McNemar p" in stump.stderr
    assert read_metadata(out/"model") == champion  # the champion stays in force
    refused = [r for r in read_runs(out/"runs") if r["run_id"] != champion["run_id"] and not r["published"]]
    verdict = lambda r: (r["params"]["max_depth"], r["challenge"]["passed"], r["challenge"]["champion_only"] > 0)
    assert [verdict(r) for r in refused] == [(1, False, True)]

@pytest.mark.slow
def test_runs_lists_and_compares(three_runs):
    out, *_ = three_runs
    runs = read_runs(out/"runs")
    table = cli("runs", "--output-dir", out, cwd=out.parent)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "trained", "data"] and len(lines) == 4
    assert [line.split()[0] for line in lines[1:]] == [r["run_id"] for r in runs]
    assert lines[2].rstrip().endswith("no") and lines[3].rstrip().endswith("*") and "(refused)" in lines[2]
    compare = cli("runs", "--output-dir", out, "--compare", runs[0]["run_id"], runs[2]["run_id"][:20], cwd=out.parent)
    assert compare.returncode == 0, compare.stderr
    fields = {line.split()[0]: line.split()[1:] for line in compare.stdout.splitlines()[1:]}
    assert fields["params.max_depth"] == ["null", "3"] and "params.seed" not in fields  # only what differs
    assert "metrics.accuracy" in fields or runs[0]["metrics"]["accuracy"] == runs[2]["metrics"]["accuracy"]

@pytest.mark.slow
def test_rollback_restores_the_previous_model_byte_for_byte_and_the_server_loads_it(three_runs, tmp_path):
    out, *_ = three_runs
    first = read_runs(out/"runs")[0]
    proc = cli("rollback", "--output-dir", out, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    meta = read_metadata(out/"model")
    assert meta["model_version"] == first["model_version"] and meta["history"]["why"] == "rolled back"
    original = out/"runs"/first["run_id"]/"model"
    for name in [meta["model_file"], meta["tree_table"]["file"], meta["reference_file"]["file"]]:
        assert (out/"model"/name).read_bytes() == (original/name).read_bytes(), name
    assert sorted(p.name for p in (out/"model").glob("model-*")) == sorted(p.name for p in original.glob("model-*"))
    client = create_app(dict(TESTING=True, MODEL_DIR=str(out/"model"), RECORDS="off")).test_client()
    served = client.get("/api/model").json
    assert ((served["model_version"], served["history"]["entry"], served["history"]["why"])
            == (first["model_version"], 3, "rolled back"))
    assert load_predictor(out/"model").path == "fast"
    history = cli("history", "--output-dir", out, cwd=out.parent)
    assert history.returncode == 0
    assert [line.split()[0] for line in history.stdout.splitlines()] == ["entry", "1", "2", "3"]
    assert "rolled back" in history.stdout.splitlines()[3] and history.stdout.splitlines()[3].rstrip().endswith("*")

@pytest.mark.clock
def test_a_damaged_history_line_is_reported_not_skipped(published, tmp_path):
    log = published/"history.jsonl"
    log.write_text(log.read_text() + '{"entry": 2, "time": "2026-11-30T07:00:00+00:00", "model_version": "x"\n')
    before = snapshot(published)
    for command in (["history"], ["rollback"]):
        proc = cli(*command, "--model-dir", published, cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout
        assert "Line 2 of history.jsonl is damaged: not JSON" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(persistence.ModelIntegrityError, match="Line 2"):
        publish(train_model(TrainParams(max_depth=3)), published)
    assert snapshot(published) == before  # nothing was promoted over a damaged history

@pytest.mark.clock
def test_a_crash_while_promoting_keeps_the_model_in_force(published, monkeypatch):
    before = snapshot(published)
    def crash(*args, **kwargs): raise OSError("disk full")
    monkeypatch.setattr(persistence, "write_atomic", crash)  # after the files are copied, before the metadata switch
    with pytest.raises(OSError, match="disk full"): publish(train_model(TrainParams(max_depth=3)), published)
    unarchived = lambda files: {k: v for k, v in files.items() if not k.startswith("versions/")}
    assert unarchived(snapshot(published)) == unarchived(before)
    load_predictor(published)

@pytest.fixture(scope="module")
def records(tmp_path_factory, trained):
    "A week of records from the default model, with feedback on about a third of the rows"
    d = tmp_path_factory.mktemp("records")
    publish(trained, d/"model")
    end = datetime(2026, 11, 30, tzinfo=timezone.utc)
    week = simulate_records(load_predictor(d/"model"), trained.test, end - timedelta(days=7), end, n=200, seed=5,
                            shift={"petal_length": 0.35})
    write_records(week, d/"records")
    return d/"records"

@pytest.mark.slow
def test_training_with_feedback_adds_the_labelled_rows(records, tmp_path):
    proc = cli("train", "--output-dir", tmp_path/"out", "--with-feedback", records, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = next((tmp_path/"out"/"runs").iterdir())
    rows = feedback_rows(read_records(records))
    labelled = rows[FEATURES + [TARGET]]
    new = (labelled.drop_duplicates().merge(load_training_data()[0], how="left", indicator=True)
           .query("_merge == 'left_only'"))
    quality = json.loads((run/"data"/"data_quality.json").read_text())["feedback"]
    assert quality["rows_in"] == len(rows) and quality["rows_out"] == len(new) > 0
    assert quality["dropped"]["duplicates"] + quality["dropped"]["already_in_data"] == len(rows) - len(new)
    assert pd.read_csv(run/"feedback_rows.csv")[FEATURES + [TARGET]].equals(labelled)  # kept with the run
    splits = pd.concat([pd.read_csv(run/"data"/"raw_train.csv"), pd.read_csv(run/"data"/"raw_test.csv")])
    assert len(splits) == len(load_training_data()[0]) + len(new)
    assert len(new.merge(splits)) == len(new)  # every new row is in one of the splits
    assert json.loads((run/"run.json").read_text())["data"]["feedback_rows"] == len(new)

@pytest.mark.parametrize("change, message",
                         [(dict(species="tulip"), "Feedback names unknown species ['tulip']"),
                          (dict(request_id="nobody"), "No feedback in the records names a recorded prediction")])
def test_training_with_bad_feedback_fails_clearly_and_trains_nothing(records, tmp_path, change, message):
    bad = tmp_path/"records"
    for f in records.iterdir():
        lines = [json.loads(line) for line in f.read_text().splitlines()]
        (bad/f.name).parent.mkdir(exist_ok=True)
        changed = [dict(r, **change) if r["kind"] == "feedback" else r for r in lines]
        (bad/f.name).write_text("".join(json.dumps(r) + "\n" for r in changed))
    proc = cli("train", "--output-dir", tmp_path/"out", "--with-feedback", bad, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path/"out").exists()  # refused before anything was written

@pytest.mark.clock
def test_prune_runs_names_what_it_removes_and_keeps_the_model_in_force(trained, tmp_path):
    out = tmp_path/"artifacts"
    for i, params in enumerate([TrainParams(), TrainParams(max_depth=1, min_accuracy=0.5), TrainParams(seed=7)]):
        try: publish(train_model(params) if i else trained, out/"model", out/"runs"/f"2026112{i}T090000Z-00000{i}")
        except persistence.IrisError: pass  # the stump is refused; its run stays on record
    rollback = persistence.rollback(out/"model")  # the first run's model is in force again
    names = sorted(p.name for p in (out/"runs").iterdir())
    dry = cli("prune-runs", "--output-dir", out, "--keep", "1", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0
    assert dry.stdout.splitlines() == [f"would remove {out/'runs'/names[1]}",
                                       "1 run(s) and 0 archived version(s) to remove."]
    assert sorted(p.name for p in (out/"runs").iterdir()) == names  # a dry run removes nothing
    proc = cli("prune-runs", "--output-dir", out, "--keep", "1", cwd=tmp_path)
    assert proc.returncode == 0 and f"removing {out/'runs'/names[1]}" in proc.stdout
    # the newest, the one in force
    assert sorted(p.name for p in (out/"runs").iterdir()) == [".pruned", names[0], names[2]]
    # what history and runs --compare tell from "never here"
    assert (out/"runs"/".pruned").read_text() == names[1] + "\n"
    assert read_metadata(out/"model")["run_id"] == names[0] == rollback["run_id"]
    assert cli("prune-runs", "--output-dir", out, cwd=tmp_path).returncode == 2  # neither --keep nor --older-than

@pytest.mark.clock
def test_prune_runs_prunes_the_archive_with_the_runs_and_rollback_says_so(tmp_path):
    out = tmp_path/"artifacts"
    metas = [publish(train_model(TrainParams(max_depth=depth)), out/"model",
                     out/"runs"/f"2026112{i}T090000Z-00000{i}")
             for i, depth in enumerate([None, 4, 3])]
    versions = [m["model_version"] for m in metas]
    assert sorted(p.name for p in (out/"model"/persistence.VERSIONS_DIR).iterdir()) == sorted(versions)
    proc = cli("prune-runs", "--output-dir", out, "--keep", "1", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "2 run(s) and 1 archived version(s) removed."
    assert f"removing {out/'model'/persistence.VERSIONS_DIR/versions[0]}" in proc.stdout
    # in force, and the rollback target
    assert sorted(p.name for p in (out/"model"/persistence.VERSIONS_DIR).iterdir()) == sorted(versions[1:])
    refused = cli("rollback", versions[0], "--output-dir", out, cwd=tmp_path)
    assert refused.returncode == 2 and "its archive was removed" in refused.stderr
    assert cli("rollback", "--output-dir", out, cwd=tmp_path).returncode == 0
    assert read_metadata(out/"model")["model_version"] == versions[1]

def test_history_and_compare_say_which_runs_were_pruned(tmp_path):
    out, ids = tmp_path/"artifacts", ["20261128T090000Z-a1b2c3", "20261129T090000Z-d4e5f6", "20261130T090000Z-0f0f0f"]
    versions = [f"{i[:16]}-{i[-6:]}aa" for i in ids]
    for run_id, version in zip(ids, versions):
        (out/"runs"/run_id).mkdir(parents=True)
        record = dict(run_id=run_id, model_version=version, published=True)
        (out/"runs"/run_id/"run.json").write_text(json.dumps(record))
    (out/"model").mkdir()
    entry = lambda n, version, run_id: dict(entry=n, time=f"2026-11-{27 + n}T09:00:05+00:00", model_version=version,
                                             model_sha256="0" * 8, why="trained", by="ana", run_id=run_id)
    entries = [entry(1, versions[0], ids[0]), entry(2, versions[2], ids[2]),
               entry(3, "20261101T000000Z-c0ffeeaa", "20261101T000000Z-c0ffee")]  # the last trained elsewhere
    (out/"model"/"history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    (out/"model"/"metadata.json").write_text(json.dumps(dict(model_version=versions[2], history=dict(entry=2))))
    pruned = cli("prune-runs", "--keep", "1", "--output-dir", out, cwd=tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    history = cli("history", "--output-dir", out, cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    rows = {line.split()[0]: line for line in history.stdout.splitlines()[1:]}
    assert f"{ids[0]} (pruned)" in rows["1"] and f"{ids[2]} " in rows["2"] and "(pruned)" not in rows["2"]
    assert "20261101T000000Z-c0ffee (not in this runs directory)" in rows["3"]  # trained elsewhere, never pruned here
    compare = cli("runs", "--compare", ids[1][:10], ids[2], "--output-dir", out, cwd=tmp_path)
    assert compare.returncode != 0 and f"Run {ids[1]} was pruned" in compare.stderr
    assert "Traceback" not in compare.stderr
