"""Batch scoring benchmark: `iris-classifier predict` against a plain pandas + scikit-learn script, in one run.

Usage (from the project root):

    .venv/bin/python bench/batch.py                 # 20M rows: about five minutes on 2 cores, 2 GiB of scratch disk
    .venv/bin/python bench/batch.py --big 5000000   # a quicker look

In a scratch directory it publishes a model, writes synthetic flowers (an id and four measurements, like
Iris, seeded) as CSV of 1M, 5M and `--big` rows and as Parquet of `--big` rows (row groups of 1M), then runs:
1. the reference: a 15-line script (`pd.read_csv`, the published scikit-learn model's `predict_proba`,
   `to_csv`) on 5M rows, and the local engine on the same file; wall time and peak RSS (from `wait4`);
2. the local engine, CSV to CSV, on 1M and `--big` rows: peak RSS must be flat and under 300 MiB;
3. the local engine under a pseudo-terminal: seconds from process start to the first drawn progress bar;
4. Parquet to Parquet on `--big` rows: the local engine, then `--engine dask` on a LocalCluster of one and
   of two single-threaded workers; throughput is the rows/s of the command's own summary (the scoring, not
   the cluster's start), and the Dask output must equal the local engine's, sorted by id.
It prints the measurements and the targets as ratios, and exits 1 if a target is missed.
"""
import argparse, fcntl, os, pty, re, select, struct, subprocess, sys, tempfile, termios, textwrap, time
from pathlib import Path

BIN = Path(sys.executable).parent
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
REFERENCE = textwrap.dedent("""\
    import sys
    import pandas as pd
    from iris_classifier.pipeline import load_published_model
    src, dest, model = sys.argv[1:]
    pipe, _ = load_published_model(model)
    df = pd.read_csv(src)
    features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    proba = pipe.predict_proba(df[features])
    df["predicted_species"] = pipe.classes_[proba.argmax(1)]
    for i, c in enumerate(pipe.classes_):
        df[f"proba_{c}"] = proba[:, i]
    df.to_csv(dest, index=False)
""")

def flowers(n:int, seed:int=0, block:int=1_000_000):
    "Synthetic flowers in tables of `block` rows: an id and four measurements across the Iris ranges"
    import numpy as np, pyarrow as pa
    rng = np.random.default_rng(seed)
    lo, hi = np.array([4.3, 2.0, 1.0, 0.1]), np.array([7.9, 4.4, 6.9, 2.5])
    for s in range(0, n, block):
        X = np.round(rng.uniform(lo, hi, (min(block, n - s), 4)), 1)
        yield pa.table({"id": np.arange(s, s + len(X)), **{f: X[:, j] for j, f in enumerate(FEATURES)}})

def _inputs(d:Path, big:int)->dict:
    "The inputs' paths, by name"
    return {f"csv{n}": d/f"in{n}.csv" for n in (1_000_000, 5_000_000, big)} | {"parquet": d/f"in{big}.parquet"}

def write_inputs(d:Path, big:int)->dict:
    "Write the CSV and Parquet inputs (in a child process, so that this one stays small); their paths, by name"
    paths = _inputs(d, big)
    subprocess.run([sys.executable, __file__, "--write", str(d), "--big", str(big)], check=True)
    return paths

def _write(paths:dict, big:int):
    "Write the inputs; run in a child process: a child's peak RSS counts its parent's memory at fork"
    import pyarrow.csv as pacsv, pyarrow.parquet as pq
    for key, path in paths.items():
        n = big if key == "parquet" else int(key[3:])
        if key == "parquet":
            with pq.ParquetWriter(path, next(flowers(1)).schema) as w:
                for t in flowers(n): w.write_table(t)
        else:
            with pacsv.CSVWriter(path, next(flowers(1)).schema) as w:
                for t in flowers(n): w.write_table(t)

def run(argv:list, cwd:Path)->tuple[float, float, str]:
    "Run `argv`; wall seconds, peak RSS in MiB, and stderr"
    err = cwd/"stderr.txt"
    start = time.monotonic()
    with open(err, "w") as f: p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=f)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode: sys.exit(f"{argv} failed ({p.returncode}):\n{err.read_text()}")
    return wall, usage.ru_maxrss / 1024, err.read_text()

def rate(stderr:str)->float:
    "Rows per second from the command's summary line"
    return float(re.search(r"\(([\d,]+) rows/s\)", stderr).group(1).replace(",", ""))

