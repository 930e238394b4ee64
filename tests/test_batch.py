"""Batch scoring for real: the vectorized walk against the served answers, chunking, bad rows, a Dask cluster of real
processes, and the DaskJob manifest."""
import json, signal, subprocess, sys, threading, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, skip_or_fail
from iris_classifier.batch import load_scorer, score_file
from iris_classifier.core import CHUNK_ROWS, FEATURES, MAX_CM, SPECIES
from iris_classifier.persistence import probe_rows, split_rows
from iris_classifier.prediction import load_predictor, predict_rows

BIN = Path(sys.executable).parent
CLI = BIN/"iris-classifier"
PROBA = [f"proba_{s}" for s in SPECIES]

def cli(*args, cwd, timeout=300, **kw):
    "Run the console script in `cwd`"
    return subprocess.run([str(CLI), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)

def flowers(n:int, seed:int=0)->pd.DataFrame:
    "`n` random flowers across the measurement ranges, with an id before and a text column after, to pass through"
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.1, 8.0, (n, 4)).round(2)
    return pd.DataFrame({"id": np.arange(n), **dict(zip(FEATURES, X.T)), "note": [f"n{i}" for i in range(n)]})

def served(published:Path, df:pd.DataFrame)->pd.DataFrame:
    "What the server answers for the rows of `df`: species and probabilities"
    answers = predict_rows(load_predictor(published), df[FEATURES].to_numpy().tolist())
    return pd.DataFrame([{"predicted_species": a["species"], **{f"proba_{c}": p for c, p in a["probabilities"].items()}}
                         for a in answers])

def test_vectorized_scores_equal_the_served_answers(published):
    "On the Iris flowers, random rows up to MAX_CM, and rows on and beside every split threshold"
    p, scorer = load_predictor(published), load_scorer(published)
    rows = probe_rows(2000, seed=7) + split_rows(json.loads((published/p.meta["tree_table"]["file"]).read_text()))
    answers = predict_rows(p, rows)
    proba = scorer.proba(np.array(rows))
    assert proba.tolist() == [list(a["probabilities"].values()) for a in answers]
    assert [SPECIES[i] for i in proba.argmax(1)] == [a["species"] for a in answers]

def test_scored_file_equals_the_served_answers_for_any_chunk_size(published, tmp_path):
    df = flowers(500)
    df.to_csv(tmp_path/"in.csv", index=False)
    df.to_parquet(tmp_path/"in.parquet", row_group_size=64)
    scorer = load_scorer(published)
    outputs = []
    for rows in (1, 7, CHUNK_ROWS):
        score_file(tmp_path/"in.csv", tmp_path/f"out{rows}.csv", scorer, rows=rows, quiet=True)
        outputs.append((tmp_path/f"out{rows}.csv").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    score_file(tmp_path/"in.parquet", tmp_path/"out.parquet", scorer, rows=7, quiet=True)
    score_file(tmp_path/"in.parquet", tmp_path/"out.jsonl", scorer, quiet=True)
    csv_out, pq_out = pd.read_csv(tmp_path/"out1.csv"), pd.read_parquet(tmp_path/"out.parquet")
    js_out = pd.read_json(tmp_path/"out.jsonl", lines=True)
    expected = pd.concat([df, served(published, df)], axis=1)
    for out in (csv_out, pq_out, js_out): pd.testing.assert_frame_equal(out, expected, check_dtype=False)

BAD_KINDS = {  # a bad row of each kind, written from a good row's values, and the reason the rejects file must give
    "missing": (lambda v: v[:2] + [""] + v[3:], "sepal_width is missing"),
    "non-numeric": (lambda v: v[:3] + ["1,4".replace(",", ";")] + v[4:], "petal_length is not a number (got '1;4')"),
    "non-positive": (lambda v: v[:4] + ["-0.2"] + v[5:], "petal_width must be greater than 0 (got -0.2)"),
    "absurd": (lambda v: v[:1] + ["510"] + v[2:], f"sepal_length must be at most {MAX_CM:g} cm (got 510)"),
    "too few columns": (lambda v: v[:4], "has 4 columns, not 6"),
    "too many columns": (lambda v: v + ["x"], "has 7 columns, not 6"),
}

def bad_file(path:Path, n:int=3000)->tuple[pd.DataFrame, list[tuple[int, str]]]:
    "A CSV of `n` rows, 1% of them bad in each way; the good rows, and the (line, reason) of each bad one"
    df, kinds = flowers(n, seed=3), list(BAD_KINDS.values())
    lines, good, rejects = ["id," + ",".join(FEATURES) + ",note"], [], []
    for i, row in df.astype(str).iterrows():
        values = row.tolist()
        if i % 100 < len(kinds):  # 1% of rows of each kind
            make, why = kinds[i % 100]
            values = make(values)
            rejects.append((len(lines) + 1, why))
        else: good.append(i)
        lines.append(",".join(values))
    path.write_text("\n".join(lines) + "\n")
    return df.loc[good].reset_index(drop=True), rejects

def test_skip_rejects_exactly_the_bad_rows_with_their_lines_and_scores_the_rest(published, tmp_path):
    good, rejects = bad_file(tmp_path/"in.csv")
    proc = cli("predict", "in.csv", "-o", "out.parquet", "--on-bad-rows", "skip", "--chunk-rows", "1000",
               "--model-dir", published, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(tmp_path/"out.rejects.csv")
    assert list(zip(got["line"], got["reason"])) == rejects and len(rejects) == 6 * 30
    out = pd.read_parquet(tmp_path/"out.parquet")
    pd.testing.assert_frame_equal(out.astype({"id": int}), pd.concat([good, served(published, good)], axis=1),
                                  check_dtype=False)
    assert f"Scored {len(good):,} row(s) and rejected {len(rejects)}" in proc.stderr

def test_fail_names_the_first_bad_line_and_writes_no_output(published, tmp_path):
    _, rejects = bad_file(tmp_path/"in.csv")
    proc = cli("predict", "in.csv", "-o", "out.csv", "--model-dir", published, cwd=tmp_path)
    assert proc.returncode == 2 and f"Line {rejects[0][0]}: {rejects[0][1]}" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["in.csv"]

def test_stdin_to_stdout(published, tmp_path):
    df = flowers(50)
    proc = cli("predict", "-", "--model-dir", published, cwd=tmp_path, input=df.to_csv(index=False))
    assert proc.returncode == 0, proc.stderr
    (tmp_path/"out.csv").write_text(proc.stdout)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path/"out.csv"), pd.concat([df, served(published, df)], axis=1),
                                  check_dtype=False)

