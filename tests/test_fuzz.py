"""What a fuzzer or a hostile client sends, against the live gunicorn server: schemathesis on /openapi.json with every
check; JSON built to hurt the decoder on every JSON route; bodies far over the size limit from urllib and requests.
Each ends with the server's log checked for tracebacks."""
import json, os, subprocess, sys, urllib.error, urllib.request
from pathlib import Path

import pytest
import requests

from conftest import LIVE_FEEDBACK_TOKEN

HERE = Path(__file__).resolve().parent
LIMIT = 256 * 1024  # MAX_CONTENT_LENGTH
ROW = [5.1, 3.5, 1.4, 0.2]
FUZZ_EXAMPLES = 50  # per operation and phase: about 1,300 requests, under a minute here

@pytest.fixture(scope="module")
def base(live_server)->str: return f"http://127.0.0.1:{live_server.port}"

@pytest.fixture(scope="module")
def json_routes(base)->list[str]:
    "Every route that reads a JSON body"
    version = requests.get(f"{base}/api/model", timeout=30).json()["model_version"]
    return ["/api/predict", "/v2/models/iris-classifier/infer", f"/v2/models/iris-classifier/versions/{version}/infer"]

def log_size(server)->tuple[int, int]: return len(server.stdout()), len(server.stderr())

def no_tracebacks(server, since:tuple[int, int]):
    "Nothing in the server's log since `since` (from `log_size`) is a traceback or an unexpected error"
    log = server.stdout()[since[0]:] + server.stderr()[since[1]:]
    assert "Traceback" not in log and "Unexpected error" not in log, log[-3000:]

def test_schemathesis_finds_nothing(live_server, base, tmp_path):
    since = log_size(live_server)
    command = [str(Path(sys.executable).parent/"schemathesis"), "--config-file", str(HERE/"schemathesis.toml"),
               "run", f"{base}/openapi.json", "--checks", "all", "--max-examples", str(FUZZ_EXAMPLES), "--seed", "1",
               "--header", f"Authorization: Bearer {LIVE_FEEDBACK_TOKEN}"]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="fuzz_hooks", PYTHONPATH=str(HERE), NO_COLOR="1")
    # cwd: its .hypothesis cache
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0 and "No issues found" in run.stdout, run.stdout[-8000:] + run.stderr[-2000:]
    no_tracebacks(live_server, since)

## Hostile JSON within the size limit

DEEP = "[" * 5000 + "]" * 5000  # 10 KB

def post(base:str, path:str, body:str|bytes)->requests.Response:
    return requests.post(base + path, data=body, headers={"Content-Type": "application/json"}, timeout=30)

def v2(**fields)->str:
    "A V2 inference request with `fields` (raw JSON text) in place of the defaults"
    base = {"inputs": '[{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]'}
    return "{" + ", ".join(f'"{k}": {v}' for k, v in (base | fields).items()) + "}"

def tensor_of(values:str)->str:
    "A V2 request whose one row is `values`, raw JSON text"
    return v2(inputs='[{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [%s]}]' % values)

HOSTILE = {  # what /api/predict and V2 inference are sent, and what the answer must say
    "nesting": (DEEP, DEEP, "nested too deeply"),
    "nesting in a field": ('{"instances": [' + DEEP + "]}", tensor_of(DEEP), "nested too deeply"),
    "100,000 digits": ('{"instances": [[' + "9" * 100_000 + ", 3.5, 1.4, 0.2]]}",
                       tensor_of("9" * 100_000 + ", 3.5, 1.4, 0.2"), "a number in the body has more than 4300 digits"),
    "4300 digits": ('{"instances": [[' + "9" * 4300 + ", 3.5, 1.4, 0.2]]}", tensor_of("9" * 4300 + ", 3.5, 1.4, 0.2"),
                    "sepal_length must be at most 30 cm"),
    "1e400": ('{"instances": [[1e400, 3.5, 1.4, 0.2]]}', tensor_of("1e400, 3.5, 1.4, 0.2"),
              "sepal_length must be at most 30 cm (got Infinity)"),
}