def first_bar(argv:list, cwd:Path)->float:
    "Seconds from start to the first progress bar `argv` draws on a pseudo-terminal"
    main, sub = pty.openpty()
    # a terminal 100 columns wide: tqdm draws nothing in zero columns
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    start = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=sub, stdin=subprocess.DEVNULL)
    os.close(sub)
    seen, shown = b"", None
    while shown is None and p.poll() is None:
        if select.select([main], [], [], 0.05)[0]:
            try: seen += os.read(main, 4096)
            except OSError: break
            if b"rows" in seen: shown = time.monotonic() - start
    p.kill(); p.wait(); os.close(main)
    return shown if shown is not None else float("inf")

def same_rows(a:Path, b:Path)->bool:
    "Whether two Parquet outputs hold the same rows, sorted by id"
    import pyarrow.parquet as pq
    ta, tb = (pq.read_table(p).sort_by("id") for p in (a, b))
    return ta.select(ta.column_names).equals(tb.select(ta.column_names))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", type=int, default=20_000_000, help="rows of the large inputs (default: 20M)")
    ap.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the child process that writes the inputs
    args = ap.parse_args()
    big = args.big
    if args.write: return _write(_inputs(args.write, big), big)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        subprocess.run([str(BIN/"iris-classifier"), "train", "--output-dir", str(d/"art")], check=True,
                       capture_output=True)
        model = str(d/"art"/"model")
        paths = write_inputs(d, big)
        predict = lambda src, dest, *more: [str(BIN/"iris-classifier"), "predict", str(src), "-o", str(dest),
                                            "--model-dir", model, *more]
        r = {}
        r["reference 5M"] = run([sys.executable, "-c", REFERENCE, str(paths["csv5000000"]), str(d/"ref.csv"), model], d)
        r["local 5M"] = run(predict(paths["csv5000000"], d/"local5m.csv", "-q"), d)
        r["local 1M"] = run(predict(paths["csv1000000"], d/"local1m.csv", "-q"), d)
        r[f"local {big / 1e6:g}M"] = run(predict(paths[f"csv{big}"], d/"localbig.csv", "-q"), d)
        bar = first_bar(predict(paths[f"csv{big}"], d/"bar.csv"), d)
        pq_local = run(predict(paths["parquet"], d/"local.parquet", "-q"), d)
        on_dask = lambda w: predict(paths["parquet"], d/f"dask{w}.parquet", "-q", "--engine", "dask",
                                    "--workers", str(w))
        dask = {w: run(on_dask(w), d) for w in (1, 2)}
        same = all(same_rows(d/"local.parquet", d/f"dask{w}.parquet") for w in (1, 2))
    for name, (wall, rss, _) in r.items(): print(f"{name:>14}: {wall:6.1f} s, peak RSS {rss:5.0f} MiB")
    print(f"Parquet {big / 1e6:g}M rows, rows/s: local {rate(pq_local[2]):,.0f}; "
          f"dask 1 worker {rate(dask[1][2]):,.0f}; dask 2 workers {rate(dask[2][2]):,.0f} "
          f"(wall with cluster start: {pq_local[0]:.1f} s, {dask[1][0]:.1f} s, {dask[2][0]:.1f} s)")
    rss = [r["local 1M"][1], r[f"local {big / 1e6:g}M"][1]]
    targets = {
        "local / reference wall time on 5M rows <= 0.5": (r["local 5M"][0] / r["reference 5M"][0], lambda x: x <= 0.5),
        f"peak RSS {big / 1e6:g}M / 1M rows <= 1.15 (flat)": (rss[1] / rss[0], lambda x: x <= 1.15),
        f"peak RSS at {big / 1e6:g}M rows <= 300 MiB": (rss[1], lambda x: x <= 300),
        "first progress bar <= 1 s after start": (bar, lambda x: x <= 1.0),
        "dask 2 workers / 1 worker throughput >= 1.5": (rate(dask[2][2]) / rate(dask[1][2]), lambda x: x >= 1.5),
        "dask 2 workers / local throughput >= 0.7": (rate(dask[2][2]) / rate(pq_local[2]), lambda x: x >= 0.7),
        "dask output equals the local engine's": (same, bool),
    }
    for name, (value, ok) in targets.items():
        print(f"{'PASS' if ok(value) else 'MISS'}  {name}: {value if isinstance(value, bool) else round(value, 3)}")
    sys.exit(0 if all(ok(v) for v, ok in targets.values()) else 1)

if __name__ == "__main__": main()
