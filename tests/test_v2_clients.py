"""The V2 endpoints as the clients people use for KServe and Triton call them, over HTTP, against gunicorn.

Triton's own Python client (`tritonclient.http`) runs as is. KServe's (`kserve.InferenceRESTClient`) is not a
development dependency: it brings a Kubernetes client, gRPC and its tools and a FastAPI server stack, and
pins pandas below 3, which would move the package's own lock. Its requests are rebuilt here with
`requests` byte for byte as kserve 0.21 sends them (`InferRequest.to_rest`, `InferenceRESTClient.infer`):
JSON with `Content-Type: application/json`, or binary inputs with `application/octet-stream` and
`Inference-Header-Content-Length`; and its responses are read as `InferResponse.from_bytes` reads them."""
import json, uuid

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from iris_classifier.core import FEATURES, SPECIES
from iris_classifier.data_processing import load_iris_frame

MODEL = "iris-classifier"
ROWS = load_iris_frame()[FEATURES].to_numpy()  # all 150 flowers
DTYPES = {"FP32": np.float32, "FP64": np.float64}

@pytest.fixture(scope="module")
def url(live_server)->str: return f"127.0.0.1:{live_server.port}"

@pytest.fixture(scope="module")
def expected(url):
    "What /api/predict answers for the rows as each datatype carries them: species and probabilities per row"
    out = {}
    for datatype, dtype in DTYPES.items():
        rows = ROWS.astype(dtype).astype(float).tolist()  # FP32 carries the nearest float32 of each value
        r = requests.post(f"http://{url}/api/predict", json={"instances": rows}, timeout=30)
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        out[datatype] = [p["species"] for p in preds], [list(p["probabilities"].values()) for p in preds]
    return out

## Triton's client

@pytest.fixture(scope="module")
def client(url):
    c = triton.InferenceServerClient(url=url)
    yield c
    c.close()

def test_triton_health_and_metadata(client, live_server):
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == MODEL and "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata(MODEL)
    version = model["versions"][0]
    assert [(t["name"], t["datatype"], t["shape"]) for t in model["inputs"]] == [("input-0", "FP64", [-1, 4])]
    assert [t["name"] for t in model["outputs"]] == ["predict", "predict_proba"]
    assert client.get_model_metadata(MODEL, version) == model
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, version)
    assert not client.is_model_ready(MODEL, "0")

OUTPUTS = {  # how a Triton user asks for outputs; which ones come back, and which of those as binary data
    # the client asks for every output as binary data
    "default": (None, ["predict", "predict_proba"], ["predict", "predict_proba"]),
    "json": ([("predict", False), ("predict_proba", False)], ["predict", "predict_proba"], []),
    "proba": ([("predict_proba", False)], ["predict_proba"], []),
    "proba-binary": ([("predict_proba", True)], ["predict_proba"], ["predict_proba"]),
    "mixed": ([("predict", True), ("predict_proba", False)], ["predict", "predict_proba"], ["predict"]),
}

def binary_outputs(response:dict)->list[str]:
    "The outputs a response carries as binary data"
    return [o["name"] for o in response["outputs"] if "binary_data_size" in (o.get("parameters") or {})]

@pytest.mark.parametrize("outputs", OUTPUTS)
@pytest.mark.parametrize("binary_in", [False, True], ids=["json-in", "binary-in"])
@pytest.mark.parametrize("datatype", DTYPES)
def test_triton_infer(client, expected, datatype, binary_in, outputs):
    inp = triton.InferInput("input-0", list(ROWS.shape), datatype)
    inp.set_data_from_numpy(ROWS.astype(DTYPES[datatype]), binary_data=binary_in)
    asked, names, binary = OUTPUTS[outputs]
    requested = asked and [triton.InferRequestedOutput(n, binary_data=b) for n, b in asked]
    result = client.infer(MODEL, [inp], outputs=requested, request_id="r-1")
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == names
    assert binary_outputs(response) == binary and response["id"] == "r-1"
    species, proba = expected[datatype]
    if "predict" in names:
        assert [s.decode() if isinstance(s, bytes) else s for s in result.as_numpy("predict")] == species
    got = result.as_numpy("predict_proba")
    assert got.dtype == np.float64 and got.shape == (len(ROWS), len(SPECIES)) and got.tolist() == proba

@pytest.mark.parametrize("compression", ["gzip", "deflate"])
@pytest.mark.parametrize("binary_in", [False, True], ids=["json-in", "binary-in"])
def test_triton_compressed_requests(client, expected, compression, binary_in):
    "Triton's client compresses the request body and says so in Content-Encoding"
    inp = triton.InferInput("input-0", list(ROWS.shape), "FP64")
    inp.set_data_from_numpy(ROWS, binary_data=binary_in)
    result = client.infer(MODEL, [inp], request_compression_algorithm=compression,
                          response_compression_algorithm=compression)
    assert result.as_numpy("predict_proba").tolist() == expected["FP64"][1]

def test_a_compressed_body_past_the_limit_once_decompressed_is_413(url):
    "A zip bomb: 10 KB of gzip that would inflate to 10 MB, refused once the limit is reached"
    import gzip
    bomb = gzip.compress(b'{"inputs": [' + b" " * 10_000_000 + b"]}")
    r = requests.post(f"http://{url}/v2/models/{MODEL}/infer", data=bomb,
                      headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}, timeout=30)
    assert len(bomb) < 20_000 and r.status_code == 413 and "once decompressed" in r.json()["error"]

