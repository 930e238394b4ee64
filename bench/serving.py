"""Serving benchmark: the production server's cold start, memory and throughput, against a minimal app and another
commit.

Usage (from the project root; needs Debian's `wrk`: apt-get install wrk):

    .venv/bin/python bench/serving.py                     # about eight minutes on 2 cores
    .venv/bin/python bench/serving.py --against main      # before/after, side by side: about ten minutes
    .venv/bin/python bench/serving.py --duration 3 --rounds 1 --starts 3 --records-rounds 5   # a quick look
    .venv/bin/python bench/serving.py --servers --rounds 4 --starts 7   # the HTTP layers: about seven minutes

In one run on one machine, all traffic on 127.0.0.1, it
1. trains a model for the checkout under test, and for `--against REV` (checked out into a temporary
   `git worktree`, removed afterwards), each with that checkout's own code: `iris-classifier train
   --output-dir TMP`, run by this interpreter with PYTHONPATH and the working directory set to the checkout;
2. starts each checkout's server the same way, `iris-classifier serve --port P --workers 2 --model-dir
   TMP/model`, and loads it with wrk on a trivial endpoint (GET /healthz: the ceiling of this stack), on
   POST /api/predict with one row, on the V2 infer endpoint with one row in JSON, and on the same endpoint
   with one row in the binary tensor data extension as Triton's client sends it (FP32 input, binary output;
   only checkouts whose iris_classifier/v2.py knows Inference-Header-Content-Length serve it, older ones
   report it absent), in interleaved rounds (each round starts one endpoint later; the servers take turns
   on each endpoint, A B then B A, so drift in the machine's speed hits all alike); it reports requests/s,
   p50/p99 latency (medians over rounds) and the workers' CPU time per request (Linux /proc);
3. prediction records on and off: a second server of the current checkout, with IRIS_RECORDS=off, runs beside
   the first (IRIS_RECORDS=dir, the local default) and is loaded right after it in the rounds above, on the two
   JSON one-row prediction endpoints; then the two, and a second start of the records-off server (the
   control), take `--records-rounds` rounds of short runs (`--records-duration` s) on each of them, one
   right after the other in rotating order, all three started afresh every 4 rounds. It reports the median and
   quartiles of the rounds' ratios to records off, on / off and control / off (requests/s, and CPU time per
   request), the records the first server wrote (the proof that it recorded), and the time one record takes to write in
   process. Rounds of short runs rather than the medians of a few long runs: this machine's speed drifts by 10
   to 20 % from one second to the next, and runs seconds apart see the same drift; fresh starts because two
   starts of the same server can differ by a few percent for as long as they run; the control because the
   ratio of two equal servers shows what measuring alone does to a ratio;
4. cold start and memory: starts each checkout's server and a minimal Flask + scikit-learn app
   (bench/minimal_app.py: a pickled DecisionTreeClassifier; same gunicorn config, the current checkout's,
   and the same worker count) `--starts` times, alternating between them, and measures the seconds from
   process start to the first 200 on POST /api/predict; then, once the workers are idle and have answered a
   few requests, the PSS summed over the gunicorn master and its workers (/proc/PID/smaps_rollup; RSS too,
   for information); medians over the starts;
5. times one prediction in process through the package's prediction path (checks included) and through a
   plain `pipeline.predict` call on a one-row DataFrame.

The children keep their compiled bytecode in a temporary directory (PYTHONPYCACHEPREFIX, with
PYTHONDONTWRITEBYTECODE cleared), as the container image ships its modules compiled; training and the
throughput servers fill it before any start is counted. Every server writes its prediction records into the
temporary directory too (IRIS_RECORDS_DIR), never into the checkout.

Targets: each one-row prediction endpoint reaches at least 0.85 of the trivial endpoint's throughput; the
in-process prediction path is no slower than the plain pipeline call; the cold start takes at most 1.5 times
the minimal app's; the PSS is at most the minimal app's. With `--against`, each one-row endpoint also keeps
at least 0.97 of the other commit's requests/s: the 3 % allows for noise between two runs of the same code
on a quiet machine, it is not a budget for slowing down. That comparison is of the same work: the other
commit's server runs with IRIS_RECORDS=off (a commit from before records ignores it) and is compared with the
current records-off server on the two endpoints measured both ways, since recording has a budget of its own,
the next target. With records on, each of the two endpoints keeps at least 0.95 of its requests/s with
records off (the median of the rounds' ratios). The figures are printed and written to
artifacts/bench/serving.json. It is a measurement, not a test: the exit code is 0 unless something failed to
run; `--check` makes missed targets exit 1 as well.

With `--servers` it measures only the HTTP layers, on the same application with records off: Flask's
development server (`flask run`, the seed's shape: the reference, 1.00x), the minimal app under gunicorn's
sync workers, and the package's application under gunicorn's sync workers (the default until granian,
started by `iris-classifier serve --server gunicorn`), gunicorn's `gthread` workers (4 threads, keep-alive)
and granian (`iris-classifier serve`, the default), two workers each. wrk loads each on one-row POST
/api/predict and V2 JSON infer with keep-alive connections (wrk's default), and on /api/predict with a new
connection per request (`Connection: close`), in the interleaved rounds above; then the two defaults are
started `--starts` times each, as in step 4. Targets, all ratios within the run: granian's requests/s on
/api/predict at least 6x Flask dev's and 2x the minimal app's; on V2 infer at least 5x Flask dev's; with a
new connection per request at least gunicorn sync's; its cold start and PSS at most gunicorn sync's.
"""
import argparse, importlib, json, os, re, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, time
import timeit, urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
ROW = [5.1, 3.5, 1.4, 0.2]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BODY = dict(zip(FEATURES, ROW))
CLI = "import sys; from iris_classifier.cli import main; sys.exit(main())"
MIN_THROUGHPUT_RATIO, MAX_COLD_START_RATIO, MAX_MEMORY_RATIO = 0.85, 1.5, 1.0
MIN_AGAINST_RATIO, MIN_RECORDS_RATIO = 0.97, 0.95
# seconds: a server that is not answering by then, or a training run, has failed
READY_TIMEOUT, TRAIN_TIMEOUT = 120, 600
# seconds between attempts while a server starts: starts take about 0.3 s, so a coarser step (it was 0.05) would
# round them to multiples of itself and decide a ratio of two of them by rounding
POLL_INTERVAL = 0.005
STARTED = time.monotonic()

