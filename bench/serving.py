"""Serving benchmark: how much a prediction costs on top of the server's own overhead.

Usage (from the project root; needs Debian's `wrk`: apt-get install wrk):

    .venv/bin/python bench/serving.py                  # about a minute and a half
    .venv/bin/python bench/serving.py --duration 5 --rounds 1   # a quick look

In one run on one machine it
1. starts the production server (gunicorn with webapp/gunicorn.conf.py, the same workers for every
   endpoint) on a free loopback port, serving the published model (or, if there is none, a model trained
   and published into a temporary directory);
2. loads it with wrk, in interleaved rounds (each starting with a different endpoint), on a trivial
   endpoint (GET /healthz: the ceiling of this stack), on POST /api/predict with one row, and on the V2
   infer endpoint with one row, and reports requests/s and p50/p99 latency (the median over rounds), and
   the workers' CPU time per request (Linux /proc);
3. times one prediction in process through the serving module (checks included) and through a plain
   `pipeline.predict` call on a one-row DataFrame.

Targets: each one-row prediction endpoint reaches at least 0.85 of the trivial endpoint's throughput, and
the in-process serving path is no slower than the plain pipeline call. The figures are printed and written
to artifacts/bench/serving.json. It is a measurement, not a test: the exit code is 0 unless something
failed to run; `--check` makes missed targets exit 1 as well.
"""
import argparse, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, timeit, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROW = [5.1, 3.5, 1.4, 0.2]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MIN_THROUGHPUT_RATIO = 0.85

def free_port()->int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def model_dir(tmp:Path)->Path:
    "The published model, or a fresh one published into `tmp`"
    from iris_classifier.core import model_dir as published
    from iris_classifier.model_training import publish_model, read_metadata, train_model
    try:
        read_metadata(published())
        return published().resolve()
    except Exception:
        print("No published model: training one into a temporary directory.", file=sys.stderr)
        publish_model(train_model(), tmp/"model")
        return tmp/"model"