def test_an_unknown_content_encoding_is_415(url):
    r = requests.post(f"http://{url}/v2/models/{MODEL}/infer", data=b"{}",
                      headers={"Content-Encoding": "br", "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 415 and "gzip or deflate" in r.json()["error"]

@pytest.mark.parametrize("binary_in", [False, True])
def test_triton_wrong_shape_names_the_shape(client, binary_in):
    inp = triton.InferInput("input-0", [2, 3], "FP64")
    inp.set_data_from_numpy(ROWS[:2, :3].copy(), binary_data=binary_in)
    with pytest.raises(InferenceServerException) as e: client.infer(MODEL, [inp])
    assert e.value.status() == "400" and "inputs[0].shape must be [N, 4] with N >= 1 (got [2, 3])" in e.value.message()

def test_triton_unknown_model(client):
    inp = triton.InferInput("input-0", [1, 4], "FP64")
    inp.set_data_from_numpy(ROWS[:1], binary_data=True)
    with pytest.raises(InferenceServerException) as e: client.infer("roses", [inp])
    assert e.value.status() == "404" and "Unknown model 'roses'" in e.value.message()

## KServe's client, as it speaks on the wire

def kserve_infer(url:str, inputs:list[dict], raw:bytes|None=None, outputs:list[dict]|None=None,
                 model:str=MODEL)->tuple[dict, dict]:
    "One inference as kserve's InferenceRESTClient sends it; the JSON response and any binary outputs, decoded"
    body = {"id": str(uuid.uuid4()), "model_name": model, "inputs": inputs, **({"outputs": outputs} if outputs else {})}
    data, headers = json.dumps(body).encode(), {"content-type": "application/json"}
    if raw is not None:
        headers = {"Inference-Header-Content-Length": str(len(data)), "content-type": "application/octet-stream"}
        data += raw
    r = requests.post(f"http://{url}/v2/models/{model}/infer", data=data, headers=headers, timeout=30)
    if not r.ok: raise requests.HTTPError(f"{r.status_code}: {r.json()['error']}")
    n = int(r.headers.get("Inference-Header-Content-Length", len(r.content)))
    out, start, decoded = json.loads(r.content[:n]), n, {}
    assert out["id"] == body["id"] and out["model_name"] == model
    for o in out["outputs"]:
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is None: decoded[o["name"]] = o["data"]; continue
        blob, start = r.content[start:start + size], start + size
        decoded[o["name"]] = np.frombuffer(blob, "<f8").tolist() if o["datatype"] == "FP64" else bytes_elements(blob)
    return out, decoded

def bytes_elements(blob:bytes)->list[str]:
    "BYTES tensor elements from binary data: a 4-byte little-endian length before each"
    out = []
    while blob:
        n = int.from_bytes(blob[:4], "little")
        out.append(blob[4:4 + n].decode())
        blob = blob[4 + n:]
    return out

def test_kserve_health_and_metadata(url):
    get = lambda path: requests.get(f"http://{url}{path}", timeout=30)
    assert get("/v2/health/live").json()["live"] and get("/v2/health/ready").json()["ready"]
    assert get(f"/v2/models/{MODEL}/ready").json()["ready"]
    assert "binary_tensor_data" in get("/v2").json()["extensions"]
    model = get(f"/v2/models/{MODEL}").json()
    assert get(f"/v2/models/{MODEL}/versions/{model['versions'][0]}").json() == model

@pytest.mark.parametrize("outputs", [None, [{"name": "predict_proba"}],
                                     [{"name": "predict", "parameters": {"binary_data": True}},
                                      {"name": "predict_proba", "parameters": {"binary_data": True}}]],
                         ids=["all", "proba", "binary-out"])
@pytest.mark.parametrize("binary_in", [False, True], ids=["json-in", "binary-in"])
@pytest.mark.parametrize("datatype", DTYPES)
def test_kserve_infer(url, expected, datatype, binary_in, outputs):
    values = ROWS.astype(DTYPES[datatype])
    tensor = {"name": "input-0", "shape": list(ROWS.shape), "datatype": datatype}
    # the JSON data as InferInput.set_data_from_numpy(binary_data=False) sends it: the flat list
    if binary_in: tensor["parameters"] = {"binary_data_size": values.nbytes}
    else: tensor["data"] = values.flatten().tolist()
    raw = values.astype(values.dtype.newbyteorder("<")).tobytes() if binary_in else None
    out, decoded = kserve_infer(url, [tensor], raw, outputs)
    assert binary_outputs(out) == [o["name"] for o in outputs or [] if (o.get("parameters") or {}).get("binary_data")]
    species, proba = expected[datatype]
    if outputs is None or any(o["name"] == "predict" for o in outputs): assert decoded["predict"] == species
    assert decoded["predict_proba"] == [v for p in proba for v in p]
    assert [o["shape"] for o in out["outputs"] if o["name"] == "predict_proba"] == [[len(ROWS), 3]]

def test_kserve_wrong_shape_names_the_shape(url):
    with pytest.raises(requests.HTTPError,
                       match=r"400: inputs\[0\]\.shape must be \[N, 4\] with N >= 1 \(got \[150, 3\]\)"):
        kserve_infer(url, [{"name": "input-0", "shape": [150, 3], "datatype": "FP64",
                            "data": ROWS[:, :3].flatten().tolist()}])