def json_request(body:dict)->tuple[bytes, dict]:
    "Body and headers of a JSON request"
    return json.dumps(body).encode(), {"Content-Type": "application/json"}

def v2_binary_request(row:list[float], datatype:str="FP32", binary_output:bool=True)->tuple[bytes, dict]:
    ("Body and headers of a one-row V2 inference request in the binary tensor data extension, as Triton's client "
     "sends it")
    blob = struct.pack({"FP32": "<4f", "FP64": "<4d"}[datatype], *row)
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": datatype, "parameters": {"binary_data_size": len(blob)}}
    header = json.dumps({"inputs": [tensor], "parameters": {"binary_data_output": binary_output}},
                        separators=(",", ":")).encode()
    return header + blob, {"Inference-Header-Content-Length": str(len(header))}

TRIVIAL, PREDICT = "trivial GET /healthz", "POST /api/predict (1 row)"
V2_JSON = "POST /v2/models/iris-classifier/infer (1 row)"
V2_BINARY = "POST /v2/models/iris-classifier/infer (1 row, binary)"
INFER = "/v2/models/iris-classifier/infer"
ENDPOINTS = {TRIVIAL: ("/healthz", "GET", None, None), # path, method, body, headers
             PREDICT: ("/api/predict", "POST", *json_request(BODY)),
             V2_JSON: (INFER, "POST", *json_request({"inputs": [{"name": "input-0", "shape": [1, 4],
                                                                 "datatype": "FP64", "data": ROW}]})),
             V2_BINARY: (INFER, "POST", *v2_binary_request(ROW))}
# As clients that do not keep connections open (--servers): wrk reconnects after each answer
PREDICT_CLOSE = "POST /api/predict (1 row, a new connection each)"
ENDPOINTS[PREDICT_CLOSE] = ("/api/predict", "POST", ENDPOINTS[PREDICT][2],
                            {**ENDPOINTS[PREDICT][3], "Connection": "close"})
RECORDED = (PREDICT, V2_JSON)  # the endpoints measured with prediction records on and off

@dataclass
class App:
    "One server to measure"
    name:str # what the report calls it
    argv:Callable[[int], list[str]] # its command line, for a port
    cwd:Path # where it runs
    env:dict # its environment
    endpoints:tuple[str, ...]=() # the ENDPOINTS wrk loads it on

## Checkouts, models and servers