## A real Dask cluster on localhost: a scheduler and two single-threaded worker processes

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    "`dask scheduler` and two `dask worker` processes; yields the scheduler's address and the workers' processes"
    pytest.importorskip("distributed")
    tmp = tmp_path_factory.mktemp("dask")
    file, log = tmp/"scheduler.json", open(tmp/"cluster.log", "w")
    dask = [str(BIN/"dask")]
    scheduler = dask + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(file)]
    procs = [subprocess.Popen(scheduler, stdout=log, stderr=log, cwd=tmp)]
    worker = dask + ["worker", "--scheduler-file", str(file), "--nthreads", "1", "--memory-limit", "1GiB",
                     "--no-dashboard", "--no-nanny"]
    try:
        for _ in range(600):
            if file.exists() and file.stat().st_size: break
            time.sleep(0.1)
        procs += [subprocess.Popen(worker + ["--name", f"w{i}"], stdout=log, stderr=log, cwd=tmp) for i in range(2)]
        from distributed import Client
        with Client(scheduler_file=str(file), timeout="60s") as c:
            c.wait_for_workers(2, timeout=60)
            address = c.scheduler.address
        yield address, procs[1:]
    finally:
        for p in reversed(procs):
            if p.poll() is None: p.terminate()
        for p in procs:
            try: p.wait(timeout=5)
            except subprocess.TimeoutExpired: p.kill()
        log.close()