@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_json_is_400_naming_the_problem_on_every_route(live_server, base, json_routes, case):
    since = log_size(live_server)
    api, v2_body, message = HOSTILE[case]
    for path in json_routes:
        r = post(base, path, api if path == "/api/predict" else v2_body)
        named = r.status_code == 400 and message.lower() in r.json()["error"].lower()
        assert named, (path, r.status_code, r.text[:200])
    no_tracebacks(live_server, since)

# around the decoder's limit, where error messages must still render the value
@pytest.mark.parametrize("depth", range(960, 1000, 3))
def test_nesting_at_the_decoders_limit(live_server, base, json_routes, depth):
    since = log_size(live_server)
    deep = "[" * depth + "]" * depth
    bodies = {"/api/predict": ['{"instances": [[%s, 3.5, 1.4, 0.2]]}' % deep, '{"sepal_length": %s}' % deep]}
    for path in json_routes:
        for body in bodies.get(path, [v2(id=deep), v2(parameters=deep), v2(outputs="[{\"name\": %s}]" % deep),
                                     v2(inputs='[{"name": "x", "shape": %s, "datatype": "FP64", "data": []}]' % deep)]):
            r = post(base, path, body)
            assert r.status_code == 400 and r.json()["error"], (path, depth, r.text[:200])
    no_tracebacks(live_server, since)

@pytest.mark.parametrize("fields, message", [
    (dict(id='{"a": 1}'), '`id` must be a string (got {"a": 1})'),
    (dict(id="[1, 2]"), "`id` must be a string (got [1, 2])"),
    (dict(parameters='"binary"'), 'parameters must be an object (got "binary")'),
    (dict(parameters='{"binary_data_output": "yes"}'),
     'parameters.binary_data_output must be true or false (got "yes")'),
    (dict(outputs='{"name": "predict"}'), "`outputs` must be a list of objects"),
    (dict(outputs='[{"name": "predict", "parameters": 5}]'), "outputs[0].parameters must be an object (got 5)"),
    (dict(inputs='[{"name": {}, "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]'),
     "inputs[0].name must be a string (got {})"),
    (dict(inputs='[{"name": "x", "shape": [1e400, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]'),
     "shape must be [N, 4] with N >= 1 (got [Infinity, 4])"),
    (dict(inputs='[{"name": "x", "shape": [%s, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]' % ("9" * 4300)),
     "shape must be [N, 4]"),
])
def test_wrongly_typed_protocol_fields_are_400_naming_them(live_server, base, json_routes, fields, message):
    since = log_size(live_server)
    for path in json_routes[1:]:
        r = post(base, path, v2(**fields))
        assert r.status_code == 400 and message in r.json()["error"], (path, r.text[:300])
    no_tracebacks(live_server, since)

## Bodies over the size limit

def via_urllib(url:str, data)->tuple[int, str]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r: return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, e.read().decode()

def via_requests(url:str, data)->tuple[int, str]:
    r = requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=60)
    return r.status_code, r.text

def chunks(n:int):
    "`n` bytes in pieces, which `requests` sends chunked (no Content-Length)"
    for _ in range(n // 65536): yield b" " * 65536

# the 5 MB is about 20 times the limit
@pytest.mark.parametrize("size", [10 * LIMIT, 20 * LIMIT], ids=["10x", "20x"])
@pytest.mark.parametrize("send", [via_urllib, via_requests], ids=["urllib", "requests"])
def test_oversized_bodies_get_the_413(live_server, base, json_routes, send, size):
    since = log_size(live_server)
    body = json.dumps({"instances": [ROW], "padding": "x" * size}).encode()
    for path in json_routes:
        status, text = send(base + path, body)
        assert status == 413 and f"larger than {LIMIT} bytes" in json.loads(text)["error"], (path, status, text[:200])
    no_tracebacks(live_server, since)

def test_chunked_bodies_too(live_server, base):
    since = log_size(live_server)
    status, text = via_requests(base + "/api/predict", chunks(20 * LIMIT))
    assert status == 413 and f"larger than {LIMIT} bytes" in json.loads(text)["error"], text[:200]
    status, text = via_requests(base + "/api/predict", iter([json.dumps({"instances": [ROW] * 500}).encode()]))
    assert status == 200 and len(json.loads(text)["predictions"]) == 500
    assert requests.get(base + "/readyz", timeout=30).status_code == 200
    no_tracebacks(live_server, since)