def git(*args:str)->str:
    "The output of `git args` in the checkout under test; exits with git's message if it fails"
    r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=120)
    if r.returncode: sys.exit(f"git {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout.strip()

@contextmanager
def worktree(rev:str, # the commit to check out
             dest:Path, # where; removed on leaving
            ):
    "A temporary detached `git worktree` of `rev`"
    git("worktree", "add", "--detach", "--quiet", str(dest), rev)
    try: yield dest
    finally: git("worktree", "remove", "--force", str(dest))

def child_env(checkout:Path, # whose package the child imports
              cache:Path, # where bytecode is cached
             )->dict:
    ("The environment of every child: `checkout` first on the path, compiled modules cached in `cache`, prediction "
     "records beside it")
    # A shared metrics directory would be wiped by each server's start; the worker count is given on the command line;
    # the records settings are the bench's own (below).
    dropped = ("PYTHONDONTWRITEBYTECODE", "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY", "IRIS_RECORDS",
               "IRIS_RECORDS_DIR", "IRIS_RECORDS_SAMPLE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    # Every server records as it does locally by default (IRIS_RECORDS=dir), but into the bench's temporary directory:
    # left to itself it would write into the checkout's artifacts/records.
    return dict(env, PYTHONPATH=str(checkout), PYTHONPYCACHEPREFIX=str(cache), IRIS_RECORDS="dir",
                IRIS_RECORDS_DIR=str(cache.parent/"records"))

def cli(*args:str)->list[str]:
    "`iris-classifier args`, run by this interpreter so that PYTHONPATH picks the checkout"
    return [sys.executable, "-c", CLI, *args]

def train(checkouts:dict[str, Path], # name -> checkout
          tmp:Path, # where models and logs go
          cache:Path, # bytecode cache
         )->dict[str, Path]: # name -> published model directory
    "Train one model per checkout with its own code, all at once (the time is not measured)"
    with ExitStack() as stack:
        start = lambda name, checkout: started(cli("train", "--output-dir", str(tmp/f"train-{name}")), checkout,
                                               child_env(checkout, cache), tmp/f"train-{name}.log")
        procs = {name: stack.enter_context(start(name, checkout))[0] for name, checkout in checkouts.items()}
        for name, proc in procs.items():
            if proc.wait(timeout=TRAIN_TIMEOUT): sys.exit(f"training for {name} failed; see {tmp}/train-{name}.log")
    return {name: tmp/f"train-{name}"/"model" for name in checkouts}

def served(name:str, # what the report calls it
           checkout:Path, # whose CLI starts it
           models:Path, # the model it serves
           cache:Path, # bytecode cache
           workers:int, # gunicorn workers
          )->App:
    "A checkout's production server, started through its CLI, loaded on every endpoint it serves"
    argv = lambda port: cli("serve", "--port", str(port), "--workers", str(workers), "--model-dir", str(models))
    endpoints = (TRIVIAL, PREDICT, V2_JSON) + ((V2_BINARY,) if serves_binary(checkout) else ())
    return App(name, argv, checkout, child_env(checkout, cache), endpoints)

def serves_binary(checkout:Path)->bool:
    ("Whether `checkout` answers V2 requests in the binary tensor data extension (older commits answer them with an "
     "error)")
    v2 = checkout/"iris_classifier"/"v2.py"
    return v2.exists() and "Inference-Header-Content-Length" in v2.read_text()

def records_off(app:App)->App:
    "`app` with prediction records off, loaded only on the endpoints compared with records on"
    return replace(app, name=f"{app.name}, records off", env=dict(app.env, IRIS_RECORDS="off"), endpoints=RECORDED)

def records_written(directory:Path)->int:
    "The prediction records in `directory`, one line each"
    return sum(len(f.read_bytes().splitlines()) for f in directory.glob("predictions-*.jsonl"))

def fit_minimal(dest:Path)->Path:
    "A DecisionTreeClassifier fitted on scikit-learn's Iris data, joblib-dumped to `dest`"
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier
    iris = load_iris()
    joblib.dump(DecisionTreeClassifier(random_state=0).fit(iris.data, iris.target_names[iris.target]), dest)
    return dest

def minimal(model:Path, # the joblib-dumped tree
            cache:Path, # bytecode cache
            workers:int, # gunicorn workers
           )->App:
    "bench/minimal_app.py under the current checkout's gunicorn config"
    argv = lambda port: [sys.executable, "-m", "gunicorn", "--config", "python:iris_classifier.gunicorn_conf",
                         "--bind", f"127.0.0.1:{port}",
                         "--workers", str(workers), "--chdir", str(ROOT/"bench"), "minimal_app:app"]
    return App("minimal", argv, ROOT, dict(child_env(ROOT, cache), IRIS_BENCH_MODEL=str(model)))

## Processes

def machine_load()->dict:
    "Load average (1 and 5 min) and, where Linux reports it, the share of the last minute some task waited for a CPU"
    try: pressure = float(re.search(r"avg60=([\d.]+)", Path("/proc/pressure/cpu").read_text()).group(1))
    except (OSError, AttributeError): pressure = None
    return dict(load_1min=round(os.getloadavg()[0], 2), load_5min=round(os.getloadavg()[1], 2),
                cpu_pressure_60s_pct=pressure)

def progress(message:str):
    "`message` on stderr, after the seconds since the bench started"
    print(f"[{time.monotonic() - STARTED:5.0f} s] {message}", file=sys.stderr)

def free_port()->int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def stop(proc:subprocess.Popen):
    "SIGTERM `proc` (a server's master, as Kubernetes would); then SIGKILL whatever is left of its process group"
    proc.send_signal(signal.SIGTERM)
    try: proc.wait(timeout=30)
    except subprocess.TimeoutExpired: pass
    try: os.killpg(proc.pid, signal.SIGKILL)  # its own session (see `started`): only what this bench started
    except ProcessLookupError: pass
    proc.wait(timeout=10)

@contextmanager
def started(argv:list[str], # the command
            cwd:Path, # where it runs
            env:dict, # its environment
            log:Path, # its output
           ):
    "Start `argv` in a session of its own; yield it and the monotonic time just before it started; stop it on leaving"
    # Its own session: Ctrl-C reaches only this process, which then stops the children in order.
    with log.open("w") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try: yield proc, t0
        finally: stop(proc)

def running(app:App, # what to start
            port:int, # on 127.0.0.1
            log:Path, # its output
           ):
    "`started` for a server"
    return started(app.argv(port), app.cwd, app.env, log)

def post(port:int, timeout:float=10)->int:
    "The status of one POST /api/predict with one row"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/predict", json.dumps(BODY).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r: return r.status

def first_answer(proc:subprocess.Popen, # the server
                 port:int, # where it listens
                 t0:float, # when it started (`time.monotonic`)
                 log:Path, # its output, named if it fails
                )->float:
    "Seconds from `t0` to the first 200 on POST /api/predict"
    while (waited := time.monotonic() - t0) < READY_TIMEOUT:
        if proc.poll() is not None: sys.exit(f"the server exited with {proc.returncode}; see {log}")
        try:
            if post(port, timeout=READY_TIMEOUT - waited) == 200: return time.monotonic() - t0
        except OSError: time.sleep(POLL_INTERVAL)  # not listening yet, or not answering 200 yet
    sys.exit(f"the server did not answer in {READY_TIMEOUT} s; see {log}")

def children(pid:int)->list[int]:
    "The child processes of `pid` (Linux /proc), read thread by thread: a thread that ends meanwhile has none"
    return [int(c) for f in Path(f"/proc/{pid}/task").glob("*/children") for c in read_or_empty(f).split()]

def read_or_empty(path:Path)->str:
    "The text of `path`, or '' if it has gone (a thread or process of /proc that ended)"
    try: return path.read_text()
    except OSError: return ""

def server_cpu(master:int)->float|None:
    "CPU seconds used so far by the server `master` and its workers (Linux), None elsewhere"
    if not Path(f"/proc/{master}/stat").exists(): return None
    ticks = sum(int(s[11]) + int(s[12]) for s in map(proc_stat, [master, *children(master)]) if s)
    return ticks / os.sysconf("SC_CLK_TCK")

def proc_stat(pid:int)->list[str]|None:
    "The fields of /proc/PID/stat after the command name; None if the process has gone (a worker replaced meanwhile)"
    try: return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError: return None

def settle(master:int, # the gunicorn master
           workers:int, # how many workers it should have
           timeout:float=60, # seconds before giving up (with a warning)
          ):
    "Wait until `master` has all its workers and they used no CPU for half a second (all booted, idle)"
    end, before = time.monotonic() + timeout, server_cpu(master)
    while time.monotonic() < end:
        time.sleep(0.5)
        now = server_cpu(master)
        if len(children(master)) == workers and None not in (now, before) and now - before < 0.02: return
        before = now
    print(f"warning: the workers of {master} did not settle in {timeout} s; memory measured anyway", file=sys.stderr)

def memory(master:int)->dict:
    "PSS and RSS (MiB) summed over `master` and its workers, from /proc/PID/smaps_rollup"
    sizes = lambda p: dict(re.findall(r"^(Pss|Rss):\s+(\d+) kB", Path(f"/proc/{p}/smaps_rollup").read_text(), re.M))
    kb = [sizes(p) for p in [master, *children(master)]]
    mib = lambda field: round(sum(int(k[field]) for k in kb) / 1024, 1)
    return dict(pss_mib=mib("Pss"), rss_mib=mib("Rss"), processes=len(kb))

## Cold start and memory

def cold_start(app:App, # the server
               workers:int, # its worker count
               log:Path, # its output
              )->dict:
    "Start `app` once: seconds to its first prediction, then its memory once idle after a few more answers"
    port = free_port()
    with running(app, port, log) as (proc, t0):
        seconds = first_answer(proc, port, t0, log)
        settle(proc.pid, workers)
        for _ in range(10): post(port)
        return dict(seconds=round(seconds, 3), **memory(proc.pid))

def cold_starts(apps:list[App], # the servers, started in this order, again and again
                n:int, # starts of each
                workers:int, # their worker count
                tmp:Path, # for the logs
               )->dict[str, dict]: # name -> medians and every start
    "Medians over `n` alternating starts of each app"
    runs = {a.name: [] for a in apps}
    for i in range(n):
        for a in apps:
            runs[a.name].append(cold_start(a, workers, tmp/f"start-{a.name}.log"))
            progress(f"start {i + 1}: {a.name}: {runs[a.name][-1]}")
    medians = lambda rs: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "pss_mib", "rss_mib")}
    return {name: dict(**medians(rs), starts=rs) for name, rs in runs.items()}

