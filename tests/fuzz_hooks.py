"""schemathesis hooks for tests/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS): the rules of the OpenAPI document
that JSON Schema cannot state."""
import schemathesis

from iris_classifier.serving import issue_request_id, signing_key
from conftest import LIVE_FEEDBACK_TOKEN

LIVE_ID_KEY = signing_key(None, LIVE_FEEDBACK_TOKEN)  # what the live server signs its ids with: it sets no IRIS_ID_KEY

@schemathesis.hook
def map_case(context, case):
    "In valid V2 inference requests, make `shape` count the rows `data` holds; in valid feedback, name issued ids"
    body = case.body
    positive = case.meta and case.meta.generation.mode.is_positive
    if positive and case.operation.path.endswith("/infer") and isinstance(body, dict):
        for t in body.get("inputs") or []:
            data, shape = t.get("data"), t.get("shape")
            if not (isinstance(data, list) and data and isinstance(shape, list) and len(shape) == 2): continue
            nested = isinstance(data[0], list)
            n = len(data) if nested else len(data) // 4
            t["data"], t["shape"] = (data if nested else data[:4 * n]), [n, shape[1]]
    if case.meta and case.meta.generation.mode.is_positive and case.operation.path == "/api/feedback":
        for item in body if isinstance(body, list) else [body]:  # valid feedback names an id the server issued
            if isinstance(item, dict) and "request_id" in item: item["request_id"] = issue_request_id(LIVE_ID_KEY)
    return case