def test_the_cluster_scores_like_the_local_engine(cluster, published, tmp_path):
    address, _ = cluster
    df = flowers(60_000, seed=5).sample(frac=1, random_state=0)
    df.to_parquet(tmp_path/"in.parquet", row_group_size=10_000, index=False)
    score_file(tmp_path/"in.parquet", tmp_path/"local.parquet", load_scorer(published), quiet=True)
    proc = cli("predict", "in.parquet", "-o", "scored.parquet", "--engine", "dask", "--scheduler", address,
               "--model-dir", published, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    parts = sorted(p.name for p in (tmp_path/"scored.parquet").iterdir())
    assert parts == ["_SUCCESS"] + [f"part-{i:05d}.parquet" for i in range(6)], parts  # one part per row group
    local = pd.read_parquet(tmp_path/"local.parquet").sort_values("id", ignore_index=True)
    dask = pd.read_parquet(tmp_path/"scored.parquet").sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(dask, local)

def test_a_worker_killed_mid_job_still_scores_every_row_exactly_once(cluster, published, tmp_path):
    """The job completes, every row once: the scheduler recomputes the lost worker's tasks on the other one,
    and each part is written under a temporary name and renamed, so a task that runs twice leaves one part.
    (Were one task's workers killed three times, Dask's `KilledWorker` would fail the job and the output
    directory would be removed; were every worker lost, the job would wait for a worker to join.)"""
    from distributed import Client
    from iris_classifier.batch_dask import score_dask
    address, workers = cluster
    n = 300_000
    flowers(n, seed=6)[["id"] + FEATURES].to_csv(tmp_path/"in.csv", index=False)
    done = {}
    with Client(address, timeout="30s") as client:
        score = lambda: score_dask(client, str(tmp_path/"in.csv"), str(tmp_path/"out.csv"), load_scorer(published),
                                   quiet=True, blocksize=128 << 10)
        job = threading.Thread(target=lambda: done.update(s=score()))
        job.start()
        out = tmp_path/"out.csv"
        for _ in range(1200):  # kill once a few parts are written, while most are still to come
            if out.exists() and len(list(out.glob("part-*.csv"))) >= 3: break
            time.sleep(0.05)
        assert job.is_alive(), "the job ended before a worker could be killed"
        workers[1].send_signal(signal.SIGKILL)
        job.join(timeout=240)
    assert not job.is_alive() and done["s"].rows == n
    parts = sorted(out.glob("part-*.csv"))
    assert len(parts) > 10 and not list(out.glob("*.tmp"))
    ids = pd.concat(pd.read_csv(p, usecols=["id"]) for p in parts)["id"]
    assert sorted(ids) == list(range(n))

## The DaskJob manifest

def closed(schema:dict)->dict:
    "The CRD's schema as the API server applies it: unknown fields are errors, not silently dropped"
    if isinstance(schema, dict):
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        for v in schema.values(): closed(v)
    elif isinstance(schema, list):
        for v in schema: closed(v)
    return schema

def test_daskjob_manifest_matches_the_operators_crd(tmp_path):
    crds = list(Path(sys.prefix).glob("lib/python*/site-packages/dask_kubernetes/operator/deployment/helm/"
                                      "dask-kubernetes-operator/crds/daskjob.yaml"))
    if not crds:
        skip_or_fail("dask-kubernetes (its DaskJob CRD) is not installed in the project environment (make setup)")
    crd = yaml.safe_load(crds[0].read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["served"]]
    schema = version["schema"]["openAPIV3Schema"]
    closed(schema["properties"]["spec"])  # apiVersion, kind and metadata are the API server's, outside the CRD's schema
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#"}
    (tmp_path/"schema.json").write_text(json.dumps(dict(schema, **draft7)))
    validate = lambda path: subprocess.run([str(BIN/"check-jsonschema"), "--schemafile", str(tmp_path/"schema.json"),
                                            str(path)], capture_output=True, text=True, timeout=120)
    proc = validate(ROOT/"ops/dask/daskjob.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = yaml.safe_load((ROOT/"ops/dask/daskjob.yaml").read_text())
    typo = json.loads(json.dumps(job))
    typo["spec"]["cluster"]["spec"]["worker"]["replica"] = typo["spec"]["cluster"]["spec"]["worker"].pop("replicas")
    (tmp_path/"typo.yaml").write_text(yaml.safe_dump(typo))
    assert "'replica' was unexpected" in validate(tmp_path/"typo.yaml").stdout  # the check can fail
    assert (job["apiVersion"], job["kind"]) == (f"{crd['spec']['group']}/{version['name']}",
                                                crd["spec"]["names"]["kind"])
    args = job["spec"]["job"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["iris-classifier", "predict"] and "dask" in args

def test_daskjob_pod_specs_are_valid_pods_strictly(tmp_path):
    "The CRD embeds PodSpecs; kubernetes-validate --strict checks each as the Pod it becomes"
    job = yaml.safe_load((ROOT/"ops/dask/daskjob.yaml").read_text())
    cluster = job["spec"]["cluster"]["spec"]
    specs = [job["spec"]["job"]["spec"], cluster["worker"]["spec"], cluster["scheduler"]["spec"]]
    pods = [dict(apiVersion="v1", kind="Pod", metadata=dict(name=f"pod-{i}"), spec=s) for i, s in enumerate(specs)]
    (tmp_path/"pods.yaml").write_text(yaml.safe_dump_all(pods))
    validator = BIN/"kubernetes-validate"
    if not validator.exists():
        skip_or_fail("kubernetes-validate is not installed in the project environment (make setup)")
    proc = subprocess.run([str(validator), "--strict", str(tmp_path/"pods.yaml")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.count("passed") == 3, proc.stdout + proc.stderr