## Throughput

def lua(method:str, body:bytes|None=None, headers:dict|None=None)->str:
    "A wrk script sending `body` (any bytes: escaped for Lua) with `headers`"
    out = f'wrk.method = "{method}"\n' + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
    if body is None: return out
    escaped = "".join("\\%03d" % b for b in body)  # Lua decimal escapes: any byte survives the script
    return out + f'wrk.body = "{escaped}"\n'

def to_ms(text:str)->float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

def run_wrk(url:str, script:Path, duration:int, connections:int, threads:int, master:int)->dict:
    "Requests/s, p50/p99 latency (ms) and server CPU time per request (us) of one wrk run; fails on any non-2xx answer"
    cpu = server_cpu(master)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    if "Non-2xx" in out or "Socket errors" in out: sys.exit(f"wrk saw errors for {url}:\n{out}")
    pct = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)$", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    cpu_us = (server_cpu(master) - cpu) / requests * 1e6 if cpu is not None else float("nan")
    return dict(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), p50_ms=to_ms(pct["50"]),
                p99_ms=to_ms(pct["99"]), cpu_us=round(cpu_us))

def rotated(items:list, k:int)->list:
    "`items` starting at position `k` (modulo their number)"
    return items[k % len(items):] + items[:k % len(items)]

def load_rounds(servers:dict[str, tuple[int, int, tuple]], # name -> (port, master pid, the endpoints it is loaded on)
                scripts:dict[str, Path], # endpoint -> wrk script
                args:argparse.Namespace, # --rounds, --duration, --connections, --threads
               )->dict[str, dict[str, list]]: # name -> endpoint -> one result per round
    "wrk rounds: each starts one endpoint later, and the servers take turns on each endpoint (A B, then B A)"
    runs, turns = {s: {e: [] for e in es} for s, (_, _, es) in servers.items()}, 0
    for r in range(args.rounds):
        for e in rotated(list(ENDPOINTS), r):
            for s in [s for s in list(servers)[::-1 if turns % 2 else 1] if e in runs[s]]:
                port, pid, _ = servers[s]
                runs[s][e].append(run_wrk(f"http://127.0.0.1:{port}{ENDPOINTS[e][0]}", scripts[e], args.duration,
                                          args.connections, args.threads, pid))
                progress(f"round {r + 1}: {s}: {e}: {runs[s][e][-1]}")
            turns += 1
    return runs

def wrk_scripts(tmp:Path)->dict[str, Path]:
    "One wrk script per endpoint, written into `tmp`"
    scripts = {e: tmp/f"{i}.lua" for i, e in enumerate(ENDPOINTS)}
    for e, (_, method, body, headers) in ENDPOINTS.items(): scripts[e].write_text(lua(method, body, headers))
    return scripts

@contextmanager
def serving(apps:list[App], # the servers, all running at once (only one is loaded at a time)
            scripts:dict[str, Path], # endpoint -> wrk script
            args:argparse.Namespace, # wrk settings
            tmp:Path, # for the logs
           ):
    "Start every app and warm it up on its endpoints; yield name -> (port, master pid, endpoints); stop them on leaving"
    with ExitStack() as stack:
        servers = {}
        for a in apps:
            port, log = free_port(), tmp/f"wrk-{a.name}.log"
            proc, t0 = stack.enter_context(running(a, port, log))
            progress(f"{a.name}: serving on port {port} after {first_answer(proc, port, t0, log):.1f} s")
            servers[a.name] = (port, proc.pid, a.endpoints)
            for e in a.endpoints:
                run_wrk(f"http://127.0.0.1:{port}{ENDPOINTS[e][0]}", scripts[e], 2, args.connections, args.threads,
                        proc.pid)
        yield servers

def throughput(servers:dict[str, tuple[int, int, tuple]], # from `serving`
               scripts:dict[str, Path], # endpoint -> wrk script
               args:argparse.Namespace, # wrk settings
              )->dict[str, dict[str, dict|None]]: # name -> endpoint -> medians over rounds, None where not loaded
    "Each server's requests/s, latency and CPU per request on each of its endpoints"
    runs = load_rounds(servers, scripts, args)
    measured = [e for e in ENDPOINTS if any(e in es for _, _, es in servers.values())]
    median = lambda rs: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]}
    return {s: {e: median(es[e]) if e in es else None for e in measured} for s, es in runs.items()}

ROUNDS_PER_START = 4  # rounds of runs between two fresh starts of the servers compared