def start_server(port:int, models:Path, workers:int|None, log:Path)->subprocess.Popen:
    "gunicorn as in production, bound to 127.0.0.1:`port`; returns once it is ready"
    env = dict(os.environ, IRIS_MODEL_DIR=str(models))
    if workers: env["WEB_CONCURRENCY"] = str(workers)
    proc = subprocess.Popen([str(BIN/"gunicorn"), "--config", "webapp/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "webapp.wsgi:app"],
                            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None: sys.exit(f"gunicorn exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200: return proc
        except OSError: time.sleep(0.5)
    proc.terminate()
    sys.exit(f"gunicorn did not become ready in 120 s; see {log}")

def lua(method:str, body:dict|None)->str:
    "A wrk script sending `body` as JSON"
    if body is None: return f'wrk.method = "{method}"\n'
    return f'wrk.method = "{method}"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{json.dumps(body)}]]\n'

def to_ms(text:str)->float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

def server_cpu(master:int)->float|None:
    "CPU seconds used so far by the gunicorn workers of `master` (Linux), None elsewhere"
    try:
        kids = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        stats = [Path(f"/proc/{k}/stat").read_text().rsplit(")", 1)[1].split() for k in kids]
    except OSError: return None
    return sum(int(s[11]) + int(s[12]) for s in stats) / os.sysconf("SC_CLK_TCK")

def run_wrk(url:str, script:Path, duration:int, connections:int, threads:int, master:int)->dict:
    "Requests/s, p50/p99 latency (ms) and server CPU time per request (us) of one wrk run; fails on any non-2xx answer"
    cpu = server_cpu(master)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out: sys.exit(f"wrk saw errors for {url}:\n{out}")
    pct = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)$", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    cpu_us = (server_cpu(master) - cpu) / requests * 1e6 if cpu is not None else float("nan")
    return dict(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), p50_ms=to_ms(pct["50"]), p99_ms=to_ms(pct["99"]), cpu_us=round(cpu_us))

def in_process(models:Path, number:int=2000)->dict:
    "Microseconds per one-row prediction: the serving path (checks included) and plain `pipeline.predict`"
    import pandas as pd
    from iris_classifier.serving import load_predictor, predict_rows, read_rows
    p = load_predictor(models)
    record, frame = dict(zip(FEATURES, ROW)), pd.DataFrame([ROW], columns=FEATURES)
    def usec(f): return min(timeit.repeat(f, number=number, repeat=7)) / number * 1e6
    return dict(prediction_path=p.path, serving_us=usec(lambda: predict_rows(p, read_rows([record]))),
                pipeline_predict_us=usec(lambda: p.pipeline.predict(frame)),
                pipeline_predict_with_frame_us=usec(lambda: p.pipeline.predict(pd.DataFrame([ROW], columns=FEATURES))))

def main()->int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the endpoints; medians are reported (default 3)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (default 1, to leave the CPUs to the server)")
    ap.add_argument("--workers", type=int, help="gunicorn workers (default: as in production, WEB_CONCURRENCY or one per CPU)")
    ap.add_argument("--output", type=Path, default=ROOT/"artifacts"/"bench"/"serving.json", help="where to write the figures as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args()
    if not shutil.which("wrk"): sys.exit("wrk is not installed: apt-get install wrk (Debian/Ubuntu)")
    body = dict(zip(FEATURES, ROW))
    endpoints = {"trivial GET /healthz": ("/healthz", "GET", None),
                 "POST /api/predict (1 row)": ("/api/predict", "POST", body),
                 "POST /v2/models/iris-classifier/infer (1 row)": ("/v2/models/iris-classifier/infer", "POST",
                     {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]})}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models, port = model_dir(tmp), free_port()
        server = start_server(port, models, args.workers, tmp/"gunicorn.log")
        try:
            scripts = {}
            for name, (path, method, payload) in endpoints.items():
                scripts[name] = tmp/f"{len(scripts)}.lua"
                scripts[name].write_text(lua(method, payload))
                run_wrk(f"http://127.0.0.1:{port}{path}", scripts[name], 2, args.connections, args.threads, server.pid)  # warm-up
            runs = {name: [] for name in endpoints}
            names = list(endpoints)
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:  # each round starts one endpoint later: no endpoint always runs first
                    path = endpoints[name][0]
                    runs[name].append(run_wrk(f"http://127.0.0.1:{port}{path}", scripts[name], args.duration, args.connections, args.threads, server.pid))
                    print(f"round {r + 1}: {name}: {runs[name][-1]}", file=sys.stderr)
            workers = len(re.findall(r"Booting worker", (tmp/"gunicorn.log").read_text()))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        http = {name: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]} for name, rs in runs.items()}
        local = in_process(models)
    trivial = http["trivial GET /healthz"]
    ratios = {name: round(v["rps"] / trivial["rps"], 3) for name, v in http.items() if not name.startswith("trivial")}
    cpu_ratios = {name: round(trivial["cpu_us"] / v["cpu_us"], 3) for name, v in http.items() if not name.startswith("trivial")}
    speedup = round(local["pipeline_predict_us"] / local["serving_us"], 1)
    ok = all(r >= MIN_THROUGHPUT_RATIO for r in ratios.values()) and local["serving_us"] <= local["pipeline_predict_us"]
    print(f"\nServer: gunicorn, {workers} workers, on {os.cpu_count()} CPUs; wrk -t{args.threads} -c{args.connections}, "
          f"{args.rounds} x {args.duration} s per endpoint, medians over rounds\n")
    print(f"{'endpoint':48s} {'requests/s':>11s} {'p50 ms':>8s} {'p99 ms':>8s} {'vs trivial':>11s} {'server CPU us/req':>18s} {'vs trivial':>11s}")
    for name, v in http.items():
        print(f"{name:48s} {v['rps']:11.0f} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f} {ratios.get(name, 1.0):11.3f} {v['cpu_us']:18.0f} {cpu_ratios.get(name, 1.0):11.3f}")
    print("(throughput ratio: requests/s over the trivial endpoint's; CPU ratio: the trivial endpoint's server CPU per request over this one's."
          " The CPU figure is less disturbed by other load on the machine.)")
    print(f"\nIn process, one row ({local['prediction_path']} path): serving module {local['serving_us']:.1f} us "
          f"(checks included), pipeline.predict(one-row DataFrame) {local['pipeline_predict_us']:.1f} us "
          f"({local['pipeline_predict_with_frame_us']:.1f} us building the DataFrame too): {speedup}x faster")
    print(f"Targets: throughput ratio >= {MIN_THROUGHPUT_RATIO} and serving path no slower than pipeline.predict: {'met' if ok else 'MISSED'}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(dict(workers=workers, cpus=os.cpu_count(), wrk=dict(threads=args.threads, connections=args.connections, duration_s=args.duration, rounds=args.rounds),
                                           http=http, throughput_ratio_vs_trivial=ratios, cpu_ratio_vs_trivial=cpu_ratios, in_process_us=local, targets_met=ok), indent=2))
    print(f"Figures written to {args.output}")
    return 1 if args.check and not ok else 0

if __name__ == "__main__": sys.exit(main())