def records_rounds(on:App, # the server with records on
                   off:App, # the same server with records off
                   scripts:dict[str, Path], # endpoint -> wrk script
                   args:argparse.Namespace, # --records-rounds, --records-duration, wrk settings
                   tmp:Path, # for the logs
                  )->dict[str, list[dict]]: # endpoint -> per round, each server's `run_wrk` result: {"on": ..., ...}
    ("Rounds of short runs of `on`, `off` and a second start of `off` (the control) on each endpoint of `RECORDED`, "
     "one right after the other")
    # The order rotates from round to round and endpoint to endpoint. The three start afresh every ROUNDS_PER_START
    # rounds, the first to start rotating too: two starts of the same server can differ by a few percent for as long as
    # they run (hash seeds, memory layout), and fresh starts average that out. The control, records off like `off`,
    # shows how far apart two equal servers measure.
    servers3 = dict(on=replace(on, endpoints=RECORDED), off=replace(off, endpoints=RECORDED),
                    control=replace(off, name=f"{off.name}, second start", endpoints=RECORDED))
    rounds = {e: [] for e in RECORDED}
    for first in range(0, args.records_rounds, ROUNDS_PER_START):
        with serving(rotated(list(servers3.values()), first // ROUNDS_PER_START), scripts, args, tmp) as running_now:
            for r in range(first, min(first + ROUNDS_PER_START, args.records_rounds)):
                for i, e in enumerate(rotated(list(RECORDED), r)):
                    done = {}
                    for role in rotated(list(servers3), r + i):
                        port, pid, _ = running_now[servers3[role].name]
                        done[role] = run_wrk(f"http://127.0.0.1:{port}{ENDPOINTS[e][0]}", scripts[e],
                                             args.records_duration, args.connections, args.threads, pid)
                    rounds[e].append(done)
                said = lambda rs: (f"on / off {ratio(rs[-1]['on']['rps'], rs[-1]['off']['rps'])}, control / off "
                                   f"{ratio(rs[-1]['control']['rps'], rs[-1]['off']['rps'])}")
                progress(f"records round {r + 1}: " + "; ".join(f"{e}: {said(rs)}" for e, rs in rounds.items()))
    return rounds

def rounds_summary(rounds:list[dict], # from `records_rounds`, on one endpoint
                   role:str, # "on", or "control"
                  )->dict:
    ("The median and quartiles of the ratios `role` / off of each round (requests/s, and CPU per request), and how "
     "many rounds")
    def spread(values:list[float])->dict:
        q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
        return dict(median=round(median, 3), q1=round(q1, 3), q3=round(q3, 3))
    return dict(rounds=len(rounds), rps=spread([p[role]["rps"] / p["off"]["rps"] for p in rounds]),
                cpu_us=spread([p[role]["cpu_us"] / p["off"]["cpu_us"] for p in rounds]))

## In process

def in_process(models:Path, # the current checkout's published model
               records:Path, # where the recording timed here writes
              )->dict:
    ("Microseconds per one-row prediction: the package's prediction path (checks included) and plain "
     "`pipeline.predict`; and per record written")
    import pandas as pd
    sys.path.insert(0, str(ROOT))  # the checkout under test, whichever checkout this interpreter has installed
    m = importlib.import_module("iris_classifier.prediction")
    pipe = importlib.import_module("iris_classifier.persistence").load_published_model(models)[0]
    p = m.load_predictor(models)
    frame = pd.DataFrame([ROW], columns=FEATURES)
    def usec(f):
        number = timeit.Timer(f).autorange()[0]  # calls that take at least 0.2 s
        return min(timeit.repeat(f, number=number, repeat=5)) / number * 1e6
    rows = m.read_rows([BODY])
    recorder = importlib.import_module("iris_classifier.records").Recorder("dir", records)
    answers = m.predict_rows(p, rows)
    return dict(module=m.__name__, prediction_path=p.path,
                serving_us=usec(lambda: m.predict_rows(p, m.read_rows([BODY]))),
                pipeline_predict_us=usec(lambda: pipe.predict(frame)),
                pipeline_predict_with_frame_us=usec(lambda: pipe.predict(pd.DataFrame([ROW], columns=FEATURES))),
                record_us=usec(lambda: recorder.write_predictions(os.urandom(16).hex(), p.version, "api", rows,
                                                                  answers)))

## Figures and targets

def ratio(a:float, b:float)->float:
    "`a / b` to three places"
    return round(a / b, 3)

def ratios(figures:dict)->dict:
    ("The ratios the report rests on: to the minimal app, to the trivial endpoint, records on over off, and current "
     "over against")
    cold, http = figures["cold_start"], figures["http"]
    sizes = ("seconds", "pss_mib", "rss_mib")
    rps = lambda es: {e: ratio(v["rps"], es[TRIVIAL]["rps"]) for e, v in es.items() if v}
    cpu = lambda es: {e: ratio(es[TRIVIAL]["cpu_us"], v["cpu_us"]) for e, v in es.items() if v}
    r = dict(vs_minimal={s: {k: ratio(c[k], cold["minimal"][k]) for k in sizes} for s, c in cold.items()},
             throughput_vs_trivial={s: rps(es) for s, es in http.items()},
             cpu_vs_trivial={s: cpu(es) for s, es in http.items()},
             records_on_vs_off={e: rounds_summary(rs, "on") for e, rs in figures["records"]["rounds"].items()},
             control_vs_off={e: rounds_summary(rs, "control") for e, rs in figures["records"]["rounds"].items()})
    if "against" in http:
        # records off on both sides where measured so
        same_work = {e: figures["records"]["off"].get(e) or v for e, v in http["current"].items()}
        r["current_vs_against"] = dict(cold_start={k: ratio(cold["current"][k], cold["against"][k]) for k in sizes},
                                       rps={e: ratio(v["rps"], http["against"][e]["rps"])
                                            for e, v in same_work.items() if v and http["against"][e]})
    return r

def target(value:float, limit:float, at_least:bool)->dict:
    "A figure against its limit"
    return dict(value=value, limit=limit, at_least=at_least, met=value >= limit if at_least else value <= limit)

def targets(figures:dict, r:dict)->dict[str, dict]:
    "Every target of the run: its figure, its limit and whether it is met"
    local, one_row = figures["in_process_us"], [e for e, v in figures["http"]["current"].items() if e != TRIVIAL and v]
    t = {f"throughput vs trivial: {e}": target(r["throughput_vs_trivial"]["current"][e], MIN_THROUGHPUT_RATIO, True)
         for e in one_row}
    path_vs_pipeline = ratio(local["serving_us"], local["pipeline_predict_us"])
    t["in process: prediction path / pipeline.predict"] = target(path_vs_pipeline, 1.0, False)
    t["cold start: current / minimal"] = target(r["vs_minimal"]["current"]["seconds"], MAX_COLD_START_RATIO, False)
    t["memory (PSS): current / minimal"] = target(r["vs_minimal"]["current"]["pss_mib"], MAX_MEMORY_RATIO, False)
    if "current_vs_against" in r:
        t |= {f"requests/s current / against: {e}": target(v, MIN_AGAINST_RATIO, True)
              for e, v in r["current_vs_against"]["rps"].items()}
    return t | {f"records on / off, requests/s (median of rounds): {e}":
                target(r["records_on_vs_off"][e]["rps"]["median"], MIN_RECORDS_RATIO, True) for e in RECORDED}

def print_cold(cold:dict, r:dict, labels:dict):
    "The cold-start and memory table"
    print("\nCold start (process start to first 200 on POST /api/predict) and memory (master + workers), medians over "
          f"{len(cold['current']['starts'])} starts\n")
    print(f"{'server':40s} {'start s':>8s} {'(min-max)':>13s} {'vs minimal':>11s} {'PSS MiB':>8s} {'vs minimal':>11s} "
          f"{'RSS MiB':>8s} {'vs minimal':>11s}")
    for name, c in cold.items():
        seconds = [x["seconds"] for x in c["starts"]]
        low, high, m = min(seconds), max(seconds), r["vs_minimal"][name]
        print(f"{labels[name]:40s} {c['seconds']:8.2f} {f'({low:.1f}-{high:.1f})':>13s} {m['seconds']:11.3f} "
              f"{c['pss_mib']:8.1f} {m['pss_mib']:11.3f} {c['rss_mib']:8.1f} {m['rss_mib']:11.3f}")
    if "current_vs_against" in r:
        c = r["current_vs_against"]["cold_start"]
        print(f"current / against: start {c['seconds']:.3f}, PSS {c['pss_mib']:.3f}, RSS {c['rss_mib']:.3f}")
    print("(PSS shares each shared page out among the processes that map it; RSS counts it in every process, so the "
          "sum overstates)")

def print_http(http:dict, r:dict, labels:dict, args:argparse.Namespace):
    "The throughput table, and with `--against` each endpoint's ratio between the two servers"
    print(f"\nThroughput: wrk -t{args.threads} -c{args.connections}, {args.rounds} x {args.duration} s per endpoint "
          "and server, medians over rounds\n")
    print(f"{'server':24s} {'endpoint':54s} {'requests/s':>11s} {'p50 ms':>8s} {'p99 ms':>8s} {'vs trivial':>11s} "
          f"{'CPU us/req':>11s} {'vs trivial':>11s}")
    for name, es in http.items():
        for e, v in es.items():
            if v is None: print(f"{labels[name][:24]:24s} {e:54s} absent: this checkout does not serve it")
            else: print(f"{labels[name][:24]:24s} {e:54s} {v['rps']:11.0f} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f} "
                        f"{r['throughput_vs_trivial'][name][e]:11.3f} {v['cpu_us']:11.0f} "
                        f"{r['cpu_vs_trivial'][name][e]:11.3f}")
    print("(throughput ratio: requests/s over the trivial endpoint's; CPU ratio: the trivial endpoint's server CPU per "
          "request over this one's. The CPU figure is less disturbed by other load on the machine.)")
    if "current_vs_against" in r:
        print(f"\n{'endpoint':54s} {'requests/s current / against':>29s}   (records off on both where measured off)")
        for e in ENDPOINTS:
            v = r["current_vs_against"]["rps"].get(e)
            print(f"{e:54s} {'absent in one of them' if v is None else f'{v:.3f}':>29s}")

def quartiles(spread:dict)->str:
    "The first and third quartiles of a `rounds_summary` spread, as (q1-q3)"
    return f"({spread['q1']:.3f}-{spread['q3']:.3f})"

def print_records(records:dict, r:dict, local:dict, args:argparse.Namespace):
    "The table of prediction records on against off, and what one record costs in process"
    print("\nPrediction records on (IRIS_RECORDS=dir) and off, current checkout, and a second start of records off "
          f"(the control): {args.records_rounds} rounds of {args.records_duration} s runs per endpoint, one server "
          f"right after the other, in rotating order, all started afresh every {ROUNDS_PER_START} rounds; "
          f"{records['written']} records written. Medians of the rounds' ratios to records off, (quartiles)\n")
    print(f"{'endpoint':54s} {'':8s} {'requests/s':>10s} {'':15s} {'CPU us/req':>10s} {'':15s}")
    for e in RECORDED:
        for label, v in (("on / off", r["records_on_vs_off"][e]), ("control", r["control_vs_off"][e])):
            print(f"{e if label == 'on / off' else '':54s} {label:8s} {v['rps']['median']:10.3f} "
                  f"{quartiles(v['rps']):>15s} {v['cpu_us']['median']:10.3f} {quartiles(v['cpu_us']):>15s}")
    # writing the record (a random request id made too), timed as `in_process` times the prediction path
    if "record_us" in local:
        # path -> CPU us per request, records off
        off = {e.split(" ")[1]: records["off"][e]["cpu_us"] for e in RECORDED}
        share = lambda path, us: f"{us:.0f} us of CPU per request on {path} ({local['record_us'] / us:.1%})"
        print(f"In process, writing the record of a one-row prediction takes {local['record_us']:.1f} us; the "
              "records-off server spends " + " and ".join(share(path, us) for path, us in off.items()))
    print("(a round's ratios compare runs seconds apart, so that the machine's drifting speed hits them alike; the "
          "control's ratios, of two equal servers, show how far apart measuring alone puts them; records written: "
          "every prediction the records-on server answered, warm-ups and V2 binary included)")

def print_local(local:dict):
    "The in-process line"
    print(f"\nIn process, one row ({local['module']}, {local['prediction_path']} path): {local['serving_us']:.1f} us "
          "(checks included), "
          f"pipeline.predict(one-row DataFrame) {local['pipeline_predict_us']:.1f} us "
          f"({local['pipeline_predict_with_frame_us']:.1f} us "
          f"building the DataFrame too): {local['pipeline_predict_us'] / local['serving_us']:.1f}x faster")

def print_targets(t:dict):
    "Each target, met or missed"
    print("\nTargets:")
    for name, v in t.items():
        print(f"  {name:76s} {v['value']:7.3f} {'>=' if v['at_least'] else '<='} {v['limit']:<5} "
              f"{'met' if v['met'] else 'MISSED'}")

## The HTTP layers (--servers)

REFERENCE, MINIMAL, TODAY, DEFAULT = "flask dev", "minimal gunicorn sync", "gunicorn sync", "granian"
# The targets of the default server (granian) against the others, in requests/s: (endpoint, against, at least)
LAYER_TARGETS = [(PREDICT, REFERENCE, 6.0), (PREDICT, MINIMAL, 2.0), (V2_JSON, REFERENCE, 5.0),
                 (PREDICT_CLOSE, TODAY, 1.0)]

def layers(model:Path, # the current checkout's published model
           tree:Path, # the minimal app's joblib-dumped tree
           cache:Path, # bytecode cache
           workers:int, # workers of every multi-process server
          )->dict[str, App]:
    "The same application under each HTTP layer, Flask's development server (the seed's shape) and the minimal app"
    env = dict(child_env(ROOT, cache), IRIS_MODEL_DIR=str(model), IRIS_RECORDS="off")  # the same work: no records
    serve = lambda *opts: lambda port: cli("serve", "--port", str(port), "--workers", str(workers),
                                           "--model-dir", str(model), *opts)
    gthread = lambda port: [sys.executable, "-m", "gunicorn", "--config", "python:iris_classifier.gunicorn_conf",
                            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "gthread",
                            "--threads", "4"]
    flask = lambda port: [sys.executable, "-m", "flask", "--app", "iris_classifier.app:create_app()", "run",
                          "--port", str(port)]
    ours = (PREDICT, V2_JSON, PREDICT_CLOSE)
    return {REFERENCE: App(REFERENCE, flask, ROOT, env, ours),
            MINIMAL: replace(minimal(tree, cache, workers), name=MINIMAL, endpoints=(PREDICT, PREDICT_CLOSE)),
            TODAY: App(TODAY, serve("--server", "gunicorn"), ROOT, env, ours),  # today's default, started as it was
            "gunicorn gthread": App("gunicorn gthread", gthread, ROOT, env, ours),
            DEFAULT: App(DEFAULT, serve(), ROOT, env, ours)}

def measure_layers(args:argparse.Namespace, tmp:Path)->dict:
    "Train, then each HTTP layer's throughput in interleaved rounds, and the cold start and memory of the two defaults"
    cache = tmp/"pycache"
    model = train(dict(current=ROOT), tmp, cache)["current"]
    progress("trained")
    apps, scripts = layers(model, fit_minimal(tmp/"tree.joblib"), cache, args.workers), wrk_scripts(tmp)
    with serving(list(apps.values()), scripts, args, tmp) as servers: http = throughput(servers, scripts, args)
    return dict(http=http, cold_start=cold_starts([apps[TODAY], apps[DEFAULT]], args.starts, args.workers, tmp))

def layer_targets(figures:dict)->dict[str, dict]:
    "The targets: the default's requests/s over the others', and its cold start and memory over today's default's"
    http, cold = figures["http"], figures["cold_start"]
    t = {f"{DEFAULT} / {other}: {e}": target(ratio(http[DEFAULT][e]["rps"], http[other][e]["rps"]), limit, True)
         for e, other, limit in LAYER_TARGETS}
    return t | {f"{DEFAULT} / {TODAY}: cold start {k}": target(ratio(cold[DEFAULT][k], cold[TODAY][k]), 1.0, False)
                for k in ("seconds", "pss_mib")}

def print_layers(args:argparse.Namespace, figures:dict):
    "The HTTP layers' table and their cold starts"
    http, load = figures["http"], figures["machine_load"]
    print(f"\nHTTP layers, the same application (records off), {args.workers} workers each, on {os.cpu_count()} CPUs;"
          f" wrk -t{args.threads} -c{args.connections}, {args.rounds} x {args.duration} s, medians over rounds."
          f" Load at the start: {load['start']}; at the end: {load['end']}\n")
    print(f"{'server':22s} {'endpoint':50s} {'requests/s':>10s} {'vs flask dev':>12s} {'p50 ms':>7s} {'p99 ms':>7s} "
          f"{'CPU us/req':>10s}")
    for name, es in http.items():
        for e, v in ((e, v) for e, v in es.items() if v):
            print(f"{name:22s} {e:50s} {v['rps']:10.0f} {ratio(v['rps'], http[REFERENCE][e]['rps']):12.2f}"
                  f" {v['p50_ms']:7.2f} {v['p99_ms']:7.2f} {v['cpu_us']:10.0f}")
    print("\nCold start (to the first 200 on POST /api/predict) and memory (PSS and RSS, all processes), medians over "
          f"{args.starts} starts")
    for name, c in figures["cold_start"].items():
        print(f"{name:22s} {c['seconds']:6.2f} s {c['pss_mib']:7.1f} MiB PSS {c['rss_mib']:7.1f} MiB RSS")

def report_layers(args:argparse.Namespace, figures:dict)->bool:
    "Print the tables and the targets, write the JSON; whether every target is met"
    print_layers(args, figures)
    t = layer_targets(figures)
    print_targets(t)
    ok = all(v["met"] for v in t.values())
    wrk = dict(threads=args.threads, connections=args.connections, duration_s=args.duration, rounds=args.rounds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(dict(workers=args.workers, cpus=os.cpu_count(), starts=args.starts, wrk=wrk,
                                           **figures, targets=t, targets_met=ok), indent=2))
    print(f"Figures written to {args.output}")
    return ok

## The run

def parse_args()->argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])  # the first paragraph; argparse rewraps it
    ap.add_argument("--against", metavar="REV",
                    help="also measure this commit (e.g. main), side by side, in a temporary git worktree")
    ap.add_argument("--starts", type=int, default=5,
                    help="cold starts of each server; medians are reported (default 5)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds over the endpoints; medians are reported (default 3)")
    ap.add_argument("--records-rounds", type=int, default=20,
                    help="rounds of runs, records on, off and the control, per endpoint; median ratios are reported "
                         "(default 20)")
    ap.add_argument("--records-duration", type=int, default=2, help="seconds per run in those rounds (default 2)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (default 1, to leave the CPUs to the server)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers of every server (default 2)")
    ap.add_argument("--output", type=Path, default=ROOT/"artifacts"/"bench"/"serving.json",
                    help="where to write the figures as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    ap.add_argument("--servers", action="store_true",
                    help="only compare the HTTP layers (Flask dev, gunicorn sync and gthread, granian), keep-alive "
                         "and a new connection per request, and the cold start of the two defaults")
    args = ap.parse_args()
    if min(args.starts, args.duration, args.rounds, args.workers, args.records_rounds, args.records_duration) < 1:
        ap.error("--starts, --duration, --rounds, --workers, --records-rounds and --records-duration must be at "
                 "least 1")
    return args

def measure(args:argparse.Namespace, tmp:Path, checkouts:dict[str, Path])->dict:
    "Train, then cold starts and memory, throughput and in-process timing; every figure of the run"
    cache = tmp/"pycache"
    models = train(checkouts, tmp, cache)
    progress("trained")
    # this process's own imports, all after training, use the cache too
    sys.pycache_prefix, sys.dont_write_bytecode = str(cache), False
    apps = {name: served(name, checkout, models[name], cache, args.workers) for name, checkout in checkouts.items()}
    if "against" in apps:  # the same work as `records_off`
        apps["against"] = replace(apps["against"], env=dict(apps["against"].env, IRIS_RECORDS="off"))
    apps["minimal"] = minimal(fit_minimal(tmp/"tree.joblib"), cache, args.workers)
    off, scripts = records_off(apps["current"]), wrk_scripts(tmp)
    # Throughput first: its servers complete the bytecode cache that training began, before any start is counted.
    # Records off right after the current server (records on), so that on each endpoint one is loaded right after the
    # other.
    others = [apps[name] for name in checkouts if name != "current"]
    with serving([apps["current"], off, *others], scripts, args, tmp) as servers:
        http = throughput(servers, scripts, args)
    rounds = records_rounds(apps["current"], off, scripts, args, tmp)
    # counted before the cold starts add theirs
    records = on_off(http, off.name, rounds, Path(apps["current"].env["IRIS_RECORDS_DIR"]))
    cold = cold_starts(list(apps.values()), args.starts, args.workers, tmp)
    return dict(cold_start=cold, http=http, records=records,
                in_process_us=in_process(models["current"], tmp/"records-in-process"))

def on_off(http:dict, # from `throughput`; the records-off server's figures are taken out of it
           off:str, # the records-off server's name
           rounds:dict[str, list[dict]], # from `records_rounds`
           directory:Path, # where the current server (records on) writes its records
          )->dict:
    ("Records on (the current server) and off: medians over the throughput rounds, the records rounds, and how many "
     "records were written")
    figures = dict(on=http["current"], off=http.pop(off))
    return dict(written=records_written(directory), rounds=rounds,
                **{state: {e: h[e] for e in RECORDED} for state, h in figures.items()})

def report(args:argparse.Namespace, figures:dict, labels:dict)->bool:
    "Print the tables, write the JSON; whether every target is met"
    r, load = ratios(figures), figures["machine_load"]
    t = targets(figures, r)
    print(f"\nServers: gunicorn, {args.workers} workers each, on {os.cpu_count()} CPUs. Machine load at the start: "
          f"{load['start']}; at the end: {load['end']}")
    print_cold(figures["cold_start"], r, labels)
    print_http(figures["http"], r, labels, args)
    print_records(figures["records"], r, figures["in_process_us"], args)
    print_local(figures["in_process_us"])
    print_targets(t)
    ok = all(v["met"] for v in t.values())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    wrk = dict(threads=args.threads, connections=args.connections, duration_s=args.duration, rounds=args.rounds)
    args.output.write_text(json.dumps(dict(servers=labels, workers=args.workers, cpus=os.cpu_count(),
                                           starts=args.starts, wrk=wrk, **figures, ratios=r, targets=t,
                                           targets_met=ok), indent=2))
    print(f"Figures written to {args.output}")
    return ok

def main()->int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # unwinds: servers stopped, worktree removed
    if not shutil.which("wrk"): sys.exit("wrk is not installed: apt-get install wrk (Debian/Ubuntu)")
    labels = dict(current=f"current ({git('describe', '--always', '--dirty')})", minimal="minimal Flask + scikit-learn")
    load = machine_load()
    if load["load_1min"] > os.cpu_count() / 2:
        print(f"warning: the machine is busy ({load}): the figures will be noisy", file=sys.stderr)
    if args.servers:
        with tempfile.TemporaryDirectory(prefix="iris-bench-") as tmp:
            figures = measure_layers(args, Path(tmp))
        ok = report_layers(args, dict(figures, machine_load=dict(start=load, end=machine_load())))
        return 1 if args.check and not ok else 0
    with tempfile.TemporaryDirectory(prefix="iris-bench-") as tmp, ExitStack() as stack:
        tmp, checkouts = Path(tmp), dict(current=ROOT)
        if args.against:
            checkouts["against"] = stack.enter_context(worktree(args.against, tmp/"against"))
            labels["against"] = f"against {args.against} ({git('rev-parse', '--short', args.against)})"
        figures = measure(args, tmp, checkouts)
        ok = report(args, dict(figures, machine_load=dict(start=load, end=machine_load())), labels)
    return 1 if args.check and not ok else 0

if __name__ == "__main__": sys.exit(main())
